"""Gallery search benchmark: exact search vs the approximate index the gallery switches to.

For each gallery size it builds, with the gallery's own :class:`~csip_reid.gallery.index.VectorIndex`,

* the exact index (``IndexIDMap2(IndexFlatIP)``, what galleries below ``IndexPolicy.exact_limit``
  use), and
* the approximate index the gallery would build at that size (IVF-Flat, ``nlist = 2 sqrt(N)``,
  ``nprobe`` tuned on the stored vectors for leave-one-out recall@10 >= 0.97),

then times a batch of queries and single queries and measures the recall@10 of the approximate
index against exact search.

Data: clustered synthetic unit vectors (:class:`synthetic.ClusteredSphere`, ``bench/synthetic.py``), about
10 tracklets per identity and 100 identities per coarse mode, same-identity cosine ~0.5. Queries
are *fresh* samples of identities that are in the gallery, as in a real search. Uniform random
vectors are deliberately not used: in 512 dimensions all of them are nearly orthogonal, the
"true" top-10 is barely closer than the rest of the gallery, and every approximate index looks
far worse than it does on real ReID features, which are strongly clustered (by person, clothing,
camera).

Usage::

    python bench/gallery_search.py                      # 512-d at 10k, 100k, 1M
    python bench/gallery_search.py --dim 2048 --sizes 10k,100k
    python bench/gallery_search.py --threads 1         # FAISS on one core
    python bench/gallery_search.py --mode-spread 3     # less clustered data (harder for IVF)
    python bench/gallery_search.py --large 10M --dim 64 --kinds ivfsq8,ivfpq --on-disk
                                                        # chunked, compressed (bench/gallery_large.py)

Peak memory is about twice the data (``N x dim x 4`` bytes): 4 GB at 1M x 512, 16 GB at 1M x 2048.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import date

import faiss
import numpy as np
from synthetic import ClusteredSphere  # bench/synthetic.py (the script's folder is on sys.path)

from csip_reid.gallery.index import IndexPolicy, VectorIndex
from csip_reid.gallery.rebuild import build_in_memory


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else the platform's machine name."""
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def parse_size(text: str) -> int:
    """``10k`` / ``1M`` / ``250000`` → int."""
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def single_query_ms(index: VectorIndex, queries: np.ndarray, k: int) -> float:
    """Median latency of one query at a time (after one warm-up query)."""
    index.search(queries[:1], k)
    times = []
    for q in queries:
        t = time.perf_counter()
        index.search(q[None], k)
        times.append(time.perf_counter() - t)
    return 1e3 * float(np.median(times))


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


