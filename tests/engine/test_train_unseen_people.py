"""Training on mini_mars_full's own train split and evaluating on people it never saw; fp32 targets and evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from csip_reid.cli import main
from csip_reid.data import build_dataset
from csip_reid.data.skeleton_io import write_skeleton_json
from csip_reid.engine.context import TrainContext
from csip_reid.engine.stage2 import extract_features
from csip_reid.models import CSIPReID, load_config
from tests.helpers.training import one_torch_thread  # noqa: F401


def _synthetic_train_skeletons(root: Path, out: Path) -> None:
    """A fixed random pose per training person plus jitter, mirrored under ``out`` as `reid skeletons --out` writes."""
    ds = build_dataset("minimars", root, skeletons="none")
    rng = np.random.default_rng(0)
    poses = rng.normal(size=(ds.num_train_pids, 17, 3)).astype(np.float32)
    for rec in ds.train:
        for f in rec.frames:
            rel = Path(f).relative_to(root)
            frame = poses[rec.pid] + 0.1 * rng.normal(size=(17, 3))
            frame[0] = 0.0
            write_skeleton_json(out / rel.parent / (rel.stem + ".json"), frame, "h36m17-3d")


def test_reid_train_then_eval_on_unseen_people(mini_mars_full: Path, tmp_path: Path) -> None:
    skel, run = tmp_path / "skeletons", tmp_path / "run"
    _synthetic_train_skeletons(mini_mars_full, skel)
    ds = build_dataset("minimars", mini_mars_full, skeletons=str(skel))
    assert all(r.skeletons for r in ds.train) and not any(r.skeletons for r in ds.query + ds.gallery)
    runner = CliRunner()
    res = runner.invoke(main, ["train", "--config", "csip_tiny", "--dataset", "minimars", "--data-root",
                               str(mini_mars_full), "--skeletons", str(skel), "--output", str(run),
                               "--device", "cpu", "--epochs", "1", "--max-steps", "2"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output[res.output.index("{"):])
    assert summary["num_classes"] == 16 and summary["stages"] == [1, 2]
    trained = summary["stage2"]["last_metrics"]
    assert 0.0 < trained["mAP"] <= 1.0 and trained["num_valid_queries"] == 23
    res = runner.invoke(main, ["eval", "--checkpoint", str(run / "best.pt"), "--dataset", "minimars",
                               "--data-root", str(mini_mars_full), "--device", "cpu", "--json"])
    assert res.exit_code == 0, res.output
    scores = json.loads(res.output[res.output.index("{"):])
    assert scores["num_query"] == 32 and scores["num_gallery"] == 32
    # `reid eval` of best.pt (the only evaluation, so the best) gives the training loop's figure
    assert scores["mAP"] == pytest.approx(trained["mAP"], abs=1e-4)


def _tiny() -> CSIPReID:
    torch.manual_seed(0)
    return CSIPReID(load_config("csip_tiny"), 4, 2).eval()


def test_stage1_targets_are_fp32_under_autocast() -> None:
    """Official: the visual targets are computed outside amp.autocast; only the skeleton branch is mixed."""
    model = _tiny()
    cfg = model.cfg
    images = torch.randn(2, cfg.input.seq_len, 3, cfg.input.height, cfg.input.width)
    skel = torch.randn(2, cfg.input.seq_len, 17, 3)
    with torch.no_grad():
        plain = model.forward_stage1(images, skel, None)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = model.forward_stage1(images, skel, None)
    assert torch.equal(mixed["v"], plain["v"])
    assert not torch.equal(mixed["s"], plain["s"])  # the skeleton branch did run in bf16


def test_evaluation_features_are_fp32_with_amp_on(mini_mars: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Official: evaluation runs in fp32 even when training uses mixed precision."""
    model = _tiny()
    ds = build_dataset("minimars", mini_mars)
    ctx = TrainContext(model.cfg, ds, tmp_path, torch.device("cpu"), progress=False)
    plain = extract_features(ctx, model, ds.query[:3])
    # the training context of an AMP run (CUDA fp16 there; CPU bf16 here)
    monkeypatch.setattr(TrainContext, "autocast", lambda self: torch.autocast("cpu", dtype=torch.bfloat16))
    mixed = extract_features(ctx, model, ds.query[:3])
    assert mixed.dtype == np.float32 and np.array_equal(mixed, plain)
