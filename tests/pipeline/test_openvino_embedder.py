"""The ``openvino:`` embedder on the real offline weights: preprocessing by name, batching, and
agreement with onnxruntime on the same ONNX file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from csip_reid.core.embedder import CropPreprocess
from csip_reid.core.errors import WeightsNotFoundError
from csip_reid.pipeline.embed import create_embedder

pytest.importorskip("openvino", reason="the openvino package is not installed")

INTEL = "person-reidentification-retail-0277"


@pytest.fixture()
def weights_env(models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    if not (models_dir / f"{INTEL}.xml").is_file():
        pytest.skip(f"{INTEL}.xml missing")
    monkeypatch.setenv("REID_WEIGHTS_DIR", str(models_dir))
    monkeypatch.setenv("REID_OFFLINE", "1")
    return models_dir


def _crops(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (140, 60, 3), np.uint8) for _ in range(n)]


def test_intel_model_by_name_takes_bgr_0_255(weights_env: Path) -> None:
    emb = create_embedder(f"openvino:{INTEL}")
    assert emb.dim == 256 and emb.spec == f"openvino:{INTEL}"
    assert emb.preprocess == CropPreprocess(256, 128, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), rgb=False, scale=1.0)
    assert emb.describe()["preprocess"]["rgb"] is False and emb.fixed_batch is None  # reshaped to a dynamic batch
    crop = _crops(1)[0]
    np.testing.assert_array_equal(emb.preprocess([crop])[0, :, 0, 0],
                                  np.asarray(crop[0, 0], np.float32))  # B, G, R at 0-255, nothing subtracted


def test_the_ir_alone_gives_the_same_preprocessing(weights_env: Path) -> None:
    """An unregistered copy of the IR: the preprocessing is read from its conversion parameters."""
    by_path = create_embedder(f"openvino:{weights_env / f'{INTEL}.xml'}")
    assert by_path.preprocess == create_embedder(f"openvino:{INTEL}").preprocess


def test_batched_equals_one_by_one(weights_env: Path) -> None:
    emb = create_embedder(f"openvino:{INTEL}")
    crops = _crops(5)
    together = emb.embed_frames(crops)
    alone = np.concatenate([emb.embed_frames([c]) for c in crops])
    np.testing.assert_allclose(together, alone, atol=2e-2 * np.abs(together).max())  # bf16 kernels per shape
    assert np.abs(together[0] - together[1]).max() > 1e-3  # different crops, different features


def test_same_onnx_file_matches_onnxruntime(weights_env: Path) -> None:
    if not (weights_env / "osnet_x0_25_msmt17.onnx").is_file():
        pytest.skip("osnet_x0_25_msmt17.onnx missing")
    ov = create_embedder("openvino:osnet_x0_25_msmt17", precision="f32")
    ort = create_embedder("onnx:osnet_x0_25_msmt17")
    assert ov.fixed_batch is None and ort.fixed_batch == 1  # the batch-1 export runs batched here
    items = [_crops(3, 1), _crops(1, 2), _crops(12, 3)]
    np.testing.assert_allclose(ov.embed_crops(items), ort.embed_crops(items), atol=1e-4)
    assert ov.describe()["weights"] == ort.describe()["weights"]
    fast = create_embedder("openvino:osnet_x0_25_msmt17")  # OpenVINO's own precision (bf16 on some CPUs)
    cos = np.sum(fast.embed_crops(items) * ort.embed_crops(items), axis=1)
    assert np.all(cos > 0.99), cos


def test_ir_without_its_bin_is_a_clear_error(weights_env: Path, tmp_path: Path) -> None:
    xml = tmp_path / "lonely.xml"
    xml.write_bytes((weights_env / f"{INTEL}.xml").read_bytes())
    with pytest.raises(WeightsNotFoundError, match="lonely.bin"):
        create_embedder(f"openvino:{xml}")