def run_size(n: int, dim: int, num_queries: int, num_single: int, k: int, seed: int,
             spreads: tuple[float, float] = (1.0, 1.5)) -> dict:
    """Benchmark one gallery size; returns the measured row."""
    sphere = ClusteredSphere(dim, max(1, n // 10), id_spread=spreads[0], mode_spread=spreads[1], seed=seed)
    vecs, _ = sphere.sample(n)
    queries, _ = sphere.sample(num_queries)
    ids = np.arange(1, n + 1, dtype=np.int64)

    t = time.perf_counter()
    exact = build_in_memory(ids, vecs, dim, IndexPolicy(exact_max=n + 1))
    exact_build = time.perf_counter() - t
    t = time.perf_counter()
    _, truth = exact.search(queries, k)
    exact_batch = 1e3 * (time.perf_counter() - t) / num_queries
    exact_single = single_query_ms(exact, queries[:num_single], k)
    del exact

    t = time.perf_counter()
    approx = build_in_memory(ids, vecs, dim, IndexPolicy(exact_max=0, seed=seed))
    approx_build = time.perf_counter() - t
    t = time.perf_counter()
    _, found = approx.search(queries, k)
    approx_batch = 1e3 * (time.perf_counter() - t) / num_queries
    approx_single = single_query_ms(approx, queries[:num_single], k)
    uses = "exact" if not IndexPolicy().use_ivf(n, dim) else "IVF" if approx.kind == "ivf" else "exact (IVF rejected)"
    return {
        "n": n, "gallery_uses": uses,
        "exact_build_s": exact_build, "exact_batch_ms": exact_batch, "exact_single_ms": exact_single,
        "approx_build_s": approx_build, "nlist": approx.nlist, "nprobe": approx.nprobe,
        "tuned_recall": approx.tuned_recall, "approx_batch_ms": approx_batch, "approx_single_ms": approx_single,
        "recall": recall_at_k(found, truth),
    }


HEADER = ("| N | gallery uses | exact build s | exact ms/q (batch) | exact ms/q (single) "
          "| approx build s (train+add+tune) | nlist / nprobe (tuned recall) | approx ms/q (batch) "
          "| approx ms/q (single) | recall@10 | speed-up (single) |")


def format_row(r: dict) -> str:
    return (f"| {r['n']:,} | {r['gallery_uses']} | {r['exact_build_s']:.2f} | {r['exact_batch_ms']:.2f} "
            f"| {r['exact_single_ms']:.2f} | {r['approx_build_s']:.1f} "
            f"| {r['nlist']} / {r['nprobe']} ({r['tuned_recall']:.3f}) | {r['approx_batch_ms']:.3f} "
            f"| {r['approx_single_ms']:.2f} | {r['recall']:.3f} "
            f"| {r['exact_single_ms'] / max(r['approx_single_ms'], 1e-9):.0f}x |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--sizes", default="10k,100k,1M", help="comma-separated gallery sizes (10k, 1M, ...)")
    ap.add_argument("--queries", type=int, default=100, help="batch size (and recall queries)")
    ap.add_argument("--single", type=int, default=30, help="single queries timed (median reported)")
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--id-spread", type=float, default=1.0, help="noise around an identity (1.0: cos 0.5)")
    ap.add_argument("--mode-spread", type=float, default=1.5,
                    help="spread of identities in a mode; larger = less clustered, harder for IVF")
    ap.add_argument("--threads", type=int, default=None, help="FAISS OpenMP threads (default: all cores)")
    ap.add_argument("--large", help="comma-separated sizes built in chunks with a compressed index "
                    "(never materialised; see bench/gallery_large.py)")
    ap.add_argument("--kinds", default="ivfsq8", help="with --large: compressed kinds (ivfsq8, ivfpq, ivfhnsw-sq8)")
    ap.add_argument("--groups", type=int, default=None, help="with --large: look-alike groups of the generator "
                    "(default one per 100 identities; N/316 gives at 1M the groups-to-lists ratio of 10M)")
    ap.add_argument("--refine-from", choices=("sqlite", "memmap"), default="sqlite",
                    help="with --large: where the refine step reads exact vectors (SQLite as the gallery does, "
                    "or a float32 memory-mapped file)")
    ap.add_argument("--on-disk", action="store_true", help="with --large: inverted lists in a file")
    ap.add_argument("--add-by", choices=("assigner", "graph"), default="assigner",
                    help="with --large: find an HNSW quantizer's lists for added vectors by the gallery's "
                    "ListAssigner (default) or by the graph (add_with_ids)")
    args = ap.parse_args()
    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    if args.large:
        from gallery_large import HEADER as LHEADER
        from gallery_large import format_curve, run_large
        from gallery_large import format_row as lformat

        print(f"# large gallery, {platform.machine()} {cpu_name()}, {os.cpu_count()} cores, faiss "
              f"{faiss.__version__}, {faiss.omp_get_max_threads()} threads, {date.today()}")
        print(LHEADER)
        print("|" + "---|" * (LHEADER.count("|") - 1))
        curves = []
        for size in args.large.split(","):
            for kind in args.kinds.split(","):
                row = run_large(parse_size(size), args.dim, kind, args.on_disk, args.queries, args.k,
                                args.seed, (args.id_spread, args.mode_spread), args.groups, args.refine_from, args.add_by)
                print(lformat(row), flush=True)
                curves.append(format_curve(row))
        print("\n".join(["", *curves]))
        return

    print(f"# gallery search, dim {args.dim}, k={args.k}, {args.queries}-query batches, "
          f"median of {args.single} single queries, id/mode spread {args.id_spread}/{args.mode_spread}")
    print(f"# {platform.machine()} {cpu_name()}, {os.cpu_count()} cores, faiss {faiss.__version__}, "
          f"{faiss.omp_get_max_threads()} threads, GPUs: {faiss.get_num_gpus()}, {date.today()}")
    print(HEADER)
    print("|" + "---|" * (HEADER.count("|") - 1))
    for size in args.sizes.split(","):
        row = run_size(parse_size(size), args.dim, args.queries, args.single, args.k, args.seed,
                       (args.id_spread, args.mode_spread))
        print(format_row(row), flush=True)


if __name__ == "__main__":
    main()
