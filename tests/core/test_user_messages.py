"""Error messages a new user meets: foreign checkpoints, and named weights on an offline machine."""

from __future__ import annotations

import argparse
import socket
import urllib.error
from pathlib import Path

import pytest
import torch

import csip_reid.core.weights as weights
from csip_reid.core.errors import CheckpointError, WeightsNotFoundError
from csip_reid.models.checkpoint import load_checkpoint


@pytest.mark.parametrize(("content", "says"), [
    (b"hello, not a model", "not a PyTorch file"),
    (b"", "empty"),
    (b"\x08\x07\x12\x07pytorch", "ONNX model"),
])
def test_foreign_file_says_what_it_is_not(tmp_path: Path, content: bytes, says: str) -> None:
    p = tmp_path / "x.pt"
    p.write_bytes(content)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(p)
    msg = str(err.value)
    assert "not a csip-reid checkpoint" in msg and says in msg
    assert "weights_only" not in msg and "\n" not in msg


def test_pickled_code_is_refused_without_torch_advice(tmp_path: Path) -> None:
    p = tmp_path / "obj.pt"
    torch.save({"state_dict": {}, "args": argparse.Namespace(lr=1)}, p)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(p)
    msg = str(err.value)
    assert "pickled Python objects" in msg and "never loads" in msg
    assert "weights_only" not in msg and "\n" not in msg


def test_named_weight_offline_without_weights_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No REID_OFFLINE, no REID_WEIGHTS_DIR, and DNS fails: say the machine looks offline and what to do."""
    for k in ("REID_OFFLINE", "HF_HUB_OFFLINE", "YOLO_OFFLINE", "REID_WEIGHTS_DIR"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("REID_CACHE_DIR", str(tmp_path / "cache"))
    info = weights.WeightsInfo("fid_test_weight", "fid_test.onnx", "https://example.invalid/fid_test.onnx", "", "test")
    monkeypatch.setitem(weights.KNOWN_WEIGHTS, info.name, info)
    calls = []

    def no_network(url: str, timeout: float = 0) -> None:
        calls.append(url)
        raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))

    monkeypatch.setattr(weights.urllib.request, "urlopen", no_network)
    with pytest.raises(WeightsNotFoundError) as err:
        weights.resolve_weights("fid_test_weight", "ReID weights")
    msg = str(err.value)
    assert calls == [info.url]
    assert "looks offline" in msg and "Name or service not known" in msg
    assert "REID_WEIGHTS_DIR" in msg and "fid_test.onnx" in msg and info.url in msg
    assert not list((tmp_path / "cache").rglob("*.part"))  # nothing half-written left behind


def test_http_error_is_not_called_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REID_CACHE_DIR", str(tmp_path / "cache"))
    for k in ("REID_OFFLINE", "HF_HUB_OFFLINE", "YOLO_OFFLINE"):
        monkeypatch.delenv(k, raising=False)
    info = weights.WeightsInfo("fid_test_404", "fid_404.onnx", "https://example.invalid/404.onnx", "", "test")
    monkeypatch.setitem(weights.KNOWN_WEIGHTS, info.name, info)

    def not_found(url: str, timeout: float = 0) -> None:
        raise urllib.error.HTTPError(url, 404, "Not Found", None, None)  # type: ignore[arg-type]

    monkeypatch.setattr(weights.urllib.request, "urlopen", not_found)
    with pytest.raises(WeightsNotFoundError, match="HTTP 404") as err:
        weights.resolve_weights("fid_test_404")
    assert "offline" not in str(err.value)
