"""Fidelity fixes: the stored Laplacian basis, and no SIE on the stage-1 / prototype visual path."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

import csip_reid.models.skeleton as skeleton_mod
from csip_reid.models import create_model
from csip_reid.models.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint


def _tiny(seed: int = 0):  # type: ignore[no-untyped-def]
    torch.manual_seed(seed)
    return create_model("csip_tiny", num_classes=4, num_cameras=3).eval()


_ORIGINAL = skeleton_mod.laplacian_eigvecs


def _other_basis(edges: tuple[tuple[int, int], ...], num_nodes: int, k: int) -> torch.Tensor:
    """Another basis, as another LAPACK build could return (here: reordered, signs flipped)."""
    return -_ORIGINAL(edges, num_nodes, k).flip(1)


@pytest.fixture()
def patched_basis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(skeleton_mod, "laplacian_eigvecs", _other_basis)


def test_checkpoint_carries_the_positional_encoding(tmp_path: Path) -> None:
    model = _tiny()
    assert "skeleton.lap_pe" in model.state_dict()
    path = save_checkpoint(tmp_path / "s1.pt", model, stage=1, epoch=1, stage_complete=True, skeleton_format=None)
    stored = load_checkpoint(path)["state_dict"]["skeleton.lap_pe"]
    assert torch.equal(stored, model.skeleton.lap_pe)
    assert stored.shape == (17, model.cfg.skeleton.k_pos_enc)


def test_loaded_model_uses_the_stored_basis_not_the_local_one(tmp_path: Path, patched_basis: None) -> None:
    ckpt_model = _tiny()
    path = tmp_path / "s1.pt"
    with torch.no_grad():
        ckpt_model.skeleton.lap_pe.copy_(_ORIGINAL(skeleton_mod.H36M_EDGES, 17, ckpt_model.cfg.skeleton.k_pos_enc))
    save_checkpoint(path, ckpt_model, stage=1, epoch=1, stage_complete=True, skeleton_format=None)
    # This "machine" computes another basis ...
    fresh = _tiny()
    assert not torch.allclose(fresh.skeleton.lap_pe, ckpt_model.skeleton.lap_pe)
    # ... but the loaded model uses the one it was trained with, and gives the same features.
    loaded = model_from_checkpoint(load_checkpoint(path), path).eval()
    assert torch.equal(loaded.skeleton.lap_pe, ckpt_model.skeleton.lap_pe)
    skel = torch.randn(2, 4, 17, 3)
    with torch.no_grad():
        assert torch.allclose(loaded.skeleton(skel)[1], ckpt_model.skeleton(skel)[1], atol=1e-6)
        fresh.load_state_dict({k: v for k, v in ckpt_model.state_dict().items() if k != "skeleton.lap_pe"})
        assert not torch.allclose(fresh.skeleton(skel)[1], ckpt_model.skeleton(skel)[1], atol=1e-4)


def test_old_checkpoint_without_the_buffer_loads_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = _tiny()
    path = save_checkpoint(tmp_path / "old.pt", model, stage=2, epoch=1, stage_complete=True, skeleton_format=None)
    ckpt = torch.load(path, weights_only=True)
    del ckpt["state_dict"]["skeleton.lap_pe"]
    torch.save(ckpt, path)
    with caplog.at_level(logging.WARNING, logger="csip_reid.models.skeleton"):
        loaded = model_from_checkpoint(load_checkpoint(path), path)
    assert any("positional encoding" in r.getMessage() for r in caplog.records)
    assert torch.equal(loaded.skeleton.lap_pe, model.skeleton.lap_pe)  # same machine: same basis
    assert torch.equal(loaded.visual.proj.weight, model.visual.proj.weight)


def test_stage1_targets_and_prototypes_have_no_sie_but_inference_does() -> None:
    model = _tiny()
    t = model.cfg.input.seq_len
    images = torch.randn(1, t, 3, model.cfg.input.height, model.cfg.input.width).expand(3, -1, -1, -1, -1)
    skel = torch.randn(3, t, 17, 3)
    cams = torch.tensor([0, 1, 2])
    with torch.no_grad():
        v = model.forward_stage1(images, skel, cams)["v"]
        proto_v = model.sequence_features(images, None, cams)["v"]
        feat = model.extract(images, cams)
        _, _, no_sie = model.visual(images[0], None, sie=False)
    # Same clip, three cameras: no camera term on the stage-1 / prototype path ...
    assert torch.allclose(v[0], v[1], atol=1e-6) and torch.allclose(v[1], v[2], atol=1e-6)
    assert torch.allclose(proto_v, v, atol=1e-6)
    assert torch.allclose(v[0], no_sie[:, 0].mean(0), atol=1e-5)
    # ... while the inference feature does depend on the camera.
    assert not torch.allclose(feat[0], feat[1], atol=1e-4)
    # cams=None still means "unknown camera" (the mean embedding), which is not "no SIE".
    with torch.no_grad():
        _, _, mean_cam = model.visual(images[0], None)
    assert not torch.allclose(mean_cam[:, 0], no_sie[:, 0], atol=1e-5)
