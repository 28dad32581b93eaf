"""End-to-end csip_tiny training on mini-MARS (synthetic skeletons): files, log, checkpoints, resume."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from csip_reid.core.errors import CheckpointError, ConfigError, DatasetError
from csip_reid.data import VideoReIDDataset, build_dataset
from csip_reid.engine.train import fit, train
from csip_reid.models import create_model, load_config
from csip_reid.models.checkpoint import FORMAT, load_checkpoint, model_from_checkpoint, save_checkpoint
from tests.helpers.training import minimars_with_synthetic_skeletons, one_torch_thread  # noqa: F401

STEPS = 2  # iterations per epoch: keeps the module at a few seconds of CPU per epoch
LOSS_TERMS = {"id_cls", "id_proj", "id_tp", "tri_cls", "tri_proj", "tri_tp", "csip", "frame"}


@pytest.fixture(scope="module")
def synth(mini_mars: Path, tmp_path_factory: pytest.TempPathFactory) -> VideoReIDDataset:
    return minimars_with_synthetic_skeletons(mini_mars, tmp_path_factory.mktemp("synthetic"))


def _run(ds: VideoReIDDataset, out: Path, **kw: Any) -> dict[str, Any]:
    return fit(load_config("csip_tiny"), ds, out, max_steps=STEPS, progress=False, **kw)


@pytest.fixture(scope="module")
def full_run(synth: VideoReIDDataset, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("full")
    return out, _run(synth, out, epochs_override={"stage1": 1, "stage2": 2})


@pytest.fixture(scope="module")
def split_run(synth: VideoReIDDataset, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The same training as ``full_run`` in three calls: stage 1, stage 2 for 1 epoch, resume to 2."""
    out = tmp_path_factory.mktemp("split")
    _run(synth, out, stage="1", epochs_override={"stage1": 1})
    _run(synth, out, stage="2", epochs_override={"stage2": 1})
    return out, _run(synth, out, resume=True, epochs_override={"stage2": 2})


def _log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def test_run_writes_files_and_log(full_run: tuple[Path, dict]) -> None:
    out, summary = full_run
    assert {p.name for p in out.iterdir()} >= {"config.yaml", "log.jsonl", "stage1.pt", "best.pt", "last.pt"}
    assert load_config(out / "config.yaml").stage2.epochs == 2
    epochs = [r for r in _log(out) if r.get("type") == "epoch"]
    assert [(r["stage"], r["epoch"]) for r in epochs] == [(1, 1), (2, 1), (2, 2)]
    assert {"v2s", "s2v", "loss", "lr"} <= set(epochs[0]) and epochs[0]["steps"] == STEPS
    for r in epochs[1:]:
        assert LOSS_TERMS | {"loss", "lr", "eval_mAP", "eval_r1"} <= set(r)
        assert 0.0 <= r["eval_mAP"] <= 1.0 and r["eval_num_valid_queries"] == 23
    assert summary["stage2"]["best"]["mAP"] == max(r["eval_mAP"] for r in epochs[1:])
    assert summary["num_classes"] == 16 and summary["num_cameras"] == 6


@pytest.mark.parametrize("name", ["stage1.pt", "best.pt", "last.pt"])
def test_checkpoints_load_with_weights_only(full_run: tuple[Path, dict], name: str) -> None:
    out, _ = full_run
    ck = torch.load(out / name, map_location="cpu", weights_only=True)
    assert ck["format"] == FORMAT
    assert ck["stage"] == (1 if name == "stage1.pt" else 2)
    assert ck["preprocess"] == {"height": 64, "width": 32, "mean": [0.485, 0.456, 0.406],
                                "std": [0.229, 0.224, 0.225], "rgb": True, "scale": 1 / 255, "interpolation": "pil_bilinear"}
    assert ck["skeleton_format"] == "h36m17-3d" and ck["num_cameras"] == 6 and ck["num_classes"] == 16
    assert ck["config"]["name"] == "csip_tiny"
    assert (ck["train_state"] is not None) == (name == "last.pt")
    if name != "stage1.pt":
        assert bool(ck["state_dict"]["pfu.initialized"])


def test_best_is_written_only_when_better(full_run: tuple[Path, dict]) -> None:
    out, _ = full_run
    maps = [r["eval_mAP"] for r in _log(out) if r.get("type") == "epoch" and r["stage"] == 2]
    best_epoch = maps.index(max(maps)) + 1  # the first epoch reaching the maximum: ties do not rewrite
    best = load_checkpoint(out / "best.pt", stage=2)
    assert best["epoch"] == best_epoch
    assert best["metrics"]["mAP"] == pytest.approx(max(maps))


def test_prototypes_stay_static_in_stage2(full_run: tuple[Path, dict], synth: VideoReIDDataset) -> None:
    out, _ = full_run
    last = load_checkpoint(out / "last.pt", stage=2)["state_dict"]
    best = load_checkpoint(out / "best.pt", stage=2)["state_dict"]
    assert torch.equal(last["pfu.proto_v"], best["pfu.proto_v"]) and torch.equal(last["pfu.proto_s"], best["pfu.proto_s"])
    # They are the stage-1 model's per-identity means, recomputed here from stage1.pt.
    from csip_reid.engine.context import TrainContext
    from csip_reid.engine.stage2 import compute_prototypes

    model = model_from_checkpoint(load_checkpoint(out / "stage1.pt", stage=1))
    ctx = TrainContext(load_config("csip_tiny"), synth, out, torch.device("cpu"), progress=False)
    p_s, p_v = compute_prototypes(ctx, model)
    assert torch.allclose(p_v, last["pfu.proto_v"], atol=1e-5) and torch.allclose(p_s, last["pfu.proto_s"], atol=1e-5)


