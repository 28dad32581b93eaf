"""Identities benchmark: clustering quality on real tracklets, query variants, and build cost at scale.

Parts (``--parts``, default all):

* ``minimars``: the 64 real MARS tracklets of ``$REID_TEST_DATA/reid_tracklets/mini_mars`` (16
  people, 6 cameras), embedded with the offline OSNet ONNX model (``--frames`` crops each) into a
  gallery, one video per tracklet and no wall-clock times (MARS has none). ``reid identities
  build`` with the automatic threshold: pairwise precision / recall / F1 and identities found vs
  16, plus the same at fixed thresholds for context. Then "find this person" for every tracklet
  (MARS protocol: same person in the same camera is left out): mAP and rank-1 of plain search,
  k-reciprocal re-ranking, expansion with the best hit's identity, and both.
* ``intel``: the Intel clip, each of its 6 person spans cut into two files, the first half into
  ``cam1/`` and the second into ``cam2/`` with their true start times, indexed with the offline
  pipeline (YOLOX-nano + OSNet), then identities with the automatic threshold vs 6 people.
* ``scale``: ``build`` on synthetic clustered vectors (``bench/synthetic.py``, 10 sightings per
  person, each in another video, 50 people per video at overlapping times) at 10k and 100k
  tracklets, each size in its own process: seconds per step and peak memory (RSS).

Usage::

    nice -n 10 python bench/identities.py                    # everything (~10 min on 2 cores)
    nice -n 10 python bench/identities.py --parts scale --sizes 10k,100k
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
def minimars(frames: int) -> dict:
    import cv2

    from csip_reid.core.tracklet import Tracklet
    from csip_reid.gallery import Gallery, VideoRecord, embedder_info
    from csip_reid.identity import build_identities
    from csip_reid.pipeline import query_post as post
    from csip_reid.pipeline.embed import create_embedder

    root = DATA / "reid_tracklets" / "mini_mars"
    by: dict[str, list[dict]] = defaultdict(list)
    with open(root / "labels.csv", newline="") as f:
        for row in csv.DictReader(f):
            by[row["tracklet"]].append(row)
    embedder = create_embedder(f"onnx:{DATA / 'models' / 'osnet_x0_25_msmt17.onnx'}")
    tracklets, people = [], []
    for name, rows in sorted(by.items()):
        rows = sorted(rows, key=lambda r: int(r["frame_index_in_tracklet"]))
        idx = np.linspace(0, len(rows) - 1, min(frames, len(rows))).round().astype(int)
        rows = [rows[i] for i in idx]
        fr = np.arange(len(rows))
        tracklets.append(Tracklet(video=f"{name}.mp4", camera=f"C{rows[0]['camera']}", track_id=1, frames=fr,
                                  timestamps=fr / 25.0, boxes=np.tile([0, 0, 128, 256], (len(rows), 1)),
                                  sample_frames=fr, crops=[cv2.imread(str(root / r["path"])) for r in rows],
                                  thumbnail=cv2.imread(str(root / rows[0]["path"]))))
        people.append(int(rows[0]["person_id"]))
    t0 = time.perf_counter()
    embedder.embed_tracklets(tracklets)
    embed_s = time.perf_counter() - t0
    out: dict = {"tracklets": len(tracklets), "people": len(set(people)), "frames_per_tracklet": frames,
                 "embed_seconds": round(embed_s, 1)}
    with tempfile.TemporaryDirectory() as tmp, Gallery.create(Path(tmp) / "g", embedder_info(embedder)) as g:
        truth, cam = {}, {}
        for t, p in zip(tracklets, people, strict=True):
            vid = g.add_video(VideoRecord(f"/mars/{t.camera}/{t.video}", f"h-{t.video}", t.camera, 25.0, len(t), 128,
                                          256), [t])
            tid = g.tracklet_ids(vid)[0]
            truth[tid], cam[tid] = p, t.camera
        rep = build_identities(g)
        groups = _groups(g)
        out["auto"] = {"threshold": rep["threshold"], "source": rep["threshold_source"],
                       "reason": rep["threshold_reason"], "identities": len(groups),
                       "identities_seen_twice_or_more": sum(len(x) > 1 for x in groups),
                       **pairwise_prf(groups, truth), "build_seconds": rep["seconds"]["total"]}
        out["fixed"] = {}
        for th in (0.5, 0.6, 0.7, 0.8):
            build_identities(g, th, rebuild=True)
            gr = _groups(g)
            out["fixed"][str(th)] = {"identities": len(gr), **pairwise_prf(gr, truth)}
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


def intel() -> dict:
    from datetime import UTC, datetime, timedelta

    from csip_reid.core.video import cut_clip
    from csip_reid.gallery import Gallery
    from csip_reid.identity import build_identities
    from csip_reid.pipeline.indexer import Indexer
    from csip_reid.pipeline.settings import PipelineSettings

    os.environ.setdefault("REID_WEIGHTS_DIR", str(DATA / "models"))
    os.environ.setdefault("REID_OFFLINE", "1")
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
        settings = PipelineSettings.load("offline_demo", detector="yolox:yolox_nano",
                                         embedder="onnx:osnet_x0_25_msmt17")
        t0 = time.perf_counter()
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
            return {"files": len(truth_of_video), "tracklets": len(truth), "index_seconds": round(index_s, 1),
                    "identities": len(groups), "people": 6, "threshold": rep["threshold"],
                    "source": rep["threshold_source"], "reason": rep["threshold_reason"],
                    "refused_merges": rep["refused"], **pairwise_prf(groups, truth),
                    "people_per_identity": people_per_identity,
                    "two_camera_identities": sum(len({camera[t] for t in gr}) > 1 for gr in groups),
                    "build_report": rep}


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
    out = cluster_table(table, vecs, lambda q, k: index.search(q, k))
    truth = {i: int(labels[i]) for i in range(n)}
    prf = pairwise_prf(out["groups"], truth)
    return {"tracklets": n, "people": n // per_id, "dim": dim, "index": index.kind, "index_seconds": round(index_s, 2),
            **{f"{k}_seconds": round(v, 2) for k, v in out["seconds"].items()}, "edges": out["edges"],
            "threshold": round(out["threshold"].value, 4), "threshold_source": out["threshold"].source,
            "identities": len(out["groups"]), **prf,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "vectors_mb": round(vecs.nbytes / 2**20), "dense_matrix_would_be_mb": round(n * n * 4 / 2**20)}


def parse_size(text: str) -> int:
    text = text.strip().lower()
    return int(float(text[:-1]) * {"k": 1_000, "m": 1_000_000}[text[-1]]) if text[-1] in "km" else int(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parts", default="minimars,intel,scale")
    ap.add_argument("--frames", type=int, default=8, help="mini-MARS crops per tracklet")
    ap.add_argument("--sizes", default="10k,100k")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--scale-one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out", help="Write the results as JSON here too.")
    args = ap.parse_args()
    if args.scale_one:
        print(json.dumps(scale_one(args.scale_one, args.dim)))
        return
    results: dict = {}
    parts = args.parts.split(",")
    if "minimars" in parts:
        results["minimars"] = minimars(args.frames)
        print(json.dumps({"minimars": results["minimars"]}, indent=1), flush=True)
    if "intel" in parts:
        results["intel"] = intel()
        print(json.dumps({"intel": results["intel"]}, indent=1), flush=True)
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
