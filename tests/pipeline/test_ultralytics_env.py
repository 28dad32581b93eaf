"""csip_reid.core.ultralytics_env: environment defaults and torch's thread count around the ultralytics import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from csip_reid.core import ultralytics_env as _ultralytics


def _run(code: str, env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_import_keeps_torch_multithreaded(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env["YOLO_CONFIG_DIR"] = str(tmp_path)
    plain = _run("import json, torch; print(json.dumps({'n': torch.get_num_threads()}))", env)
    ours = _run(
        "import json, os\n"
        "from csip_reid.core.ultralytics_env import import_ultralytics\n"
        "import_ultralytics()\n"
        "import torch\n"
        "print(json.dumps({'n': torch.get_num_threads(), 'omp': os.environ.get('OMP_NUM_THREADS')}))",
        env,
    )
    assert ours == {"n": plain["n"], "omp": None}


def test_env_defaults_never_override_user_values(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("YOLO_AUTOINSTALL", "true")
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("REID_OFFLINE", "1")
    monkeypatch.setenv("YOLO_OFFLINE", "0")
    _ultralytics.set_env_defaults()
    assert os.environ["YOLO_AUTOINSTALL"] == "true"
    assert os.environ["YOLO_CONFIG_DIR"] == str(tmp_path / "mine")
    assert os.environ["YOLO_OFFLINE"] == "0"


def test_env_defaults_when_unset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for k in ("YOLO_AUTOINSTALL", "YOLO_CONFIG_DIR", "YOLO_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(k, raising=False)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(blocker / "config"))  # cannot be created: under a file
    monkeypatch.setenv("REID_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("REID_OFFLINE", "1")
    _ultralytics.set_env_defaults()
    assert os.environ["YOLO_AUTOINSTALL"] == "false"
    assert os.environ["YOLO_OFFLINE"] == "1"
    assert Path(os.environ["YOLO_CONFIG_DIR"]) == tmp_path / "cache" / "ultralytics"
    assert Path(os.environ["YOLO_CONFIG_DIR"]).is_dir()


def test_online_and_writable_config_left_alone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for k in ("YOLO_OFFLINE", "REID_OFFLINE", "HF_HUB_OFFLINE", "YOLO_CONFIG_DIR"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))  # writable: ultralytics' own folder is kept
    _ultralytics.set_env_defaults()
    assert "YOLO_OFFLINE" not in os.environ  # would make csip_reid.core.weights think it is offline
    assert "YOLO_CONFIG_DIR" not in os.environ
