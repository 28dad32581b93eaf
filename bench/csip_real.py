"""CSIP-ReID learning people it never saw: train on mini_mars_full's train split, test on its test split.

``$REID_TEST_DATA/reid_tracklets/mini_mars_full`` holds 16 training identities (32 tracklets, 1,719
crops, ``bbox_train``) and 16 *other* identities for testing (32 query + 32 gallery full-length
tracklets). The script

1. skeletonizes every frame with a pose back-end (``--pose``, MoveNet Lightning by default; offline
   weights from ``$REID_TEST_DATA/models``), as ``reid skeletons --out`` does;
2. trains ``csip_tiny`` (random init, 64x32 input, T=4) with both stages, as ``reid train`` does
   (:func:`csip_reid.engine.train.fit`), evaluating on the test split after every stage-2 epoch;
3. trains it again with stage 1 switched off (``stage1.epochs: 0``: stage 2 starts from the same
   random init, seed and budget, so its skeleton encoder and prototypes are untrained);
4. prints one table: the untrained model (epoch 0, the same for both runs: stage 1 does not touch
   the visual encoder), every stage-2 epoch of both runs, and the final figures.

The figure to quote is the *final* epoch's; "best" is chosen on the test split itself (``best.pt``),
so it is optimistic. A low mAP is expected from a tiny model trained from scratch on 16 people;
the point is an honest, reproducible end-to-end run that improves over its own epoch 0. Run it
niced on a shared machine (about 10 minutes with the defaults on 2 busy cores)::

    nice -n 10 python bench/csip_real.py
    nice -n 10 python bench/csip_real.py --stage1-epochs 20 --stage2-epochs 40 --work /tmp/csip_real
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch


def _epochs(run: Path) -> dict[int, dict[str, Any]]:
    """Stage-2 epoch records of a run's log.jsonl, by epoch."""
    rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    return {r["epoch"]: r for r in rows if r.get("type") == "epoch" and r.get("stage") == 2}


