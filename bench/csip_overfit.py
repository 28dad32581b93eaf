"""Does CSIP-ReID training learn? Memorise mini-MARS: train and evaluate on the same 64 tracklets.

The ``csip_tiny`` config (random init, 64x32 input), real mini-MARS crops (16 identities, 6 cameras)
and real MoveNet skeletons (``reid skeletons --pose movenet``, offline weights from
``$REID_TEST_DATA/models``). Stage 1 pretrains the skeleton encoder, stage 2 fine-tunes everything
and is evaluated after every epoch on mini-MARS's query/gallery split, which holds the very
tracklets it trains on. A model that cannot memorise 16 people has a bug; the target is mAP >= 0.9
(an untrained model scores ~0.07-0.11).

This is a memorisation check, not the training recipe: the model, the losses, the optimiser groups
and the schedule are the real ones, but the benchmark changes four settings of ``csip_tiny`` and
prints them (``recipe:`` line): stage-2 lr 3e-3 instead of 3.5e-4 (random init from scratch, a few
hundred steps instead of the official ~40k), the bias-free ID classifiers at lr 1e-2 without weight
decay (they start at std 0.001, see :func:`_fast_classifiers`), batches of 4 identities x 4 tracklets
instead of 2 x 4, and no train-time augmentation (flip and random erasing: memorising the tracklets,
not generalising from them). Each is a flag (``--lr``, ``--classifier-lr``, ``--stage2-batch``,
``--augment``); see bench/README.md for the diagnosis and the curves with the shipped settings.

Prints the untrained mAP, one line per epoch (loss, mAP, R1, seconds) and the wall time; exits 1 when
the final mAP stays below the target. Keep it lean on a shared machine::

    nice -n 10 python bench/csip_overfit.py                 # ~10 minutes on 2 shared CPU cores
    nice -n 10 python bench/csip_overfit.py --lr 0 --classifier-lr 0 --stage2-batch 8 --augment  # csip_tiny as shipped
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

import torch


def _fast_classifiers(lr: float) -> None:
    """Give the ID classifiers (``classifier*``) their own Adam group at ``lr``, no weight decay.

    Why: they are bias-free and start at std 0.001, and Adam moves a weight by about ``lr`` per step,
    so at csip_tiny's 3.5e-4 a class needs thousands of steps before its logit stands out; the
    official MARS run has ~40k stage-2 steps, this benchmark a few hundred.
    """
    import csip_reid.engine.train as train_mod

    base = train_mod.stage2_optimizer

    def optimizer(model, cfg):  # type: ignore[no-untyped-def]
        opt = base(model, cfg)
        cls = {id(p) for n, p in model.named_parameters() if n.startswith("classifier") and p.requires_grad}
        for g in opt.param_groups:
            g["params"] = [p for p in g["params"] if id(p) not in cls]
        opt.add_param_group({"params": [p for p in model.parameters() if id(p) in cls], "lr": lr,
                             "base_lr": lr, "weight_decay": 0.0})
        return opt

    train_mod.stage2_optimizer = optimizer


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("REID_TEST_DATA", str(Path(__file__).resolve().parents[1]
                                                                            / ".." / "shared" / "data")))
    ap.add_argument("--stage1-epochs", type=int, default=2)
    ap.add_argument("--stage2-epochs", type=int, default=160,
                    help="stage-2 epochs (4 steps each with the default batch of 16 on 64 tracklets)")
    ap.add_argument("--lr", type=float, default=3e-3,
                    help="stage-2 base lr (0: csip_tiny's 3.5e-4, too slow from random init in a few hundred steps)")
    ap.add_argument("--classifier-lr", type=float, default=1e-2,
                    help="stage-2 lr of the bias-free ID classifiers (0: the config's; see bench/README.md)")
    ap.add_argument("--stage2-batch", type=int, default=16,
                    help="stage-2 batch: 4 tracklets per identity (16 = the official 4 ids x 4; csip_tiny has 8)")
    ap.add_argument("--augment", action="store_true",
                    help="keep csip_tiny's stage-2 flip + random erasing (off: a memorisation check)")
    ap.add_argument("--eval-period", type=int, default=1, help="evaluate every N stage-2 epochs (and the last)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    ap.add_argument("--target", type=float, default=0.9)
    ap.add_argument("--work", help="keep the skeletons and run folder here (default: a temp folder)")
    args = ap.parse_args()

    data = Path(args.data).resolve()
    mini_mars, models = data / "reid_tracklets" / "mini_mars", data / "models"
    if not (mini_mars / "labels.csv").is_file() or not any(models.glob("movenet*.tflite")):
        print(f"error: needs {mini_mars} and a MoveNet model in {models}", file=sys.stderr)
        return 2
    os.environ.setdefault("REID_WEIGHTS_DIR", str(models))
    os.environ.setdefault("REID_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")

    from csip_reid.data import build_dataset
    from csip_reid.engine.context import TrainContext
    from csip_reid.engine.stage2 import evaluate_model
    from csip_reid.engine.train import fit
    from csip_reid.models import build_model, load_config
    from csip_reid.pipeline.skeletonize import skeletonize_dataset

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="csip_overfit_"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    sk = skeletonize_dataset("minimars", mini_mars, pose="movenet", out=work / "skeletons", progress=False)
    t_skel = time.perf_counter() - t0
    ds = build_dataset("minimars", mini_mars, skeletons=str(work / "skeletons"))
    print(f"data: {len(ds.train)} train tracklets = {len(ds.query)} query + {len(ds.gallery)} gallery, "
          f"{ds.num_train_pids} ids, {ds.num_cameras} cameras; MoveNet skeletons ({sk['format']}, "
          f"{sk['frames_written']} frames written) in {t_skel:.1f}s")

    cfg = load_config("csip_tiny")
    cfg.stage1.epochs, cfg.stage2.epochs = args.stage1_epochs, args.stage2_epochs
    cfg.stage2.eval_period = args.eval_period
    cfg.stage2.batch_size = args.stage2_batch
    cfg.stage2.augment = args.augment
    if args.lr > 0:
        cfg.stage2.lr = args.lr
    cls_lr = f"{args.classifier_lr:g}" if args.classifier_lr > 0 else "the base lr"
    print(f"recipe: stage 1 {cfg.stage1.epochs} epochs; stage 2 {cfg.stage2.epochs} epochs, lr {cfg.stage2.lr:g}, "
          f"ID classifiers at {cls_lr}, batch {cfg.stage2.batch_size} = {cfg.stage2.batch_size // cfg.stage2.num_instances}"
          f" ids x {cfg.stage2.num_instances}, augmentation {'on' if cfg.stage2.augment else 'off'}, "
          f"label smoothing {cfg.loss.label_smooth:g}")
    torch.manual_seed(cfg.run.seed)
    untrained = build_model(cfg, ds.num_train_pids, ds.num_cameras)
    base = evaluate_model(TrainContext(cfg, ds, work, torch.device("cpu"), progress=False), untrained)
    print(f"untrained: mAP {base['mAP']:.4f}  R1 {base['r1']:.4f}")

    if args.classifier_lr > 0:
        _fast_classifiers(args.classifier_lr)
    run = work / "run"
    t1 = time.perf_counter()
    summary = fit(cfg, ds, run, stage="all", device="cpu", progress=False)
    t_train = time.perf_counter() - t1
    lines = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    print("stage epoch      loss      mAP       R1   seconds")
    final = 0.0
    for ln in lines:
        if ln.get("type") != "epoch":
            continue
        m = ln.get("eval_mAP")
        final = m if m is not None else final
        ev = "" if m is None else f"{m:8.4f} {ln['eval_r1']:8.4f}"
        print(f"{ln['stage']:>5} {ln['epoch']:>5} {ln.get('loss', float('nan')):>9.4f} {ev:>17} {ln['time_s']:>9.1f}")
    best = summary["stage2"]["best"]
    wall = time.perf_counter() - t0
    print(f"final mAP {final:.4f} (best {best['mAP']:.4f} at epoch {best['epoch']}), untrained {base['mAP']:.4f}; "
          f"training {t_train:.0f}s, wall {wall:.0f}s, torch threads {args.threads}")
    if final < args.target:
        print(f"FAIL: final mAP {final:.4f} < {args.target}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
