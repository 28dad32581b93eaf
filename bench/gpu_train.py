"""Training throughput of the full MARS-size CSIP-ReID on synthetic tracklets (run by gpu_train.sh).

The ``csip_mars`` config (ViT-B/16 at 256x128, T=8, SGT 10x512, random init: no CLIP download) is
trained on synthetic in-memory clips at the official batch sizes (stage 1: 64 tracklets, stage 2:
16 = 4 ids x 4) with AMP, for ``--steps`` optimisation steps per stage after ``--warmup`` untimed
ones. Prints clips/s, peak GPU memory and the projected hours of the official MARS schedule
(8298 training tracklets: 120 stage-1 epochs of ceil(8298/64) steps, 80 stage-2 epochs of
ceil(8298/16) steps; data loading and evaluation not included). Without CUDA it runs the tiny
config for a few steps on the CPU (a smoke run of the same code path) and says so.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

MARS_TRACKLETS = 8298


def synthetic_batch(cfg, batch: int, num_classes: int, num_cameras: int, device: torch.device,  # type: ignore[no-untyped-def]
                    k: int = 4) -> dict[str, torch.Tensor]:
    t, h, w = cfg.input.seq_len, cfg.input.height, cfg.input.width
    pids = torch.arange(batch, device=device) // k % num_classes
    return {
        "images": torch.randn(batch, t, 3, h, w, device=device),
        "skeletons": torch.randn(batch, t, 17, cfg.skeleton.in_dim, device=device),
        "skeleton_mask": torch.ones(batch, t, 17, dtype=torch.bool, device=device),
        "camid": torch.randint(0, num_cameras, (batch,), device=device),
        "pid": pids,
    }


def measure(step, batch_fn, steps: int, warmup: int, device: torch.device) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(seconds per step, peak memory GiB) over ``steps`` timed steps."""
    for _ in range(warmup):
        step(batch_fn())
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    batches = [batch_fn() for _ in range(min(steps, 4))]
    t0 = time.perf_counter()
    for i in range(steps):
        step(batches[i % len(batches)])
    if device.type == "cuda":
        torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / steps
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    return dt, peak


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="csip_mars")
    ap.add_argument("--steps", type=int, default=200, help="timed steps per stage")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--cpu-smoke", action="store_true", help="force the CPU smoke run")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from csip_reid.data import VideoReIDDataset
    from csip_reid.engine.context import TrainContext
    from csip_reid.engine.optim import set_epoch_lr, stage1_optimizer, stage2_optimizer
    from csip_reid.engine.stage1 import stage1_step
    from csip_reid.engine.stage2 import stage2_step
    from csip_reid.models import build_model, load_config

    cuda = torch.cuda.is_available() and not args.cpu_smoke
    device = torch.device("cuda" if cuda else "cpu")
    cfg = load_config(args.config if cuda else "csip_tiny")
    steps, warmup = (args.steps, args.warmup) if cuda else (min(args.steps, 3), 1)
    if not cuda:
        print("no CUDA device: running the CPU smoke version (csip_tiny, 3 steps per stage); "
              "the figures below are not GPU figures", file=sys.stderr)
    cfg.visual.pretrained = False
    n_cls, n_cam = 625, cfg.num_cameras
    b1, b2 = cfg.stage1.batch_size, cfg.stage2.batch_size
    if cuda:
        torch.backends.cudnn.benchmark = True
    out = Path(tempfile.mkdtemp(prefix="csip_gpu_"))
    ds = VideoReIDDataset("synthetic", [], [], [], n_cls, n_cam, "h36m17-3d")
    ctx = TrainContext(cfg, ds, out, device, progress=False)
    model = build_model(cfg, n_cls, n_cam).to(device)
    scaler = ctx.grad_scaler()

    # stage 1: frozen visual encoder, skeleton encoder trained
    model.freeze_visual(True)
    model.train()
    model.visual.eval()
    opt1 = stage1_optimizer(model, cfg.stage1)
    set_epoch_lr(opt1, cfg.stage1, 0)
    s1, m1 = measure(lambda b: stage1_step(ctx, model, b, opt1, scaler),
                     lambda: synthetic_batch(cfg, b1, n_cls, n_cam, device, k=1), steps, warmup, device)

    # stage 2: everything but the skeleton encoder (paper: frozen), random prototypes
    model.freeze_visual(False)
    model.freeze_skeleton(not cfg.stage2.train_skeleton)
    p = cfg.visual.proj_dim
    model.pfu.set_prototypes(torch.randn(n_cls, p, device=device), torch.randn(n_cls, p, device=device))
    model.train()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    opt2 = stage2_optimizer(model, cfg.stage2)
    set_epoch_lr(opt2, cfg.stage2, 0)
    s2, m2 = measure(lambda b: stage2_step(ctx, model, b, opt2, scaler),
                     lambda: synthetic_batch(cfg, b2, n_cls, n_cam, device), steps, warmup, device)

    e1, e2 = cfg.stage1.epochs, cfg.stage2.epochs
    h1 = e1 * math.ceil(MARS_TRACKLETS / b1) * s1 / 3600
    h2 = e2 * math.ceil(MARS_TRACKLETS / b2) * s2 / 3600
    res = {
        "device": torch.cuda.get_device_name(0) if cuda else "cpu (smoke)", "config": cfg.name,
        "amp": ctx.amp, "steps_per_stage": steps,
        "stage1": {"batch": b1, "s_per_step": round(s1, 4), "clips_per_s": round(b1 / s1, 1),
                   "peak_gib": round(m1, 2), "mars_hours": round(h1, 2), "mars_epochs": e1},
        "stage2": {"batch": b2, "s_per_step": round(s2, 4), "clips_per_s": round(b2 / s2, 1),
                   "peak_gib": round(m2, 2), "mars_hours": round(h2, 2), "mars_epochs": e2},
    }
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"device {res['device']}, config {cfg.name}, AMP {ctx.amp}, {steps} timed steps per stage")
        for k in ("stage1", "stage2"):
            r = res[k]
            print(f"{k}: batch {r['batch']:>3}  {r['clips_per_s']:>8.1f} clips/s  {r['s_per_step']:.4f} s/step  "
                  f"peak {r['peak_gib']:.2f} GiB  MARS {r['mars_epochs']} epochs ~ {r['mars_hours']:.2f} h")
        print(f"projected MARS training (model steps only): {h1 + h2:.2f} h")
    return 0


if __name__ == "__main__":
    sys.exit(main())
