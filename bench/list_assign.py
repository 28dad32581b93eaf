"""How fast, and how exactly, vectors are put in their lists of an ``ivfhnsw-sq8`` index.

Trains the kind's centroids as the gallery does (``IndexPolicy.nlist_for`` / ``train_sample``,
two-level spherical k-means) on the weakly partitioned generator of ``bench/gallery_large.py``, then
assigns a sample of fresh vectors to lists in several ways and compares each with the nearest
centroid (an exact float32 scan of all of them):

* the HNSW graph (what ``IndexIVF.add_with_ids`` does) at the kind's ``efSearch`` (128) and others;
* :class:`~csip_reid.gallery.compressed.ListAssigner` in float32 (FAISS's BLAS scan of all
  centroids) and with its bfloat16 shortlist (torch), which the gallery uses where faster;
* groups of centroids (``--grouped``: spherical k-means of the centroids into ``F sqrt(nlist)``
  groups, each vector compared with the group centres, then with the centroids of its ``M``
  nearest groups): the two-level idea, kept here because it was measured and rejected.

For each it prints microseconds per vector, the share of vectors put in their nearest list
("nearest-list accuracy"), the mean cosine lost to the nearest centroid where it errs, and the
share of vectors that lose more than 0.05 (put in a list far from their nearest).

Usage::

    nice -n 10 python bench/list_assign.py --n 1M --groups 3162 --sample 50000
"""

from __future__ import annotations

import argparse
import time

import faiss
import numpy as np
from gallery_search import cpu_name, parse_size
from synthetic import ClusteredSphere

from csip_reid.gallery import compressed as cz
from csip_reid.gallery.kinds import IndexPolicy

KIND = "ivfhnsw-sq8"
#: A vector put in a list whose centroid is this much less similar than the nearest one is "far".
FAR = 0.05


def grouped_assign(centroids: np.ndarray, x: np.ndarray, factor: float, probes: int, seed: int = 0) -> np.ndarray:
    """Nearest centroid among those of the ``probes`` groups whose centres are nearest each row."""
    nlist, dim = centroids.shape
    groups = max(1, min(nlist, int(round(factor * nlist**0.5))))
    km = faiss.Kmeans(dim, groups, niter=10, spherical=True, seed=seed, min_points_per_centroid=1,
                      max_points_per_centroid=nlist)
    km.train(centroids)
    group_of = km.index.search(centroids, 1)[1].ravel()
    lists = np.argsort(group_of, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(group_of, minlength=groups))])
    near = np.argpartition(-(x @ km.centroids.T), probes - 1, axis=1)[:, :probes].ravel()
    order = np.argsort(near, kind="stable")
    rows, starts = order // probes, np.searchsorted(near[order], np.arange(groups + 1))
    best, out = np.full(len(x), -np.inf, np.float32), np.zeros(len(x), np.int64)
    for g in range(groups):
        who, members = rows[starts[g]:starts[g + 1]], lists[bounds[g]:bounds[g + 1]]
        if not len(who) or not len(members):
            continue
        scores = x[who] @ centroids[members].T
        top = scores.argmax(axis=1)
        value = scores[np.arange(len(who)), top]
        better = value > best[who]
        best[who[better]], out[who[better]] = value[better], members[top[better]]
    return out


def _row(name: str, seconds: float, n: int, lists: np.ndarray, truth: np.ndarray, cos: np.ndarray,
         best: np.ndarray) -> str:
    wrong, lost = lists != truth, best - cos
    where_wrong = float(lost[wrong].mean()) if wrong.any() else 0.0
    return (f"| {name} | {1e6 * seconds / n:.1f} | {1 - wrong.mean():.4f} | {where_wrong:.4f} "
            f"| {(lost > FAR).mean():.4f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", default="1M", help="gallery size whose lists and training sample are used")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--groups", type=int, default=None, help="look-alike groups of the generator")
    ap.add_argument("--sample", type=int, default=50_000, help="vectors assigned")
    ap.add_argument("--ef", default="64,128", help="HNSW efSearch values")
    ap.add_argument("--grouped", default="1x16,4x64", help="grouped settings, each FxM ('' to skip)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    n = parse_size(args.n)
    policy = IndexPolicy(seed=args.seed)
    nlist = policy.nlist_for(n, KIND)
    sphere = ClusteredSphere(args.dim, max(1, n // 10), num_modes=args.groups, seed=args.seed)
    index = cz.new_ivf(KIND, args.dim, nlist)
    t = time.perf_counter()
    cz.train_ivf(index, sphere.sample(policy.train_sample(n, KIND))[0], args.seed)
    train_s = time.perf_counter() - t
    quantizer = cz.hnsw_quantizer(index)
    assert quantizer is not None
    centroids = quantizer.reconstruct_n(0, nlist)
    x = sphere.sample(args.sample)[0]
    print(f"# {cpu_name()}, faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads; N {n:,}, "
          f"nlist {nlist}, {args.sample:,} vectors assigned, train {train_s:.0f} s")
    print(f"| assignment | us/vector | nearest-list accuracy | cosine lost where wrong | share lost > {FAR} |")
    print("|---|---|---|---|---|")
    t = time.perf_counter()
    cos, truth = faiss.knn(x, centroids, 1, metric=faiss.METRIC_INNER_PRODUCT)
    flat_s = time.perf_counter() - t
    cos, truth = cos.ravel(), truth.ravel()

    def report(name: str, seconds: float, lists: np.ndarray) -> None:
        print(_row(name, seconds, len(x), lists, truth, np.einsum("nd,nd->n", x, centroids[lists]), cos),
              flush=True)

    report("faiss.knn over all centroids, float32", flat_s, truth)
    for ef in (int(e) for e in args.ef.split(",")):
        quantizer.hnsw.efSearch = ef
        t = time.perf_counter()
        lists = quantizer.search(x, 1)[1].ravel()
        report(f"HNSW graph, efSearch {ef} (add_with_ids)", time.perf_counter() - t, lists)
    for bf16, name in ((False, "float32"), (True, f"bfloat16 shortlist of {cz.RESCORED}, float32 pick")):
        assigner = cz.ListAssigner(centroids, bf16=bf16)
        assigner.assign(x[:cz.ASSIGN_BLOCK])  # warm-up
        t = time.perf_counter()
        lists = assigner.assign(x)
        report(f"ListAssigner, {name}", time.perf_counter() - t, lists)
    auto = cz.ListAssigner(centroids)
    auto.assign(x[:cz.ASSIGN_BLOCK])
    print(f"(ListAssigner's own choice on this CPU: {'bfloat16' if auto.bf16 else 'float32'})")
    for factor, m in (a.split("x") for a in args.grouped.split(",") if a):
        t = time.perf_counter()
        lists = grouped_assign(centroids, x, float(factor), int(m), args.seed)
        report(f"grouped: {m} of {round(float(factor) * nlist**0.5)} groups (k-means of the centroids included)",
               time.perf_counter() - t, lists)


if __name__ == "__main__":
    main()
