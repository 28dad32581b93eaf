"""Gallery search at 1M-100M vectors without holding them: chunked synthetic data, compressed IVF.

Used by ``bench/gallery_search.py --large``. Vectors are generated in chunks (never all in memory),
the compressed index (:mod:`csip_reid.gallery.compressed`) is trained once on a sample and filled
chunk by chunk, exact top-k ground truth for a query sample is a chunked scan that keeps the best
k per query, and ``nprobe`` is tuned as the gallery tunes it (smallest power of two reaching
recall@10 0.97, here on a separate tuning query set against the exact ground truth).
"""

from __future__ import annotations

import resource
import shutil
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np
from synthetic import ClusteredSphere

from csip_reid.gallery.compressed import lists_file, memory_bytes_per_vector, move_lists_to_disk, new_ivf
from csip_reid.gallery.index import _NPROBE_CANDIDATES, IndexPolicy

CHUNK = 250_000


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident memory of this process in MB."""
    cur = 0.0
    for line in open("/proc/self/status", encoding="utf-8"):
        if line.startswith("VmRSS:"):
            cur = int(line.split()[1]) / 1024
    return cur, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _topk_merge(best_s, best_i, s, i, k):
    cs, ci = np.concatenate([best_s, s], 1), np.concatenate([best_i, i], 1)
    order = np.argsort(-cs, axis=1)[:, :k]
    return np.take_along_axis(cs, order, 1), np.take_along_axis(ci, order, 1)


def run_large(n: int, dim: int, kind: str, on_disk: bool, num_queries: int, k: int, seed: int,
              spreads: tuple[float, float]) -> dict:
    """Build a compressed index of ``n`` vectors in chunks and measure it."""
    policy = IndexPolicy(seed=seed)
    nlist = policy.nlist_for(n)
    sphere = ClusteredSphere(dim, max(1, n // 10), id_spread=spreads[0], mode_spread=spreads[1], seed=seed)
    queries, query_ids = sphere.sample(num_queries)
    queries = queries.astype(np.float32)
    tune_q = sphere.sample(num_queries)[0].astype(np.float32)
    person = np.empty(n, np.int32)  # identity of every stored vector (4 B each), for same-person recall
    allq = np.concatenate([queries, tune_q])
    index = new_ivf(kind, dim, nlist)
    tmp = Path(tempfile.mkdtemp(prefix="gallery_large_"))
    t0 = time.perf_counter()
    n_train = min(n, max(nlist * policy.train_per_list, 10_000 if kind == "ivfpq" else 0))
    index.train(sphere.sample(n_train)[0].astype(np.float32))  # a sample from the same distribution
    train_s = time.perf_counter() - t0
    if on_disk:
        move_lists_to_disk(index, tmp)
    best_s = np.full((len(allq), k), -np.inf, np.float32)
    best_i = np.full((len(allq), k), -1, np.int64)
    add_s = gt_s = 0.0
    for start in range(0, n, CHUNK):
        m = min(CHUNK, n - start)
        chunk, labels = sphere.sample(m)
        chunk = chunk.astype(np.float32)
        person[start : start + m] = labels
        ids = np.arange(start, start + m, dtype=np.int64)
        t = time.perf_counter()
        index.add_with_ids(chunk, ids)
        add_s += time.perf_counter() - t
        t = time.perf_counter()
        s, pos = faiss.knn(allq, chunk, k, metric=faiss.METRIC_INNER_PRODUCT)
        best_s, best_i = _topk_merge(best_s, best_i, s, pos + start, k)
        gt_s += time.perf_counter() - t
        del chunk
    truth, tune_truth = best_i[:num_queries], best_i[num_queries:]
    # tune nprobe as the gallery does (VectorIndex.tune): powers of two below nlist/2, then nlist/2;
    # the smallest reaching the target, else the best one (on tuning queries vs the exact truth)
    t = time.perf_counter()
    candidates = [c for c in _NPROBE_CANDIDATES if c < nlist // 2] + [max(1, nlist // 2)]
    best, curve = (-1.0, candidates[-1]), []
    for nprobe in candidates:
        index.nprobe = nprobe
        tq = time.perf_counter()
        r = _recall(index.search(tune_q, k)[1], tune_truth)
        curve.append((nprobe, r, 1e3 * (time.perf_counter() - tq) / len(tune_q)))
        if r > best[0]:
            best = (r, nprobe)
        if r >= policy.recall_target:
            break
    tuned, chosen = best
    tune_s = time.perf_counter() - t
    t = time.perf_counter()
    _, found = index.search(queries, k)
    batch_ms = 1e3 * (time.perf_counter() - t) / num_queries
    singles = []
    for q in queries[:30]:
        t = time.perf_counter()
        index.search(q[None], k)
        singles.append(time.perf_counter() - t)
    cur, peak = rss_mb()
    disk = sum(p.stat().st_size for p in tmp.iterdir()) / 1e6 if lists_file(index) else 0.0
    del index
    shutil.rmtree(tmp, ignore_errors=True)
    return {"n": n, "dim": dim, "kind": kind + (" on-disk" if on_disk else ""), "nlist": nlist,
            "nprobe": chosen, "tuned_recall": tuned, "recall": _recall(found, truth),
            "person_recall": _person_recall(found, truth, person, query_ids),
            "train_s": train_s, "add_s": add_s, "tune_s": tune_s, "gt_scan_s": gt_s,
            "batch_ms": batch_ms, "single_ms": 1e3 * float(np.median(singles)),
            "rss_mb": cur, "peak_rss_mb": peak, "lists_disk_mb": disk,
            "bytes_per_vector": memory_bytes_per_vector(kind, dim), "curve": curve}


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
    """The tuning curve: recall@10 on the tuning queries and batched ms/query for each nprobe tried."""
    return "  nprobe curve (recall@10, ms/q batched): " + ", ".join(
        f"{p}: {rec:.3f} ({ms:.1f} ms)" for p, rec, ms in r["curve"])


def format_row(r: dict) -> str:
    return (f"| {r['n']:,} x {r['dim']} | {r['kind']} | {r['nlist']} / {r['nprobe']} ({r['tuned_recall']:.3f}) "
            f"| {r['recall']:.3f} | {r['person_recall']:.3f} | {r['train_s']:.1f} | {r['add_s']:.1f} | {r['batch_ms']:.3f} "
            f"| {r['single_ms']:.2f} | {r['rss_mb']:.0f} ({r['peak_rss_mb']:.0f}) | {r['lists_disk_mb']:.0f} "
            f"| {r['bytes_per_vector']} |")