def _train(cfg: Any, ds: Any, run: Path) -> tuple[dict[int, dict[str, Any]], dict[str, Any], float]:
    from csip_reid.engine.train import fit

    t0 = time.perf_counter()
    summary = fit(cfg, ds, run, stage="all", device="cpu", progress=False)
    return _epochs(run), summary, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("REID_TEST_DATA", str(Path(__file__).resolve().parents[1]
                                                                            / ".." / "shared" / "data")))
    ap.add_argument("--pose", default="movenet", help="pose back-end spec for the skeletons (reid backends)")
    ap.add_argument("--stage1-epochs", type=int, default=20, help="stage-1 epochs of the run with stage 1")
    ap.add_argument("--stage2-epochs", type=int, default=30, help="stage-2 epochs of both runs")
    ap.add_argument("--lr", type=float, default=0.0, help="stage-2 base lr (0: csip_tiny's)")
    ap.add_argument("--seed", type=int, default=0, help="run seed (0: csip_tiny's)")
    ap.add_argument("--no-ablation", action="store_true", help="skip the run without stage 1")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    ap.add_argument("--work", help="keep skeletons and run folders here (default: a temp folder)")
    args = ap.parse_args()

    data = Path(args.data).resolve()
    root, models = data / "reid_tracklets" / "mini_mars_full", data / "models"
    if not (root / "labels.csv").is_file():
        print(f"error: needs {root}/labels.csv (the mini_mars_full test material)", file=sys.stderr)
        return 2
    os.environ.setdefault("REID_WEIGHTS_DIR", str(models))
    os.environ.setdefault("REID_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")

    from csip_reid.data import build_dataset
    from csip_reid.engine.context import TrainContext, seed_everything
    from csip_reid.engine.stage2 import evaluate_model
    from csip_reid.models import build_model, load_config
    from csip_reid.pipeline.skeletonize import skeletonize_dataset

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="csip_real_"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    skel_dir = work / f"skeletons_{args.pose.replace(':', '_').replace('/', '_')}"
    sk = skeletonize_dataset("minimars", root, pose=args.pose, out=skel_dir, progress=False)
    t_skel = time.perf_counter() - t0
    ds = build_dataset("minimars", root, skeletons=str(skel_dir))
    train_ids = {int(Path(r.frames[0]).parent.name) for r in ds.train}
    test_ids = {r.pid for r in ds.query + ds.gallery}
    if train_ids & test_ids:
        print(f"error: train and test share identities {sorted(train_ids & test_ids)}", file=sys.stderr)
        return 1
    print(f"data: train {len(ds.train)} tracklets of {len(train_ids)} ids; test {len(ds.query)} query + "
          f"{len(ds.gallery)} gallery tracklets of {len(test_ids)} other ids; {ds.num_cameras} cameras; "
          f"{args.pose} skeletons ({ds.skeleton_format}, {sk['frames_written']} frames written, "
          f"{sk['tracklets_skipped']} tracklets already done) in {t_skel:.1f}s")

    cfg = load_config("csip_tiny")
    cfg.stage1.epochs, cfg.stage2.epochs, cfg.stage2.eval_period = args.stage1_epochs, args.stage2_epochs, 1
    if args.lr > 0:
        cfg.stage2.lr = args.lr
    if args.seed:
        cfg.run.seed = args.seed
    print(f"recipe: csip_tiny, seed {cfg.run.seed}; stage 1 {cfg.stage1.epochs} epochs (batch "
          f"{cfg.stage1.batch_size}, lr {cfg.stage1.lr:g}); stage 2 {cfg.stage2.epochs} epochs (batch "
          f"{cfg.stage2.batch_size} = {cfg.stage2.batch_size // cfg.stage2.num_instances} ids x "
          f"{cfg.stage2.num_instances}, lr {cfg.stage2.lr:g}); evaluation: rrs T={cfg.input.seq_len}, "
          f"RGB only, same-camera matches excluded; torch threads {args.threads}")

    seed_everything(cfg.run.seed)  # the init fit() builds for stage 1 (same seed, same order)
    untrained = build_model(cfg, ds.num_train_pids, ds.num_cameras)
    base = evaluate_model(TrainContext(cfg, ds, work, torch.device("cpu"), progress=False), untrained)

    runs: dict[str, tuple[dict[int, dict[str, Any]], dict[str, Any], float]] = {}
    runs["with stage 1"] = _train(cfg, ds, work / "with_stage1")
    if not args.no_ablation:
        off = load_config("csip_tiny")
        off.stage1.epochs = 0
        off.stage2.epochs, off.stage2.eval_period, off.stage2.lr, off.run.seed = (
            cfg.stage2.epochs, 1, cfg.stage2.lr, cfg.run.seed)
        runs["without stage 1"] = _train(off, ds, work / "without_stage1")

    names = list(runs)
    print("\nstage-2 epoch | " + " | ".join(f"{n}: mAP   R1   loss" for n in names))
    print(f"{0:>13} | " + " | ".join(f"{'':>14}{base['mAP']:.3f} {base['r1']:.3f}    - " for _ in names))
    for e in range(1, cfg.stage2.epochs + 1):
        cells = []
        for n in names:
            r = runs[n][0].get(e, {})
            cells.append(f"{'':>14}{r.get('eval_mAP', float('nan')):.3f} {r.get('eval_r1', float('nan')):.3f} "
                         f"{r.get('loss', float('nan')):5.2f}")
        print(f"{e:>13} | " + " | ".join(cells))
    print()
    for n in names:
        epochs, summary, secs = runs[n]
        last = epochs[max(epochs)]
        best = summary["stage2"]["best"] or {"mAP": float("nan"), "epoch": "-"}
        print(f"{n}: final mAP {last['eval_mAP']:.4f} R1 {last['eval_r1']:.4f} R5 {last['eval_r5']:.4f} "
              f"(untrained {base['mAP']:.4f} / {base['r1']:.4f}; best-on-test {best['mAP']:.4f} at epoch "
              f"{best['epoch']}); {secs:.0f}s")
    print(f"queries with a cross-camera match: {int(base.get('num_valid_queries', 0))}; "
          f"wall {time.perf_counter() - t0:.0f}s; runs in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