def test_resume_continues_at_the_next_epoch_and_matches(full_run: tuple[Path, dict],
                                                        split_run: tuple[Path, dict]) -> None:
    out, summary = split_run
    assert summary["stage2"]["start_epoch"] == 1 and "stage1" not in summary
    epochs = [(r["stage"], r["epoch"]) for r in _log(out) if r.get("type") == "epoch"]
    assert epochs == [(1, 1), (2, 1), (2, 2)]
    resumed = load_checkpoint(out / "last.pt")
    assert (resumed["stage"], resumed["epoch"], resumed["stage_complete"]) == (2, 2, True)
    uninterrupted = load_checkpoint(full_run[0] / "last.pt")["state_dict"]
    for k, v in resumed["state_dict"].items():
        assert torch.allclose(v.float(), uninterrupted[k].float(), atol=1e-6), k


def test_resume_inside_stage1(synth: VideoReIDDataset, tmp_path: Path) -> None:
    _run(synth, tmp_path, stage="1", epochs_override={"stage1": 1})
    first = load_checkpoint(tmp_path / "last.pt")
    assert (first["stage"], first["epoch"]) == (1, 1)
    summary = fit(load_config("csip_tiny"), synth, tmp_path, stage="1", resume=True, max_steps=1, progress=False,
                  epochs_override={"stage1": 2})
    assert summary["stage1"]["start_epoch"] == 1
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 2
    assert load_checkpoint(tmp_path / "stage1.pt", stage=1)["stage_complete"]


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model("csip_tiny", num_classes=5, num_cameras=3).eval()
    model.pfu.set_prototypes(torch.randn(5, 32), torch.randn(5, 32))
    save_checkpoint(tmp_path / "m.pt", model, stage=2, epoch=3, stage_complete=False, skeleton_format=None,
                    metrics={"mAP": 0.25})
    ck = load_checkpoint(tmp_path / "m.pt", stage=2)
    again = model_from_checkpoint(ck).eval()
    assert again.num_cameras == 3 and again.num_classes == 5 and ck["metrics"] == {"mAP": 0.25}
    x = torch.randn(2, 4, 3, 64, 32)
    assert torch.equal(model.extract(x, torch.tensor([0, 2])), again.extract(x, torch.tensor([0, 2])))


def test_wrong_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(CheckpointError, match="not a csip-reid checkpoint"):
        load_checkpoint(tmp_path / "text.pt")
    torch.save(create_model("csip_tiny", num_classes=2).state_dict(), tmp_path / "sd.pt")
    with pytest.raises(CheckpointError, match="bare state_dict"):
        load_checkpoint(tmp_path / "sd.pt")
    torch.save({"weights": {}, "obj": argparse.Namespace(a=1)}, tmp_path / "obj.pt")  # arbitrary class: unsafe
    with pytest.raises(CheckpointError, match="pickled Python objects") as err:
        load_checkpoint(tmp_path / "obj.pt")
    assert "weights_only" not in str(err.value)
    torch.save({"format": "csip-reid/ckpt-v0"}, tmp_path / "old.pt")
    with pytest.raises(CheckpointError, match="ckpt-v0"):
        load_checkpoint(tmp_path / "old.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "none.pt")


def test_stage1_checkpoint_where_stage2_is_needed(full_run: tuple[Path, dict]) -> None:
    with pytest.raises(CheckpointError, match="stage-1 checkpoint"):
        load_checkpoint(full_run[0] / "stage1.pt", stage=2, purpose="evaluation")
    with pytest.raises(CheckpointError, match="stage-2 checkpoint"):
        load_checkpoint(full_run[0] / "best.pt", stage=1, purpose="stage 2")


def test_bad_requests(synth: VideoReIDDataset, mini_mars: Path, tmp_path: Path) -> None:
    cfg = load_config("csip_tiny")
    with pytest.raises(CheckpointError, match="nothing to resume"):
        fit(cfg, synth, tmp_path / "a", resume=True, progress=False)
    with pytest.raises(CheckpointError, match="stage-1 checkpoint"):
        fit(cfg, synth, tmp_path / "b", stage="2", progress=False)
    with pytest.raises(ConfigError, match="stage"):
        fit(cfg, synth, tmp_path / "c", stage="3", progress=False)
    with pytest.raises(ConfigError, match="epochs_override"):
        fit(cfg, synth, tmp_path / "d", epochs_override={"stage3": 1}, progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA"):
            fit(cfg, synth, tmp_path / "e", device="cuda", progress=False)
    # Real mini-MARS has no skeletons: stage 1 cannot run, and says so before any training.
    with pytest.raises(DatasetError, match="skeletons"):
        train(cfg, str(mini_mars), "minimars", str(tmp_path / "f"), stage="1", progress=False)
    assert build_dataset("minimars", str(mini_mars)).skeleton_format is None
