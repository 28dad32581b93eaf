"""The kinds of FAISS index a gallery can hold (one table), and the policy that picks one by size.

:data:`KINDS` is the one place an index kind is described: how it is made, what it costs per
vector, whether it is trained, whether its inverted lists may live on disk, and whether a failed
``nprobe`` tuning makes the gallery fall back to exact search. The index, its rebuild, the
compressed-list helpers and the CLI help all read it; a new kind is one new row.

Vectors are L2-normalised float32 compared by inner product; IVF kinds train spherical k-means.
Figures behind the choices are in ``bench/README.md`` and :mod:`csip_reid.gallery.index`. FAISS is
imported only when an index is made, so the table (and the CLI help built from it) costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from functools import partial
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import faiss

#: Below this many vectors an IVF index is pointless (and k-means has too little data).
MIN_IVF_VECTORS = 256


def pq_subquantizers(dim: int) -> int:
    """Sub-quantiser count for ``ivfpq``: ``dim / 8`` (8 dimensions per byte), a divisor of ``dim``."""
    m = max(1, dim // 8)
    while dim % m:
        m -= 1
    return m


def _flat(dim: int, nlist: int) -> faiss.Index:
    import faiss

    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


#: Links per node of the HNSW coarse quantizer (FAISS's ``IVF..._HNSW32``), and its construction
#: beam: FAISS's default 40 gave a graph whose efSearch 32 found the nearest of 16k centroids for 45 %
#: of queries on the 1M benchmark data, 200 for 80 % (``bench/README.md``).
HNSW_M, HNSW_EF_CONSTRUCTION = 32, 200


def _ivf(dim: int, nlist: int, codes: str, coarse: str = "flat") -> faiss.IndexIVF:
    """An untrained inner-product IVF index (spherical k-means) whose lists hold ``codes``.

    ``coarse="hnsw"`` finds a vector's nearest lists with an HNSW graph over the centroids instead
    of scanning them all (what makes tens of thousands of lists affordable).
    """
    import faiss

    ip = faiss.METRIC_INNER_PRODUCT
    if coarse == "hnsw":
        quantizer = faiss.IndexHNSWFlat(dim, HNSW_M, ip)
        quantizer.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    else:
        quantizer = faiss.IndexFlatIP(dim)
    if codes == "flat":
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, ip)
    elif codes == "sq8":
        index = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, ip)
    else:
        index = faiss.IndexIVFPQ(quantizer, dim, nlist, pq_subquantizers(dim), 8, ip)
    index.cp.spherical = True
    index.own_fields = True
    quantizer.this.disown()
    return index


@dataclass(frozen=True)
class IndexKind:
    """One kind of gallery index.

    Attributes:
        name: The kind as stored in the index sidecar and shown by ``reid gallery info``.
        factory: ``(dim, nlist) -> faiss.Index``, empty (and untrained for IVF kinds).
        code_bytes: ``dim -> bytes`` of one stored vector's code (the 8-byte id not included).
        needs_training: IVF: trained on a sample, ``nprobe`` tuned on the gallery's own vectors.
        lists_on_disk: Its inverted lists may live in a memory-mapped file (``--on-disk``).
        falls_back_to_exact: When no ``nprobe`` reaches the recall target, the gallery keeps an
            exact index instead (else it keeps the best ``nprobe`` found).
        min_train: Least training sample, whatever the list count (product quantisers need more).
        help: One line for the CLI help.
        lists_scale: Lists relative to the policy's ``nlist_factor * sqrt(N)``.
        max_train_per_list: Caps the policy's ``train_per_list`` (bounds the sample when lists are many).
        k_factor: Re-rank ``k * k_factor`` candidates by their exact vectors (0: the codes' order is final).
    """

    name: str
    factory: Callable[[int, int], faiss.Index]
    code_bytes: Callable[[int], int]
    needs_training: bool
    lists_on_disk: bool
    falls_back_to_exact: bool
    min_train: int = 0
    help: str = ""
    lists_scale: float = 1.0
    max_train_per_list: int | None = None
    k_factor: int = 0

    def bytes_per_vector(self, dim: int) -> int:
        """Bytes per stored vector in memory or in the lists (code + 8-byte id), centroids excluded."""
        return self.code_bytes(dim) + 8


#: Every index kind, exact first, then IVF-Flat, then the compressed kinds.
KINDS: dict[str, IndexKind] = {k.name: k for k in (
    IndexKind("flat", _flat, lambda d: 4 * d, needs_training=False, lists_on_disk=False,
              falls_back_to_exact=False, help="exact search over float32 vectors"),
    IndexKind("ivf", partial(_ivf, codes="flat"), lambda d: 4 * d, needs_training=True, lists_on_disk=False,
              falls_back_to_exact=True, help="inverted lists of float32 vectors"),
    IndexKind("ivfsq8", partial(_ivf, codes="sq8"), lambda d: d, needs_training=True, lists_on_disk=True,
              falls_back_to_exact=False, help="8-bit codes, dim bytes per vector"),
    IndexKind("ivfpq", partial(_ivf, codes="pq"), pq_subquantizers, needs_training=True, lists_on_disk=True,
              falls_back_to_exact=False, min_train=10_000, help="dim/8 bytes per vector, much lower recall"),
    IndexKind("ivfhnsw-sq8", partial(_ivf, codes="sq8", coarse="hnsw"), lambda d: d, needs_training=True,
              lists_on_disk=True, falls_back_to_exact=False, lists_scale=8.0, max_train_per_list=20, k_factor=4,
              help="8 x more lists found by an HNSW graph, 8-bit codes re-ranked by the exact vectors"),
)}
#: All IVF kinds (trained, searched with ``nprobe``).
IVF_KINDS = tuple(k for k, v in KINDS.items() if v.needs_training)
#: Kinds the policy may choose above its compressed limit (their lists may go on disk).
COMPRESSED_KINDS = tuple(k for k, v in KINDS.items() if v.lists_on_disk)


def kind(name: str) -> IndexKind:
    """The row of :data:`KINDS` named ``name``.

    Raises:
        ValueError: No such kind.
    """
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown index kind {name!r}; known: {', '.join(KINDS)}") from None


def compressed_help() -> str:
    """The kinds ``--compressed`` accepts, each with its one-line description (for the CLI help)."""
    return " or ".join(f"{k} ({KINDS[k].help})" for k in COMPRESSED_KINDS)


@dataclass
class IndexPolicy:
    """When and how the gallery switches from exact to approximate search.

    Attributes:
        exact_max: Largest gallery searched exactly; None = ``50_000 * 512 // dim``.
        nlist_factor: IVF lists per ``sqrt(N)``.
        train_per_list: Training vectors per IVF list (k-means sample size).
        recall_target: Leave-one-out recall@10 the tuned ``nprobe`` must reach.
        tune_queries: Number of stored vectors used as queries when tuning ``nprobe``.
        retrain_growth: Re-train the IVF index when the gallery has grown by this factor.
        use_gpu: Search on GPU when FAISS sees one (faiss-gpu build).
        seed: Seed of the training sample and tuning queries.
        compressed_max: Above this many vectors the index is compressed; None = ``2_000_000 * 512 // dim``.
        compressed: The compressed kind, one of :data:`COMPRESSED_KINDS`.
        on_disk: Keep a compressed index's inverted lists in a memory-mapped file.
    """

    exact_max: int | None = None
    nlist_factor: float = 2.0
    train_per_list: int = 50
    recall_target: float = 0.97
    tune_queries: int = 100
    retrain_growth: float = 4.0
    use_gpu: bool = True
    seed: int = 0
    compressed_max: int | None = None
    compressed: str = "ivfsq8"
    on_disk: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The policy's fields; the compressed-index ones only when set (manifests keep the 0.1 keys)."""
        d = asdict(self)
        for k, default in (("compressed_max", None), ("compressed", "ivfsq8"), ("on_disk", False)):
            if d[k] == default:
                del d[k]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IndexPolicy:
        """Policy from a dict (unknown keys are ignored: manifests of other versions)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def exact_limit(self, dim: int) -> int:
        """Number of vectors up to which search stays exact."""
        if self.exact_max is not None:
            return self.exact_max
        return max(1000, 50_000 * 512 // max(dim, 1))

    def use_ivf(self, n: int, dim: int) -> bool:
        """Whether ``n`` vectors get the approximate index (never below :data:`MIN_IVF_VECTORS`)."""
        return n >= max(self.exact_limit(dim), MIN_IVF_VECTORS)

    def compressed_limit(self, dim: int) -> int:
        """Number of vectors above which the IVF lists hold compressed codes."""
        if self.compressed_max is not None:
            return self.compressed_max
        return 2_000_000 * 512 // max(dim, 1)

    def ivf_kind(self, n: int, dim: int) -> str:
        """The IVF kind for ``n`` vectors: ``ivf`` or the compressed kind."""
        return self.compressed if n > self.compressed_limit(dim) else "ivf"

    def lists_on_disk(self, kind_name: str) -> bool:
        """Whether an index of this kind keeps its lists on disk under this policy."""
        return self.on_disk and kind(kind_name).lists_on_disk

    def nlist_for(self, n: int, kind_name: str = "ivf") -> int:
        """IVF list count for ``n`` vectors of a kind (enough training points per list guaranteed)."""
        row = kind(kind_name)
        per_list = min(40, row.max_train_per_list or 40)
        return int(max(1, min(round(self.nlist_factor * row.lists_scale * n**0.5), n // per_list)))

    def train_sample(self, n: int, kind_name: str) -> int:
        """Training vectors for ``n`` vectors of an IVF kind: per list, at least the kind's ``min_train``."""
        row = kind(kind_name)
        per_list = min(self.train_per_list, row.max_train_per_list or self.train_per_list)
        return min(n, max(self.nlist_for(n, kind_name) * per_list, row.min_train))
