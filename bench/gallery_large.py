"""Gallery search at 1M-100M vectors without holding them: chunked synthetic data, compressed IVF.

Used by ``bench/gallery_search.py --large``. Vectors are generated in chunks (never all in memory),
the compressed index (:mod:`csip_reid.gallery.compressed`) is trained once on a sample and filled
chunk by chunk, exact top-k ground truth for a query sample is a chunked scan that keeps the best
k per query, and ``nprobe`` is tuned as the gallery tunes it (smallest power of two reaching
recall@10 0.97, here on a separate tuning query set against the exact ground truth).

Kinds with a refine step (``ivfhnsw-sq8``) re-rank their candidates by exact vectors that the
bench keeps in a float32 memory-mapped file beside the lists (the gallery reads them from SQLite),
through the gallery's own ``VectorIndex.search``. For them the bench also prints the recall and
latency at the tuned ``nprobe`` for other ``k_factor`` and quantizer ``efSearch`` values.
``groups`` sets the generator's look-alike groups (default one per 100 identities), to reproduce
at 1-3M the ratio of groups to lists that makes 10M hard.
"""

from __future__ import annotations

import resource
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np
from synthetic import ClusteredSphere

from csip_reid.gallery import compressed as cz
from csip_reid.gallery.database import rows_in
from csip_reid.gallery.index import IndexPolicy, VectorIndex, nprobe_candidates

