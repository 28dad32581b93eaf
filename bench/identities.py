"""Identities benchmark: clustering quality on real tracklets, query variants, and build cost at scale.

Parts (``--parts``, default all):

* ``minimars``: the 64 real MARS test tracklets of ``$REID_TEST_DATA/reid_tracklets/mini_mars_full``
  (``--dataset``; 16 people, 6 cameras; full length, query + gallery splits), embedded with
  ``--embedder`` (``--frames`` evenly spread crops each, pooled with ``--pooling``) into a gallery,
  one video per tracklet and no wall-clock times (MARS has none). ``reid identities
  build`` with the automatic threshold: pairwise precision / recall / F1 and identities found vs
  16, plus the same at fixed thresholds for context. Then "find this person" for every tracklet
  (MARS protocol: same person in the same camera is left out): mAP and rank-1 of plain search,
  k-reciprocal re-ranking, expansion with the best hit's identity, and both.
* ``intel``: the Intel clip, each of its 6 person spans cut into two files, the first half into
  ``cam1/`` and the second into ``cam2/`` with their true start times, indexed with the offline
  pipeline (YOLOX-nano + ``--embedder``), then identities with the automatic threshold vs 6 people.
* ``crowd``: the tracklets of the dense night crowd (``mmtracking_demo.mp4``, YOLOX-nano, every
  frame), each split into its even and odd crops: how often each even half finds its own odd half
  first among all halves (rank-1, mAP), and how similar different people (all overlap in time)
  still look (median and 99th percentile cosine), for every ``--pooling`` variant.
* ``scale``: ``build`` on synthetic clustered vectors (``bench/synthetic.py``, 10 sightings per
  person, each in another video, 50 people per video at overlapping times) at 10k and 100k
  tracklets, each size in its own process: seconds per step and peak memory (RSS).

Usage::

    nice -n 10 python bench/identities.py                    # everything (~10 min on 2 cores)
    nice -n 10 python bench/identities.py --parts scale --sizes 10k,100k
    nice -n 10 python bench/identities.py --parts minimars,crowd --pooling mean,quality,quality+flip

The default embedder is the pipeline's default (``PipelineSettings().embedder``); every part
prints the automatic threshold and the reason it was chosen.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("REID_TEST_DATA", ROOT.parent / "shared" / "data"))


def pairwise_prf(groups: list[list[int]], truth: dict[int, int]) -> dict[str, float]:
    """Pairwise precision, recall and F1 of a clustering against true labels."""
    tp = sum(n * (n - 1) / 2 for g in groups for n in _counts([truth[t] for t in g]))
    pred = sum(len(g) * (len(g) - 1) / 2 for g in groups)
    true = sum(n * (n - 1) / 2 for n in _counts(list(truth.values())))
    p = tp / pred if pred else 1.0
    r = tp / true if true else 1.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r) if p + r else 0.0, 4)}


def _counts(labels: list[int]) -> list[int]:
    out: dict[int, int] = defaultdict(int)
    for x in labels:
        out[x] += 1
    return list(out.values())


def _groups(g) -> list[list[int]]:
    from csip_reid.identity import list_identities

    return [[t["tracklet_id"] for t in p["tracklets"]] for p in list_identities(g)]


def _average_precision(ranked: list[int], relevant: set[int]) -> float:
    hits, total = 0, 0.0
    for i, t in enumerate(ranked, start=1):
        if t in relevant:
            hits += 1
            total += hits / i
    return total / max(len(relevant), 1)


# ------------------------------------------------------------------------------------------ mini-MARS
def _embedder(spec: str, pooling: str | None):
    from csip_reid.pipeline.embed import create_embedder

    return create_embedder(spec, pooling=pooling)


def minimars_rows(dataset: str = "mini_mars_full", leave_out: str | None = "train") -> dict[str, list[dict]]:
    """Label rows of a mini-MARS folder per tracklet, in frame order (the ``leave_out`` split left out)."""
    by: dict[str, list[dict]] = defaultdict(list)
    with open(DATA / "reid_tracklets" / dataset / "labels.csv", newline="") as f:
        for row in csv.DictReader(f):
            if leave_out is None or row["split"] != leave_out:
                by[row["tracklet"]].append(row)
    return {k: sorted(v, key=lambda r: int(r["frame_index_in_tracklet"])) for k, v in sorted(by.items())}


def minimars_tracklets(rows_by: dict[str, list[dict]], frames: int, dataset: str = "mini_mars_full"):
    """``(tracklets, person ids)``: each labelled tracklet with ``frames`` evenly spaced crops (not embedded)."""
    import cv2

    from csip_reid.core.tracklet import Tracklet

    root = DATA / "reid_tracklets" / dataset
    tracklets, people = [], []
    for name, rows in rows_by.items():
        rows = [rows[i] for i in np.linspace(0, len(rows) - 1, min(frames, len(rows))).round().astype(int)]
        fr = np.arange(len(rows))
        tracklets.append(Tracklet(video=f"{name}.mp4", camera=f"C{rows[0]['camera']}", track_id=1, frames=fr,
                                  timestamps=fr / 25.0, boxes=np.tile([0, 0, 128, 256], (len(rows), 1)),
                                  sample_frames=fr, crops=[cv2.imread(str(root / r["path"])) for r in rows],
                                  thumbnail=cv2.imread(str(root / rows[0]["path"]))))
        people.append(int(rows[0]["person_id"]))
    return tracklets, people


def stored_apart(g, tracklets: list, people: list[int]) -> tuple[dict[int, int], dict[int, str]]:
    """Add each (embedded) tracklet to gallery ``g`` as a video of its own: ``(person, camera)`` by tracklet id."""
    from csip_reid.gallery import VideoRecord

    truth, cam = {}, {}
    for t, p in zip(tracklets, people, strict=True):
        vid = g.add_video(VideoRecord(f"/mars/{t.camera}/{t.video}", f"h-{t.video}", t.camera, 25.0, len(t), 128, 256),
                          [t])
        tid = g.tracklet_ids(vid)[0]
        truth[tid], cam[tid] = p, t.camera
    return truth, cam


def minimars(frames: int, spec: str, pooling: str | None, dataset: str = "mini_mars_full") -> dict:
    from csip_reid.gallery import Gallery, embedder_info
    from csip_reid.identity import build_identities
    from csip_reid.pipeline import query_post as post

    embedder = _embedder(spec, pooling)
    tracklets, people = minimars_tracklets(minimars_rows(dataset), frames, dataset)
    t0 = time.perf_counter()
    embedder.embed_tracklets(tracklets)
    embed_s = time.perf_counter() - t0
    out: dict = {"dataset": dataset, "embedder": spec, "pooling": embedder.pooling.name,
                 "tracklets": len(tracklets), "people": len(set(people)), "frames_per_tracklet": frames,
                 "embed_seconds": round(embed_s, 1)}
    with tempfile.TemporaryDirectory() as tmp, Gallery.create(Path(tmp) / "g", embedder_info(embedder)) as g:
        truth, cam = stored_apart(g, tracklets, people)
        rep = build_identities(g)
        groups = _groups(g)
        out["auto"] = {"threshold": rep["threshold"], "source": rep["threshold_source"],
                       "reason": rep["threshold_reason"], "identities": len(groups),
                       "identities_seen_twice_or_more": sum(len(x) > 1 for x in groups),
                       **pairwise_prf(groups, truth), "build_seconds": rep["seconds"]["total"]}
        out["fixed"] = {}
        for th in np.round(np.arange(0.3, 0.92, 0.04), 2).tolist():
            build_identities(g, th, rebuild=True)
            gr = _groups(g)
            out["fixed"][str(th)] = {"identities": len(gr), **pairwise_prf(gr, truth)}
        best = max(out["fixed"], key=lambda th: out["fixed"][th]["f1"])
        out["best_fixed"] = {"threshold": float(best), **out["fixed"][best]}
        build_identities(g, rebuild=True)  # back to the automatic identities for expansion
        ids, vecs = g.vectors()
        names = ("plain", "rerank", "rerank k1=6,k2=3", "expand", "expand+rerank")
        variants: dict[str, list[tuple[float, float]]] = {k: [] for k in names}
        for qi, q in enumerate(ids.tolist()):
            relevant = {t for t in truth if truth[t] == truth[q] and cam[t] != cam[q]}
            if not relevant:
                continue
            junk = {t for t in truth if truth[t] == truth[q] and cam[t] == cam[q]}
            for name in variants:
                vec = vecs[qi]
                hits = g.search(vec, k=len(ids))[0]
                if name.startswith("expand"):
                    found = post.expansion(g, vec, [h for h in hits if h.tracklet_id != q])
                    if found is not None:
                        vec = found[0]
                        hits = g.search(vec, k=len(ids))[0]
                hits = [h for h in hits if h.tracklet_id not in junk]
                if name.endswith("rerank"):
                    hits = post.rerank(g, vec, hits[:100])
                elif name.startswith("rerank k1=6"):
                    hits = post.rerank(g, vec, hits[:100], k1=6, k2=3)
                ranked = [h.tracklet_id for h in hits]
                variants[name].append((_average_precision(ranked, relevant), float(ranked[0] in relevant)))
        out["query"] = {k: {"mAP": round(float(np.mean([a for a, _ in v])), 4),
                            "rank1": round(float(np.mean([r for _, r in v])), 4), "queries": len(v)}
                        for k, v in variants.items()}
    return out


# ------------------------------------------------------------------------------------------ Intel
SEGMENTS = [(70, 190), (230, 440), (510, 690), (750, 860), (940, 1190), (1240, 1350)]


def intel(spec: str, pooling: str | None) -> dict:
    from datetime import UTC, datetime, timedelta

    from csip_reid.core.video import cut_clip
    from csip_reid.gallery import Gallery
    from csip_reid.identity import build_identities
    from csip_reid.pipeline.indexer import Indexer
    from csip_reid.pipeline.settings import PipelineSettings

    src = DATA / "videos" / "intel_one-by-one-person-detection.mp4"
    base = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        truth_of_video: dict[str, int] = {}
        starts: dict[str, str] = {}
        for p, (a, b) in enumerate(SEGMENTS):
            mid = (a + b) // 2
            for cam, (s, e) in (("cam1", (a, mid)), ("cam2", (mid, b))):
                dst = tmp / cam / f"person{p}_{cam}.mp4"
                dst.parent.mkdir(exist_ok=True)
                cut_clip(src, dst, s, e)
                truth_of_video[str(dst.resolve())] = p
                starts[str(dst.resolve())] = (base + timedelta(seconds=s / 10.0)).isoformat()
        settings = PipelineSettings.load("offline_demo", detector="yolox:yolox_nano", embedder=spec)
        t0 = time.perf_counter()
        with _pooled(pooling):
            indexer = Indexer(tmp / "g", settings, progress=False, log=lambda m: None)
        indexer.index([tmp / "cam1", tmp / "cam2"], camera_from="parent")
        index_s = time.perf_counter() - t0
        with Gallery.open(tmp / "g") as g:
            for path, iso in starts.items():
                g.set_video_time(path, iso)
            rows = [(r.id, r.video, r.camera) for r in g.iter_tracklets()]
            truth = {t: truth_of_video[v] for t, v, _ in rows}
            camera = {t: c for t, _, c in rows}
            rep = build_identities(g)
            groups = _groups(g)
            people_per_identity = [sorted({truth[t] for t in gr}) for gr in groups]
            return {"embedder": spec, "pooling": indexer.pipeline.embedder.pooling.name, "files": len(truth_of_video), "tracklets": len(truth), "index_seconds": round(index_s, 1),
                    "identities": len(groups), "people": 6, "threshold": rep["threshold"],
                    "source": rep["threshold_source"], "reason": rep["threshold_reason"],
                    "refused_merges": rep["refused"], **pairwise_prf(groups, truth),
                    "people_per_identity": people_per_identity,
                    "two_camera_identities": sum(len({camera[t] for t in gr}) > 1 for gr in groups),
                    "build_report": rep}


@contextmanager
def _pooled(pooling: str | None):
    """Pipelines built inside pool with ``pooling`` (None: the embedder's default)."""
    import csip_reid.pipeline.embed as embed

    made = embed.create_embedder
    embed.create_embedder = lambda spec, device="cpu", **o: made(spec, device, **{"pooling": pooling, **o})
    try:
        yield
    finally:
        embed.create_embedder = made


# ------------------------------------------------------------------------------------------ crowd
def _subset(t, idx: np.ndarray):
    from dataclasses import replace

    def pick(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else a[idx]

    return replace(t, sample_frames=t.sample_frames[idx], crops=[t.crops[i] for i in idx],
                   sample_boxes=pick(t.sample_boxes), sample_scores=pick(t.sample_scores),
                   sample_overlap=pick(t.sample_overlap), sample_cut=pick(t.sample_cut), keypoints=None,
                   skeleton=None, embedding=None)


def crowd(spec: str, poolings: list[str | None]) -> dict:
    from csip_reid.pipeline.indexer import Pipeline
    from csip_reid.pipeline.settings import PipelineSettings

    settings = PipelineSettings.load("offline_demo", detector="yolox:yolox_nano", embedder=spec, scan="full",
                                     min_frames=4)
    with _pooled(poolings[0]):
        pipe = Pipeline(settings)
    tracks = [t for t in pipe.tracklets(DATA / "videos" / "mmtracking_demo.mp4", progress=False) if len(t.crops) >= 4]
    out: dict = {"embedder": spec, "tracklets": len(tracks),
                 "crops_covered_over_30pct": int(sum((t.sample_overlap > 0.3).sum() for t in tracks)),
                 "crops_cut_by_edge": int(sum(t.sample_cut.sum() for t in tracks)),
                 "crops": int(sum(len(t.crops) for t in tracks)), "variants": {}}
    for pooling in poolings:
        emb = _embedder(spec, pooling)
        halves = [_subset(t, np.arange(h, len(t.crops), 2)) for t in tracks for h in (0, 1)]
        v = emb.embed_tracklets(halves)
        even, odd = v[0::2], v[1::2]
        s = even @ odd.T
        ranks = (s > np.diag(s)[:, None]).sum(1)
        full = emb.embed_tracklets([_subset(t, np.arange(len(t.crops))) for t in tracks])
        diff = (full @ full.T)[np.triu_indices(len(tracks), 1)]
        out["variants"][emb.pooling.name] = {
            "self_rank1": round(float(np.mean(ranks == 0)), 4), "self_mAP": round(float(np.mean(1 / (ranks + 1))), 4),
            "different_median": round(float(np.median(diff)), 4),
            "different_p99": round(float(np.quantile(diff, 0.99)), 4)}
    return out


# ------------------------------------------------------------------------------------------ scale
def scale_one(n: int, dim: int) -> dict:
    sys.path.insert(0, str(Path(__file__).parent))
    from synthetic import ClusteredSphere

    from csip_reid.gallery.kinds import IndexPolicy
    from csip_reid.gallery.rebuild import build_in_memory
    from csip_reid.identity import TrackletTable, cluster_table

    per_id, per_video = 10, 50
    sphere = ClusteredSphere(dim, n // per_id, seed=1)
    labels = np.repeat(np.arange(n // per_id), per_id)
    rng = np.random.default_rng(2)
    vecs = np.empty((n, dim), np.float32)
    for s in range(0, n, 65536):
        e = min(n, s + 65536)
        noise = rng.standard_normal((e - s, dim), dtype=np.float32) * np.float32(sphere.id_spread / dim**0.5)
        v = sphere.centres[labels[s:e]] + noise
        vecs[s:e] = v / np.linalg.norm(v, axis=1, keepdims=True)
    # the k-th sighting of each person is in video block k: 50 people per video, overlapping times
    num_videos = n // per_video
    video = (np.arange(n) % per_id) * (num_videos // per_id) + (labels % (num_videos // per_id))
    start = rng.uniform(0, 300, n)
    rows = [(i + 1, int(video[i]), f"cam{video[i]}", float(start[i]), float(start[i] + rng.uniform(5, 30)), None)
            for i in range(n)]
    table = TrackletTable.from_rows(rows)
    t0 = time.perf_counter()
    index = build_in_memory(table.ids, vecs, dim, IndexPolicy())
    index_s = time.perf_counter() - t0
    cpu0 = time.process_time()
    out = cluster_table(table, vecs, lambda q, k: index.search(q, k))
    cpu = time.process_time() - cpu0  # CPU seconds of every thread: steadier than wall time on a shared machine
    truth = {i: int(labels[i]) for i in range(n)}
    prf = pairwise_prf(out["groups"], truth)
    return {"tracklets": n, "people": n // per_id, "dim": dim, "index": index.kind, "index_seconds": round(index_s, 2),
            **{f"{k}_seconds": round(v, 2) for k, v in out["seconds"].items()},
            "build_cpu_seconds": round(cpu, 2), "edges": out["edges"],
            "threshold": round(out["threshold"].value, 4), "threshold_source": out["threshold"].source,
            "identities": len(out["groups"]), **prf,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "vectors_mb": round(vecs.nbytes / 2**20), "dense_matrix_would_be_mb": round(n * n * 4 / 2**20)}


def parse_size(text: str) -> int:
    text = text.strip().lower()
    return int(float(text[:-1]) * {"k": 1_000, "m": 1_000_000}[text[-1]]) if text[-1] in "km" else int(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parts", default="minimars,intel,crowd,scale")
    ap.add_argument("--embedder", help="Embedder spec (default: the pipeline's default embedder).")
    ap.add_argument("--pooling", default="default",
                    help="Comma-separated crop poolings (mean, quality, mean+flip, quality+flip; default: the "
                         "embedder's default); minimars and intel run once per pooling.")
    ap.add_argument("--dataset", default="mini_mars_full", choices=["mini_mars_full", "mini_mars"])
    ap.add_argument("--frames", type=int, default=16, help="mini-MARS crops per tracklet (the pipeline keeps 16)")
    ap.add_argument("--sizes", default="10k,100k")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--scale-one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out", help="Write the results as JSON here too.")
    args = ap.parse_args()
    if args.scale_one:
        print(json.dumps(scale_one(args.scale_one, args.dim)))
        return
    from csip_reid.pipeline.settings import PipelineSettings

    os.environ.setdefault("REID_WEIGHTS_DIR", str(DATA / "models"))  # the offline weights of the test material
    os.environ.setdefault("REID_OFFLINE", "1")
    spec = args.embedder or PipelineSettings().embedder
    poolings = [None if p == "default" else p for p in args.pooling.split(",")]
    results: dict = {}
    parts = args.parts.split(",")
    for part, run in (("minimars", lambda p: minimars(args.frames, spec, p, args.dataset)),
                      ("intel", lambda p: intel(spec, p))):
        if part in parts:
            for pooling in poolings:
                r = run(pooling)
                results.setdefault(part, []).append(r)
                auto = r.get("auto", r)
                print(f"{part} {spec} pooling {r['pooling']}: automatic threshold {auto['threshold']} "
                      f"({auto['source']}): {auto['reason']}", flush=True)
                print(json.dumps({part: {k: v for k, v in r.items() if k != "build_report"}}, indent=1), flush=True)
    if "crowd" in parts:
        results["crowd"] = crowd(spec, poolings)
        print(json.dumps({"crowd": results["crowd"]}, indent=1), flush=True)
    if "scale" in parts:
        results["scale"] = []
        for size in args.sizes.split(","):
            p = subprocess.run([sys.executable, __file__, "--scale-one", str(parse_size(size)), "--dim", str(args.dim)],
                               capture_output=True, text=True, check=True)
            results["scale"].append(json.loads(p.stdout.strip().splitlines()[-1]))
            print(json.dumps(results["scale"][-1]), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
