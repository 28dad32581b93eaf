"""``reid export-onnx``: a random-init csip_tiny checkpoint exported, checked on real mini-MARS crops,
and used as ``--embedder onnx:FILE`` (clip input, preprocessing and T from the metadata)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch

from csip_reid.core.tracklet import Tracklet
from csip_reid.core.weights import file_sha256
from csip_reid.data import build_dataset
from csip_reid.models import create_model
from csip_reid.models.checkpoint import save_checkpoint
from csip_reid.models.export_onnx import export_onnx
from csip_reid.pipeline.embed import create_embedder
from csip_reid.pipeline.embed.onnx import OnnxEmbedder
from tests.helpers.cli import run_reid

pytest.importorskip("onnxscript", reason="the ONNX exporter needs onnxscript (pip install '.[export]')")
pytestmark = pytest.mark.slow  # torch.export of a model, minutes on a busy CPU


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = create_model("csip_tiny", num_classes=16, num_cameras=6)
    model.pfu.set_prototypes(torch.randn(16, 32), torch.randn(16, 32))
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "best.pt", model, stage=2, epoch=2,
                           stage_complete=True, skeleton_format="h36m17-2d-conf", metrics={"mAP": 0.5})


@pytest.fixture(scope="module")
def fixed(ckpt: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """Exported through the CLI, batch 1."""
    out = tmp_path_factory.mktemp("onnx") / "csip.onnx"
    p = run_reid("export-onnx", "--checkpoint", str(ckpt), "--out", str(out), "--json", check=True)
    return out, json.loads(p.stdout[p.stdout.index("{"):])


@pytest.fixture(scope="module")
def dynamic(ckpt: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("onnx") / "csip_dyn.onnx"
    return out, export_onnx(ckpt, out, dynamic_batch=True)


def _tracklet_crops(mini_mars: Path, n_crops: list[int]) -> list[list[np.ndarray]]:
    ds = build_dataset("minimars", str(mini_mars))
    return [[cv2.imread(f) for f in r.frames[:k]] for r, k in zip(ds.query, n_crops, strict=False)]


def test_metadata_records_preprocessing_and_clip_length(fixed: tuple[Path, dict], ckpt: Path) -> None:
    path, summary = fixed
    assert summary["input_shape"] == [1, 4, 3, 64, 32] and summary["feature_dim"] == 160
    assert summary["max_abs_diff"] <= 1e-4
    model = onnx.load(str(path))
    meta = {p.key: p.value for p in model.metadata_props}
    stored = torch.load(ckpt, weights_only=True)["preprocess"]
    assert json.loads(meta["csip_reid.preprocess"]) == stored
    assert meta["csip_reid.seq_len"] == "4" and meta["csip_reid.feature_dim"] == "160"
    assert meta["csip_reid.checkpoint_sha256"] == file_sha256(ckpt)
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 4, 3, 64, 32]
    assert [i.name for i in model.graph.input] == ["clips", "cameras"]


@pytest.mark.parametrize("which", ["fixed", "dynamic"])
def test_onnx_embedder_matches_pytorch_on_real_crops(which: str, fixed, dynamic, ckpt: Path,
                                                     mini_mars: Path) -> None:
    path = (fixed if which == "fixed" else dynamic)[0]
    emb = create_embedder(f"onnx:{path}")
    ref = create_embedder(f"csip:{ckpt}")
    assert isinstance(emb, OnnxEmbedder) and emb.clip_model
    # T and the preprocessing come from the metadata, not the onnx: defaults (16 frames, 256x128).
    assert emb.max_frames == 4 and emb.preprocess == ref.preprocess and emb.dim == ref.dim == 160
    crops = _tracklet_crops(mini_mars, [9, 2, 1, 6, 30])  # more, fewer and exactly-one crops vs T=4
    cams = [0, 3, None, 99, 5]
    got, want = emb.embed_crops(crops, cams), ref.embed_crops(crops, cams)
    assert got.shape == (5, 160)
    assert float(np.abs(got - want).max()) <= 1e-4
    # The camera index reaches the SIE term inside the graph.
    with_cam = emb.embed_crops(crops[:1], [2])
    assert not np.allclose(with_cam, emb.embed_crops(crops[:1], [None]), atol=1e-4)


def test_fingerprint_is_weights_plus_preprocessing(fixed, dynamic, ckpt: Path, tmp_path: Path) -> None:
    a, b = create_embedder(f"onnx:{fixed[0]}"), create_embedder(f"onnx:{dynamic[0]}")
    assert a.weights_id() == file_sha256(fixed[0]) and a.fingerprint() != b.fingerprint()
    d = a.describe()
    assert d["preprocess"]["height"] == 64 and d["max_frames"] == 4
    # The same file under another name has the same fingerprint; other preprocessing metadata does not.
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(fixed[0].read_bytes())
    assert create_embedder(f"onnx:{copy}").fingerprint() == a.fingerprint()
    model = onnx.load(str(fixed[0]))
    for p in model.metadata_props:
        if p.key == "csip_reid.preprocess":
            p.value = json.dumps({**json.loads(p.value), "interpolation": "area"})
    onnx.save_model(model, str(tmp_path / "other.onnx"))
    other = create_embedder(f"onnx:{tmp_path / 'other.onnx'}")
    assert other.preprocess.interpolation == "area" and other.fingerprint() != a.fingerprint()


def test_embed_tracklets_feeds_t_frame_clips(dynamic, mini_mars: Path) -> None:
    emb = create_embedder(f"onnx:{dynamic[0]}")
    crops = _tracklet_crops(mini_mars, [12, 3])
    tracks = [Tracklet("v.mp4", "cam", i, np.arange(len(c)), np.arange(len(c)) / 10.0, np.zeros((len(c), 4)),
                       sample_frames=np.arange(len(c)), crops=c, camera_index=i) for i, c in enumerate(crops)]
    out = emb.embed_tracklets(tracks)
    assert out.shape == (2, 160) and np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert np.allclose(out, emb.embed_crops(crops, [0, 1]), atol=1e-6)


def test_stage1_checkpoint_is_refused(tmp_path: Path) -> None:
    model = create_model("csip_tiny", num_classes=4, num_cameras=2)
    s1 = save_checkpoint(tmp_path / "s1.pt", model, stage=1, epoch=1, stage_complete=True, skeleton_format=None)
    p = run_reid("export-onnx", "--checkpoint", str(s1), "--out", str(tmp_path / "x.onnx"))
    assert p.returncode == 2 and "stage-1" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "x.onnx").exists()