CHUNK = 250_000


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident memory of this process in MB."""
    cur = 0.0
    for line in open("/proc/self/status", encoding="utf-8"):
        if line.startswith("VmRSS:"):
            cur = int(line.split()[1]) / 1024
    return cur, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_anon_mb() -> float:
    """Anonymous resident memory of this process in MB (RSS less mapped file pages the kernel may drop)."""
    for line in open("/proc/self/status", encoding="utf-8"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _topk_merge(best_s, best_i, s, i, k):
    cs, ci = np.concatenate([best_s, s], 1), np.concatenate([best_i, i], 1)
    order = np.argsort(-cs, axis=1)[:, :k]
    return np.take_along_axis(cs, order, 1), np.take_along_axis(ci, order, 1)


class SqliteVectors:
    """Exact vectors in SQLite, as the gallery keeps them (the refine step's reads, like ``embeddings_of``).

    Each row carries 2 KB ahead of the embedding, standing in for a tracklet's boxes, frames and
    timestamps (stored before ``embedding`` in ``tracklets``), so a read crosses pages as it does there.
    """

    def __init__(self, path: Path, dim: int) -> None:
        self.conn, self.dim = sqlite3.connect(path), dim
        self.conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, track BLOB NOT NULL, embedding BLOB NOT NULL)")

    def add(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        pad = bytes(2048)
        with self.conn:
            self.conn.executemany("INSERT INTO t VALUES (?, ?, ?)",
                                  ((int(i), pad, v.astype("<f4").tobytes()) for i, v in zip(ids, vecs, strict=True)))

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        out = np.empty((len(ids), self.dim), np.float32)
        row = {int(t): i for i, t in enumerate(ids)}
        for tid, blob in rows_in(self.conn.execute, "SELECT id, embedding FROM t WHERE id IN ({ids})", ids):
            out[row[tid]] = np.frombuffer(blob, "<f4")
        return out


def _timed_search(vi: VectorIndex, q: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    t = time.perf_counter()
    found = vi.search(q, k)[1]
    return found, 1e3 * (time.perf_counter() - t) / len(q)


def run_large(n: int, dim: int, kind: str, on_disk: bool, num_queries: int, k: int, seed: int,
              spreads: tuple[float, float], groups: int | None = None, refine_from: str = "sqlite",
              add_by: str = "assigner") -> dict:
    """Build a compressed index of ``n`` vectors in chunks and measure it.

    ``add_by="graph"`` adds through the HNSW quantizer's graph (``add_with_ids``) instead of the
    :class:`~csip_reid.gallery.compressed.ListAssigner` that the gallery's rebuild uses.
    """
    policy = IndexPolicy(seed=seed)
    nlist = policy.nlist_for(n, kind)
    sphere = ClusteredSphere(dim, max(1, n // 10), num_modes=groups, id_spread=spreads[0], mode_spread=spreads[1],
                             seed=seed)
    queries, query_ids = sphere.sample(num_queries)
    queries = queries.astype(np.float32)
    tune_q = sphere.sample(num_queries)[0].astype(np.float32)
    person = np.empty(n, np.int32)  # identity of every stored vector (4 B each), for same-person recall
    allq = np.concatenate([queries, tune_q])
    index = cz.new_ivf(kind, dim, nlist)
    tmp = Path(tempfile.mkdtemp(prefix="gallery_large_"))
    t0 = time.perf_counter()
    cz.train_ivf(index, sphere.sample(policy.train_sample(n, kind))[0], seed)  # same distribution
    train_s = time.perf_counter() - t0
    if on_disk:
        cz.move_lists_to_disk(index, tmp)
    vi = VectorIndex(index, kind, dim, nlist=nlist, nprobe=1, use_gpu=False)
    exact: np.ndarray | Path | SqliteVectors | None = None
    if vi.k_factor > 1 and refine_from == "sqlite":  # the refine step's exact vectors, by id (= position)
        exact = vi.exact_vectors = SqliteVectors(tmp / "exact.sqlite", dim)
    elif vi.k_factor > 1:  # written by file writes (page cache, not this process's RSS), mapped when read
        exact = tmp / "exact.f32"
        exact.touch()
    best_s = np.full((len(allq), k), -np.inf, np.float32)
    best_i = np.full((len(allq), k), -1, np.int64)
    t = time.perf_counter()
    assigner = cz.ListAssigner.for_index(index) if add_by == "assigner" else None  # as the gallery's rebuild
    add_s, gt_s, anon_peak = time.perf_counter() - t, 0.0, 0.0
    for start in range(0, n, CHUNK):
        m = min(CHUNK, n - start)
        chunk, labels = sphere.sample(m)
        chunk = chunk.astype(np.float32)
        person[start : start + m] = labels
        ids = np.arange(start, start + m, dtype=np.int64)
        t = time.perf_counter()
        cz.add_in_chunks(index, ids, chunk, assigner=assigner)
        add_s += time.perf_counter() - t
        if isinstance(exact, SqliteVectors):  # the gallery's store, written anyway: not in "add s"
            exact.add(ids, chunk)
        elif exact is not None:
            with open(exact, "ab") as f:
                chunk.tofile(f)
        anon_peak = max(anon_peak, rss_anon_mb())
        t = time.perf_counter()
        s, pos = faiss.knn(allq, chunk, k, metric=faiss.METRIC_INNER_PRODUCT)
        best_s, best_i = _topk_merge(best_s, best_i, s, pos + start, k)
        gt_s += time.perf_counter() - t
        del chunk
    truth, tune_truth = best_i[:num_queries], best_i[num_queries:]
    if isinstance(exact, Path):
        exact = np.memmap(exact, np.float32, "r", shape=(n, dim))
        vi.exact_vectors = exact.__getitem__
    # tune nprobe as the gallery does (VectorIndex.tune): powers of two below nlist/2, then nlist/2;
    # the smallest reaching the target, else the best one (on tuning queries vs the exact truth)
    t = time.perf_counter()
    candidates = nprobe_candidates(nlist)
    best, curve = (-1.0, candidates[-1]), []
    for nprobe in candidates:
        cz.set_nprobe(index, nprobe)
        found, ms = _timed_search(vi, tune_q, k)
        r = _recall(found, tune_truth)
        curve.append((nprobe, r, ms))
        if r > best[0]:
            best = (r, nprobe)
        if r >= policy.recall_target:
            break
    tuned, chosen = best
    tune_s = time.perf_counter() - t
    cz.set_nprobe(index, chosen)
    found, batch_ms = _timed_search(vi, queries, k)
    singles = [_timed_search(vi, q[None], k)[1] for q in queries[:30]]
    side = _side_curves(vi, index, chosen, tune_q, tune_truth, k)
    vi_k_factor = vi.k_factor
    cur, peak = rss_mb()
    disk = sum(p.stat().st_size for p in tmp.glob(cz.LISTS_GLOB)) / 1e6 if cz.lists_file(index) else 0.0
    by_graph = cz.hnsw_quantizer(index) is not None
    del index, vi, exact
    shutil.rmtree(tmp, ignore_errors=True)
    refine = f" (refine: {refine_from})" if vi_k_factor > 1 else ""
    refine += " (added by graph)" if add_by == "graph" and by_graph else ""
    return {"n": n, "dim": dim, "kind": kind + (" on-disk" if on_disk else "") + refine, "nlist": nlist,
            "nprobe": chosen, "tuned_recall": tuned, "recall": _recall(found, truth),
            "person_recall": _person_recall(found, truth, person, query_ids),
            "train_s": train_s, "add_s": add_s, "tune_s": tune_s, "gt_scan_s": gt_s,
            "batch_ms": batch_ms, "single_ms": float(np.median(singles)),
            "rss_mb": cur, "peak_rss_mb": peak, "anon_peak_mb": max(anon_peak, rss_anon_mb()), "lists_disk_mb": disk,
            "bytes_per_vector": cz.memory_bytes_per_vector(kind, dim), "curve": curve, **side}


def _side_curves(vi: VectorIndex, index: faiss.IndexIVF, nprobe: int, q: np.ndarray, truth: np.ndarray,
                 k: int) -> dict:
    """At the tuned ``nprobe``: recall and ms/query for other ``k_factor`` and ``efSearch`` values."""
    if cz.hnsw_quantizer(index) is None:
        return {}
    default_kf, out = vi.k_factor, {"k_factor_curve": [], "ef_curve": []}
    for kf in sorted({1, 2, 4, 8, default_kf}):
        vi.k_factor = kf
        found, ms = _timed_search(vi, q, k)
        out["k_factor_curve"].append((kf, _recall(found, truth), ms))
    vi.k_factor = default_kf
    for ef in sorted({nprobe, 2 * nprobe, 4 * nprobe, max(cz.EF_MIN, cz.EF_PER_PROBE * nprobe)}):
        cz.set_nprobe(index, nprobe, ef)
        found, ms = _timed_search(vi, q, k)
        out["ef_curve"].append((ef, _recall(found, truth), ms))
    cz.set_nprobe(index, nprobe)
    return out


def _person_recall(found: np.ndarray, truth: np.ndarray, person: np.ndarray, query_ids: np.ndarray) -> float:
    """Of the exact top-k that are the query's own person, the share the index returns.

    The rest of an exact top-k, once a person's few sightings are used up, are near-ties of
    unrelated vectors; this is the part of recall a ReID search is for.
    """
    shares = []
    for f, t, who in zip(found, truth, query_ids, strict=True):
        own = {int(i) for i in t if i >= 0 and person[i] == who}
        if own:
            shares.append(len(own & {int(i) for i in f}) / len(own))
    return float(np.mean(shares)) if shares else float("nan")


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


HEADER = ("| N x dim | index | nlist / nprobe (tuned) | recall@10 vs exact | same-person recall | train s | add s | "
          "ms/q batch | ms/q single | RSS MB (peak) | lists on disk MB | B/vector |")


def format_curve(r: dict) -> str:
    """The tuning curves: recall@10 on the tuning queries and batched ms/query for each value tried."""
    lines = [f"{r['n']:,} {r['kind']}: add {r['add_s']:.1f} s, tune {r['tune_s']:.1f} s, exact scan "
             f"{r['gt_scan_s']:.1f} s, anonymous RSS (sampled per chunk) peak {r['anon_peak_mb']:.0f} MB"]
    for key, name in (("curve", "nprobe"), ("k_factor_curve", f"k_factor at nprobe {r['nprobe']}"),
                      ("ef_curve", f"efSearch at nprobe {r['nprobe']}")):
        if r.get(key):
            lines.append(f"  {name} (recall@10, ms/q batched): " + ", ".join(
                f"{p}: {rec:.3f} ({ms:.1f} ms)" for p, rec, ms in r[key]))
    return "\n".join(lines)


def format_row(r: dict) -> str:
    return (f"| {r['n']:,} x {r['dim']} | {r['kind']} | {r['nlist']} / {r['nprobe']} ({r['tuned_recall']:.3f}) "
            f"| {r['recall']:.3f} | {r['person_recall']:.3f} | {r['train_s']:.1f} | {r['add_s']:.1f} | {r['batch_ms']:.3f} "
            f"| {r['single_ms']:.2f} | {r['rss_mb']:.0f} ({r['peak_rss_mb']:.0f}) | {r['lists_disk_mb']:.0f} "
            f"| {r['bytes_per_vector']} |")
