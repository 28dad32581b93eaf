"""GPU throughput of ``reid index`` on 1080p: decoding, the detector, end to end (CPU fallback).

Run by ``bench/gpu.sh`` (which prepares a venv); alone: ``python bench/gpu_bench.py [--device cuda]``.
Prints, as Markdown tables:

* the environment: GPU, CUDA, onnxruntime providers, FAISS GPUs, PyNvVideoCodec;
* decode frames/s of a 1080p clip (an upscaled copy of the Intel clip, or ``--video``): OpenCV on
  1 and 4 streams at once (threads), OpenCV with hardware acceleration requested, and PyNvVideoCodec
  (NVDEC) on 1 and 4 streams when it is installed;
* detector frames/s on 1080p frames: FP32 vs FP16 (CUDA only), batch 1 vs 16 (ultralytics
  ``yolo11n``; random weights when ``yolo11n.pt`` is not on the machine: same compute);
* end-to-end ``reid index`` frames/s on the 1080p clip, ``--scan full`` and ``--scan adaptive``,
  each with ``--decoder opencv`` and (when PyNvVideoCodec is installed) ``--decoder nvdec``, plus
  four videos at once on Ray actors sharing the GPU (``--executor ray --workers 4
  --gpus-per-worker 0.25``, when Ray is installed) (YOLOX-Nano from ``$REID_WEIGHTS_DIR`` when
  present, else the yolo11n above), and video-hours indexed per GPU-hour, against the goal: one
  hour of 1080p at 30 fps in under 60 s.

Without a GPU everything runs on the CPU (``--quick`` keeps it to a minute or two); the
tables then say ``cpu``. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("REID_TEST_DATA", REPO.parent / "shared" / "data")).resolve()
GOAL_S, HOUR_FRAMES = 60.0, 30 * 3600


def table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    print(f"\n### {title}\n\n| " + " | ".join(header) + " |\n|" + "|".join("---" for _ in header) + "|")
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")
    sys.stdout.flush()


def environment(device: str) -> list[list[Any]]:
    rows: list[list[Any]] = [["python", sys.version.split()[0]], ["device asked", device]]
    try:
        import torch

        rows.append(["torch", f"{torch.__version__}, CUDA {torch.version.cuda}, "
                              f"available {torch.cuda.is_available()}"])
        if torch.cuda.is_available():
            rows.append(["GPU", f"{torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}"])
    except ImportError:
        rows.append(["torch", "not installed"])
    try:
        import onnxruntime as ort

        rows.append(["onnxruntime providers", ", ".join(ort.get_available_providers())])
    except ImportError:
        rows.append(["onnxruntime", "not installed"])
    try:
        import faiss

        rows.append(["faiss GPUs", faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0])
    except ImportError:
        rows.append(["faiss", "not installed"])
    rows.append(["PyNvVideoCodec", "installed" if _nvc() is not None else "not installed (NVDEC rows skipped)"])
    return rows


def _nvc() -> Any:
    try:
        import PyNvVideoCodec as nvc  # type: ignore[import-not-found]
    except ImportError:
        return None
    return nvc


def make_clip(src: Path, dst: Path, frames: int, size: tuple[int, int]) -> Path:
    """An mp4v copy of ``src`` scaled to ``size``, ``frames`` long (looping ``src`` if needed)."""
    import cv2
    import numpy as np

    out = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, size)
    written = 0
    while written < frames:
        cap = cv2.VideoCapture(str(src)) if src.is_file() else None
        while written < frames:
            ok, f = cap.read() if cap is not None else (True, np.random.default_rng(written).integers(
                0, 255, (size[1], size[0], 3), np.uint8))
            if not ok:
                break
            out.write(cv2.resize(f, size, interpolation=cv2.INTER_LINEAR))
            written += 1
        if cap is not None:
            cap.release()
    out.release()
    return dst


def _opencv_decode(path: Path, hw: bool = False) -> int:
    import cv2

    params = [cv2.CAP_PROP_HW_ACCELERATION, cv2.VIDEO_ACCELERATION_ANY] if hw else []
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, params)
    n = 0
    while cap.grab():
        ok, _ = cap.retrieve()
        n += ok
    cap.release()
    return n


def _nvdec_decode(path: Path, to_host: bool = False) -> int:
    """Frames decoded by NVDEC through csip-reid's own reader (``--decoder nvdec``): grabbed on the
    GPU only, or also copied to host memory as BGR (what ``reid index`` does with a detected frame)."""
    from csip_reid.core.nvdec import NvdecCapture

    cap = NvdecCapture(path, "cuda")
    n = 0
    while cap.grab():
        n += cap.retrieve()[0] if to_host else 1
    cap.release()
    return n


def streams(fn: Any, path: Path, count: int) -> tuple[int, float]:
    """Decode ``count`` copies of ``path`` at once (threads); (frames, seconds)."""
    results = [0] * count

    def work(i: int) -> None:
        results[i] = fn(path)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(results), time.perf_counter() - t0


def decode_rows(clip: Path, mp4: Path | None) -> list[list[Any]]:
    rows = []
    cases: list[tuple[str, Any, Path]] = [("OpenCV (CPU)", _opencv_decode, clip),
                                          ("OpenCV, HW acceleration requested", lambda p: _opencv_decode(p, True), clip)]
    if _nvc() is not None and mp4 is not None:
        cases.append(("PyNvVideoCodec (NVDEC), on the GPU", _nvdec_decode, mp4))
        cases.append(("PyNvVideoCodec (NVDEC), + BGR copy to host", lambda p: _nvdec_decode(p, True), mp4))
    for name, fn, path in cases:
        for n in (1, 4):
            try:
                frames, s = streams(fn, path, n)
                rows.append([name, n, frames, f"{s:.2f}", f"{frames / s:.0f}"])
            except Exception as e:  # noqa: BLE001 - an optional decoder that does not work here
                rows.append([name, n, "-", "-", f"failed: {type(e).__name__}: {str(e)[:80]}"])
    return rows


def detector_rows(frames: list[Any], device: str, weights: str) -> list[list[Any]]:
    from csip_reid.pipeline.detect import create_detector

    rows = []
    precisions = (False, True) if device.startswith("cuda") else (False,)
    for half in precisions:
        for batch in (1, 16):
            det = create_detector(f"ultralytics:{weights}", device=device, batch_size=batch, half=half)
            det.detect(frames[:batch])  # warm-up (CUDA context, kernels)
            n, t0 = 0, time.perf_counter()
            for i in range(0, len(frames) - batch + 1, batch):
                det.detect(frames[i : i + batch])
                n += batch
            s = time.perf_counter() - t0
            rows.append(["FP16" if half else "FP32", batch, n, f"{s:.2f}", f"{n / s:.1f}"])
    return rows


def _index_once(clips: list[Path], gallery: Path, device: str, detector: str, scan: str,
                extra: list[str]) -> tuple[dict[str, Any] | None, float, str]:
    cmd = [sys.executable, "-m", "csip_reid.cli", "index", *map(str, clips), "--gallery", str(gallery), "--json",
           "-q", "--detector", detector, "--device", device, "--scan", scan, *extra]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode:
        return None, wall, (p.stderr.strip().splitlines() or ["?"])[-1][:120]
    return json.loads(p.stdout), wall, ""


def index_rows(clip: Path, device: str, detector: str, tmp: Path) -> list[list[Any]]:
    """``reid index`` per scan and decoder (NVDEC when installed), and 4 videos at once on Ray actors."""
    cases: list[tuple[str, str, list[Path], list[str]]] = []
    decoders = ["opencv"] + (["nvdec"] if device.startswith("cuda") and _nvc() is not None else [])
    for scan in ("full", "adaptive"):
        for dec in decoders:
            cases.append((scan, dec, [clip], ["--decoder", dec]))
    if device.startswith("cuda") and _has_ray():  # several videos at once fill the GPU's decoders
        n, size = _frames_of(clip)  # four quarter-length videos (distinct content: one frame shorter each)
        copies = [make_clip(clip, tmp / f"stream{i}.mp4", max(1, n // 4 - i), size) for i in range(4)]
        cases.append(("adaptive", f"{decoders[-1]}, 4 videos at once (Ray: 4 actors x 0.25 GPU)", copies,
                      ["--decoder", decoders[-1], "--executor", "ray", "--workers", "4", "--gpus-per-worker",
                       "0.25", "--cpus-per-worker", "1"]))
    rows = []
    for n, (scan, dec, clips, extra) in enumerate(cases):
        d, wall, err = _index_once(clips, tmp / f"gallery-{n}", device, detector, scan, extra)
        if d is None:
            rows.append([scan, dec, "-", "-", "-", "-", "-", f"failed: {err}"])
            continue
        fps = d["frames"] / max(d["seconds"], 1e-9)
        hour = HOUR_FRAMES / fps
        rows.append([scan, dec, d["frames"], d["tracklets"], f"{d['seconds']:.1f} ({wall:.1f} with start-up)",
                     f"{fps:.0f}", f"{fps / 30:.1f}", f"{hour:.0f} s: {'met' if hour < GOAL_S else 'MISSED'}"])
    return rows


def _has_ray() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def _frames_of(path: Path) -> tuple[int, tuple[int, int]]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    n, w, h = (int(cap.get(p)) for p in (cv2.CAP_PROP_FRAME_COUNT, cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT))
    cap.release()
    return max(1, n), (w, h)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", help="auto (cuda when torch sees a GPU), cpu, cuda, cuda:N")
    p.add_argument("--video", type=Path, default=DATA / "videos" / "intel_one-by-one-person-detection.mp4",
                   help="source clip, scaled to 1080p (random frames when missing)")
    p.add_argument("--frames", type=int, default=1800, help="frames of the 1080p clip (60 s at 30 fps)")
    p.add_argument("--detector-frames", type=int, default=256, help="frames for the detector table")
    p.add_argument("--size", default="1920x1080")
    p.add_argument("--quick", action="store_true", help="CPU-sized run: 96 frames, 32 detector frames")
    p.add_argument("--sections", default="env,decode,detect,index")
    args = p.parse_args(argv)
    if args.quick:
        args.frames, args.detector_frames = min(args.frames, 96), min(args.detector_frames, 32)
    device = args.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    os.environ.setdefault("REID_OFFLINE", "1")
    os.environ.setdefault("YOLO_OFFLINE", "1")
    if (DATA / "models").is_dir():
        os.environ.setdefault("REID_WEIGHTS_DIR", str(DATA / "models"))
    sections = set(args.sections.split(","))
    w, h = (int(x) for x in args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="reid-gpu-") as tmpdir:
        tmp = Path(tmpdir)
        os.environ.setdefault("YOLO_CONFIG_DIR", str(tmp / "ycfg"))
        os.environ.setdefault("REID_CACHE_DIR", str(tmp / "cache"))
        t0 = time.perf_counter()
        if "env" in sections:
            table("Environment", ["item", "value"], environment(device))
        clip = make_clip(args.video, tmp / f"clip_{w}x{h}.mp4", args.frames, (w, h))
        mp4 = clip if _nvc() is None else _h264_copy(clip, tmp)
        print(f"\nclip: {args.frames} frames {w}x{h} (made in {time.perf_counter() - t0:.1f} s); device {device}")
        if "decode" in sections:
            table(f"Decode frames/s, {w}x{h}", ["decoder", "streams", "frames", "seconds", "frames/s"],
                  decode_rows(clip, mp4))
        weights = _yolo_weights(tmp)
        if "detect" in sections:
            import cv2

            cap, frames = cv2.VideoCapture(str(clip)), []
            while len(frames) < args.detector_frames and (ok_f := cap.read())[0]:
                frames.append(ok_f[1])
            cap.release()
            frames = (frames * (args.detector_frames // max(1, len(frames)) + 1))[: args.detector_frames]
            table(f"Detector frames/s ({Path(weights).name}, imgsz 640, {w}x{h} frames, {device})",
                  ["precision", "batch", "frames", "seconds", "frames/s"], detector_rows(frames, device, weights))
        if "index" in sections:
            yolox = Path(os.environ.get("REID_WEIGHTS_DIR", "")) / "yolox_nano.onnx"
            detector = "yolox:yolox_nano" if yolox.is_file() else f"ultralytics:{weights}"
            table(f"End to end `reid index` on {w}x{h} ({detector}, {device}); goal: 1 h of 1080p30 in < "
                  f"{GOAL_S:.0f} s", ["scan", "decoder", "frames", "tracklets", "index s", "frames/s",
                                      "video-hours per GPU-hour (30 fps)", "1 h of 1080p30"],
                  index_rows(mp4, device, detector, tmp))  # H.264 when ffmpeg made one: NVDEC reads it
        print(f"\ntotal {time.perf_counter() - t0:.0f} s")


def _h264_copy(clip: Path, tmp: Path) -> Path:
    """An H.264 elementary copy for NVDEC (ffmpeg when present; else the mp4v clip, which NVDEC also reads)."""
    out = tmp / "clip_h264.mp4"
    try:
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(clip), "-c:v", "libx264", "-preset",
                        "ultrafast", str(out)], check=True, timeout=120)
        return out
    except (OSError, subprocess.SubprocessError):
        return clip


def _yolo_weights(tmp: Path) -> str:
    """``yolo11n.pt`` when it is on the machine, else a random-init yolo11n saved to ``tmp``."""
    from csip_reid.core.weights import find_local

    local = find_local("yolo11n.pt")
    if local is not None:
        return str(local)
    from csip_reid.core.ultralytics_env import import_ultralytics, keep_torch_threads

    import_ultralytics()
    from ultralytics import YOLO

    dest = tmp / "yolo11n_random.pt"
    with keep_torch_threads():
        YOLO("yolo11n.yaml").save(str(dest))
    return str(dest)


if __name__ == "__main__":
    main()
