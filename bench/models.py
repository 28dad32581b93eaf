"""Which offline models give the best answers at what cost: the table behind the default embedder
and detector (``bench/README.md``, "Models").

Embedders (``--embedders``; default: every offline ReID model), each in one run:

* mAP and rank-1 on ``mini_mars`` exactly as ``reid eval --embedder SPEC --dataset minimars`` computes
  them (8 crops per tracklet, market1501 protocol, 23 queries);
* ms per crop: 64 real mini-MARS crops embedded 16 at a time (a tracklet's sampled crops), median
  of 3 after a warm-up;
* ``reid index`` wall time on ``intel_one-by-one-person-detection.mp4`` (``Indexer.index_video``
  into a fresh gallery, models built and warmed up first, offline detector ``yolox:yolox_nano``),
  and its ratio to the first embedder's (today's default): ``--runs`` runs per embedder in a rotating
  order, median; also the process CPU seconds (less sensitive to a shared machine's load);
* identities on mini-MARS (``--identities``): the 64 tracklets in a gallery, ``reid identities
  build`` with the automatic threshold, pairwise F1 against the 16 true people.

Detectors (``--detectors``; default YOLOX-Nano and YOLOv8n int8 TFLite):

* people found: detections with confidence >= 0.25 (ByteTrack's threshold for starting a track)
  per frame on the crowd clip ``mmtracking_demo.mp4`` (~30 people) and the pose videos, with the
  share of frames where the count is exactly right on the videos whose count is known
  (``mmaction2_demo_skeleton``: 2, ``tfjs_pose_*``: 1); ms per frame over all of them;
* the Intel clip indexed with the first embedder: tracklets per true person (6 people, one time
  span each; a tracklet belongs to the span holding its middle frame) and seconds (median of
  ``--runs``, interleaved), with the ratio to the first detector's.

Runtimes (``--parts runtime``): the same ONNX files (YOLOX-Nano, OSNet x0.25) on onnxruntime and
on OpenVINO, ms per item, to decide whether an OpenVINO path for the detector pays off.
Batches (``--parts batch``): one video's 96 crops embedded in passes of 96, 16 or 8 (``MAX_BATCH``).

Usage::

    nice -n 10 python bench/models.py --identities --out models.json   # everything (~15 min on 2 cores)
    nice -n 10 python bench/models.py --parts detect                   # detectors only
    nice -n 10 python bench/models.py --parts runtime                  # onnxruntime vs OpenVINO, same files
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("REID_TEST_DATA", ROOT.parent / "shared" / "data"))
sys.path.insert(0, str(ROOT / "bench"))
from identities import (  # noqa: E402  (bench helpers)
    SEGMENTS,
    _groups,
    minimars_rows,
    minimars_tracklets,
    pairwise_prf,
    stored_apart,
)

EMBEDDERS = ["onnx:osnet_x0_25_msmt17", "onnx:osnet_x0_5_msmt17", "openvino:person-reidentification-retail-0277",
             "openvino:person-reidentification-retail-0286", "openvino:person-reidentification-retail-0288"]
DETECTORS = ["yolox:yolox_nano", "ultralytics:yolov8n_int8"]
INTEL = DATA / "videos" / "intel_one-by-one-person-detection.mp4"
#: video -> true number of people on every frame (None: unknown, ~30 in the crowd clip)
DETECT_VIDEOS = {"mmtracking_demo.mp4": None, "mmpose_demo.mp4": None, "mmaction2_demo_skeleton.mp4": 2,
                 "tfjs_pose_squats.mp4": 1, "tfjs_pose_1.mp4": 1}
FOUND_CONF = 0.25


def ms_per_crop(emb: Any, crops: list[np.ndarray], batch: int = 16) -> float:
    emb.embed_frames(crops[:batch])  # warm-up (OpenVINO compiles shapes on first use)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        for s in range(0, len(crops), batch):
            emb.embed_frames(crops[s : s + batch])
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times)) / len(crops)


def index_intel(detector: str, embedder: str, tmp: Path) -> dict[str, Any]:
    """``reid index`` of the Intel clip into a fresh gallery: seconds, tracklets, tracklets per person."""
    from csip_reid.gallery import Gallery
    from csip_reid.pipeline.indexer import Indexer
    from csip_reid.pipeline.settings import PipelineSettings

    settings = PipelineSettings.load("offline_demo", detector=detector, embedder=embedder)
    folder = tmp / f"g{len(os.listdir(tmp))}"
    indexer = Indexer(folder, settings, progress=False, log=lambda _m: None)
    pipe = indexer.pipeline
    pipe.detector.detect([np.zeros((432, 768, 3), np.uint8)])
    pipe.embedder.embed_crops([[np.full((160, 64, 3), 90, np.uint8)] * 16])
    t0, c0 = time.perf_counter(), time.process_time()
    res = indexer.index_video(INTEL)
    indexer.gallery.close()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    if res.status == "failed":
        raise SystemExit(f"{detector} + {embedder}: {res.error}")
    with Gallery.open(folder) as g:
        spans = [(int(a), int(b)) for a, b in g.read("SELECT start_frame, end_frame FROM tracklets")]
    per_person = [0] * len(SEGMENTS)
    outside = 0
    for a, b in spans:
        mid = (a + b) / 2
        hit = [i for i, (s, e) in enumerate(SEGMENTS) if s - 20 <= mid <= e + 20]
        if hit:
            per_person[hit[0]] += 1
        else:
            outside += 1
    return {"seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1), "tracklets": len(spans), "per_person": per_person,
            "people_found": sum(n > 0 for n in per_person), "outside_spans": outside,
            "tracklets_per_person": round(len(spans) / len(SEGMENTS), 2)}


def identities_f1(emb: Any, rows: dict[str, list[dict[str, str]]], frames: int = 8) -> dict[str, Any]:
    """Automatic identities of the 64 mini-MARS tracklets: pairwise precision / recall / F1 vs 16 people."""
    from csip_reid.gallery import Gallery, embedder_info
    from csip_reid.identity import build_identities

    tracklets, people = minimars_tracklets(rows, frames, "mini_mars")
    emb.embed_tracklets(tracklets)
    with tempfile.TemporaryDirectory() as tmp, Gallery.create(Path(tmp) / "g", embedder_info(emb)) as g:
        truth, _ = stored_apart(g, tracklets, people)
        rep = build_identities(g)
        groups = _groups(g)
        return {"threshold": round(float(rep["threshold"]), 3), "identities": len(groups), **pairwise_prf(groups, truth)}


def bench_embedders(specs: list[str], detector: str, with_identities: bool, runs: int) -> list[dict[str, Any]]:
    import cv2

    from csip_reid.data import build_dataset
    from csip_reid.engine.evaluate import evaluate_embedder
    from csip_reid.pipeline.embed import create_embedder

    rows = minimars_rows("mini_mars", leave_out=None)
    paths = [r["path"] for rs in rows.values() for r in rs][::27][:64]
    crops = [cv2.imread(str(DATA / "reid_tracklets" / "mini_mars" / p)) for p in paths]
    ds = build_dataset("minimars", str(DATA / "reid_tracklets" / "mini_mars"))
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in specs:
            emb = create_embedder(spec)
            ev = evaluate_embedder(emb, ds, sampling="rrs", seq_len=8, progress=False)
            row = {"embedder": spec, "dim": emb.dim, "mAP": round(float(ev["mAP"]), 4), "r1": round(float(ev["r1"]), 4),
                   "queries": ev.get("num_valid_queries"), "ms_per_crop": round(ms_per_crop(emb, crops), 2)}
            if with_identities:
                row["identities"] = identities_f1(emb, rows)
            print(json.dumps(row), flush=True)
            out.append(row)
        timed = interleaved(lambda spec: index_intel(detector, spec, Path(tmp)), specs, runs)
    for row in out:
        row["index"] = timed[row["embedder"]]
        row["index_ratio"] = round(row["index"]["seconds"] / timed[specs[0]]["seconds"], 2)
        row["index_cpu_ratio"] = round(row["index"]["cpu_seconds"] / timed[specs[0]]["cpu_seconds"], 2)
    return out


def interleaved(fn: Any, specs: list[str], runs: int) -> dict[str, dict[str, Any]]:
    """``fn(spec)`` for every spec, ``runs`` rounds in a rotating order (the load of a shared
    machine falls on all alike); the last result of each, with the median of its seconds."""
    last: dict[str, dict[str, Any]] = {}
    seconds: dict[str, list[float]] = defaultdict(list)
    cpu: dict[str, list[float]] = defaultdict(list)
    for r in range(runs):
        for spec in specs[r % len(specs):] + specs[: r % len(specs)]:
            last[spec] = fn(spec)
            seconds[spec].append(last[spec]["seconds"])
            cpu[spec].append(last[spec]["cpu_seconds"])
            print(f"index run {r + 1}/{runs} {spec}: {last[spec]['seconds']} s, CPU {last[spec]['cpu_seconds']} s",
                  flush=True)
    return {k: {**v, "seconds": round(float(np.median(seconds[k])), 1), "runs_s": seconds[k],
                "cpu_seconds": round(float(np.median(cpu[k])), 1)} for k, v in last.items()}


def bench_detectors(specs: list[str], embedder: str, runs: int) -> list[dict[str, Any]]:
    from csip_reid.core.video import VideoReader
    from csip_reid.pipeline.detect import create_detector

    videos = {name: [f for _, _, f in VideoReader(DATA / "videos" / name)] for name in DETECT_VIDEOS}
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in specs:
            det = create_detector(spec)
            det.detect(videos["mmpose_demo.mp4"][:1])  # warm-up
            row: dict[str, Any] = {"detector": spec, "found_per_frame": {}, "exact_count": {}}
            t0, n = time.perf_counter(), 0
            for name, frames in videos.items():
                counts = []
                for s in range(0, len(frames), det.batch_size):
                    counts += [int((d.conf >= FOUND_CONF).sum()) for d in det.detect(frames[s : s + det.batch_size])]
                n += len(frames)
                row["found_per_frame"][name] = round(float(np.mean(counts)), 2)
                if DETECT_VIDEOS[name] is not None:
                    row["exact_count"][name] = round(float(np.mean([c == DETECT_VIDEOS[name] for c in counts])), 3)
            row["ms_per_frame"] = round(1000 * (time.perf_counter() - t0) / n, 1)
            print(json.dumps(row), flush=True)
            out.append(row)
        timed = interleaved(lambda spec: index_intel(spec, embedder, Path(tmp)), specs, runs)
    for row in out:
        row["intel"] = timed[row["detector"]]
        row["index_ratio"] = round(row["intel"]["seconds"] / timed[specs[0]]["seconds"], 2)
        row["index_cpu_ratio"] = round(row["intel"]["cpu_seconds"] / timed[specs[0]]["cpu_seconds"], 2)
    return out


def bench_runtimes(rounds: int = 5) -> list[dict[str, Any]]:
    """The same ONNX files on onnxruntime and on OpenVINO: ms per item (YOLOX-Nano: per 416x416 frame,
    batches of 8; OSNet x0.25: per crop, batches of 16), rounds interleaved, median."""
    from csip_reid.core.onnx import onnx_session, run_onnx
    from csip_reid.core.openvino import infer, openvino_model

    rng = np.random.default_rng(0)
    cases = {"yolox_nano.onnx": rng.uniform(0, 255, (8, 3, 416, 416)).astype(np.float32),
             "osnet_x0_25_msmt17.onnx": rng.normal(0, 1, (16, 3, 256, 128)).astype(np.float32)}
    out = []
    for name, batch in cases.items():
        path = DATA / "models" / name
        sess = onnx_session(path)
        inp = sess.get_inputs()[0]
        fixed = inp.shape[0] if isinstance(inp.shape[0], int) else None
        _, compiled, _ = openvino_model(path)  # as the openvino: embedder runs
        runs = {"onnxruntime": lambda b, s=sess, n=inp.name, f=fixed: run_onnx(s, n, b, f),
                "openvino": lambda b, c=compiled: infer(c, b)}
        times: dict[str, list[float]] = defaultdict(list)
        for fn in runs.values():
            fn(batch)  # warm-up
        for r in range(rounds):
            for k in list(runs)[r % 2:] + list(runs)[: r % 2]:
                t0 = time.perf_counter()
                runs[k](batch)
                times[k].append(1000 * (time.perf_counter() - t0) / len(batch))
        row = {"model": name, **{k: round(float(np.median(v)), 2) for k, v in times.items()}}
        row["openvino_speedup"] = round(row["onnxruntime"] / row["openvino"], 2)
        print(json.dumps(row), flush=True)
        out.append(row)
    return out


def bench_batches(specs: list[str], sizes: tuple[int, ...] = (96, 16, 8), rounds: int = 3) -> list[dict[str, Any]]:
    """ms per crop of one video's crops (6 tracklets x 16 on the Intel clip) in passes of each size,
    rounds interleaved, median: the size ``MAX_BATCH`` of the onnx:/openvino: embedders."""
    from csip_reid.core.onnx import run_in_chunks
    from csip_reid.pipeline.embed import create_embedder

    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 255, (160, 64, 3), np.uint8) for _ in range(96)]
    out = []
    for spec in specs:
        emb = create_embedder(spec)
        if emb.fixed_batch:
            continue
        run = getattr(emb, "compiled", None)
        fn = (lambda b, c=run: np.asarray(c(b)[0])) if run is not None else \
            (lambda b, e=emb: e.session.run(None, {e.input_name: b})[0])
        x = emb.preprocess(crops)
        times: dict[int, list[float]] = defaultdict(list)
        for n in sizes:
            run_in_chunks(fn, x[:n], None, n)  # warm-up: OpenVINO compiles each shape once
        for r in range(rounds):
            for n in sizes[r % len(sizes):] + sizes[: r % len(sizes)]:
                t0 = time.perf_counter()
                run_in_chunks(fn, x, None, n)
                times[n].append(1000 * (time.perf_counter() - t0) / len(x))
        row = {"embedder": spec, **{f"batch {n}": round(float(np.median(times[n])), 1) for n in sizes}}
        print(json.dumps(row), flush=True)
        out.append(row)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="embed,detect", help="embed, detect, runtime, batch (comma-separated).")
    ap.add_argument("--embedders", nargs="+", default=EMBEDDERS, help="Embedder specs; the first is the baseline.")
    ap.add_argument("--detectors", nargs="+", default=DETECTORS)
    ap.add_argument("--index-detector", default="yolox:yolox_nano", help="Detector of the embedders' index runs.")
    ap.add_argument("--identities", action="store_true", help="Also identity pairwise F1 on mini-MARS.")
    ap.add_argument("--runs", type=int, default=3, help="Index runs per model, interleaved; the median is kept.")
    ap.add_argument("--out", type=Path, help="Write the results as JSON here.")
    args = ap.parse_args()
    os.environ.setdefault("REID_WEIGHTS_DIR", str(DATA / "models"))
    os.environ.setdefault("REID_OFFLINE", "1")
    if not INTEL.is_file():
        raise SystemExit(f"test material not found under {DATA} (set REID_TEST_DATA)")
    parts = set(args.parts.split(","))
    res: dict[str, Any] = {}
    t0 = time.perf_counter()
    if "embed" in parts:
        res["embedders"] = bench_embedders(args.embedders, args.index_detector, args.identities, args.runs)
    if "runtime" in parts:
        res["runtimes"] = bench_runtimes()
    if "batch" in parts:
        res["batches"] = bench_batches(args.embedders)
    if "detect" in parts:
        res["detectors"] = bench_detectors(args.detectors, args.embedders[0], args.runs)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    print_tables(res)
    if args.out:
        args.out.write_text(json.dumps(res, indent=2))


def print_tables(res: dict[str, Any]) -> None:
    if "embedders" in res:
        print("\n| embedder | dim | mAP | rank-1 | identities F1 | ms/crop | index s (Intel clip) | vs first "
              "| index CPU s | vs first |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in res["embedders"]:
            f1 = r.get("identities", {}).get("f1", "")
            print(f"| {r['embedder']} | {r['dim']} | {r['mAP']:.3f} | {r['r1']:.3f} | {f1} | {r['ms_per_crop']} | "
                  f"{r['index']['seconds']} | {r['index_ratio']:.2f}x | {r['index']['cpu_seconds']} | "
                  f"{r['index_cpu_ratio']:.2f}x |")
    if "detectors" in res:
        names = list(DETECT_VIDEOS)
        print("\n| detector | " + " | ".join(f"found/frame {n.split('.')[0]}" for n in names)
              + " | exact count (known videos) | ms/frame | Intel: tracklets (per person) | people found | index s | vs first "
              "| index CPU s | vs first |")
        print("|---" * (len(names) + 8) + "|")
        for r in res["detectors"]:
            exact = ", ".join(f"{v:.2f}" for v in r["exact_count"].values())
            i = r["intel"]
            print(f"| {r['detector']} | " + " | ".join(str(r["found_per_frame"][n]) for n in names)
                  + f" | {exact} | {r['ms_per_frame']} | {i['tracklets']} ({i['per_person']}) | "
                  f"{i['people_found']}/6 | {i['seconds']} | {r['index_ratio']:.2f}x | {i['cpu_seconds']} | "
                  f"{r['index_cpu_ratio']:.2f}x |")
    if "batches" in res:
        print("\n| embedder | " + " | ".join(f"ms/crop, {k}" for k in res["batches"][0] if k != "embedder") + " |")
        print("|---" * len(res["batches"][0]) + "|")
        for r in res["batches"]:
            print("| " + " | ".join(str(v) for v in r.values()) + " |")
    if "runtimes" in res:
        print("\n| model (same ONNX file) | onnxruntime ms/item | OpenVINO ms/item | OpenVINO speed-up |")
        print("|---|---|---|---|")
        for r in res["runtimes"]:
            print(f"| {r['model']} | {r['onnxruntime']} | {r['openvino']} | {r['openvino_speedup']:.2f}x |")
    print(f"\nbench seconds: {res['seconds']}")


if __name__ == "__main__":
    main()
