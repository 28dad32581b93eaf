"""The container image builds and its smoke-test stage (index + query of a sample, offline) passes.

Slow (minutes; a first build downloads torch), so it runs only when asked:
``REID_IMAGE_TEST=1 pytest tests/release/test_image.py``, with the build settings of ``make image-test``
in the environment (BASE_IMAGE, TORCH_INDEX, TORCH_PKGS; see README, "Container image").
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ENGINE = os.environ.get("CONTAINER") or next((e for e in ("podman", "docker") if shutil.which(e)), None)



@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("REID_IMAGE_TEST") != "1",
                    reason="image build is opt-in: set REID_IMAGE_TEST=1 (or run `make image-test`)")
@pytest.mark.skipif(not ENGINE, reason="neither podman nor docker is installed")
@pytest.mark.timeout(3600)
def test_image_smoke_stage_indexes_and_queries(test_data: Path) -> None:
    env = dict(os.environ, REID_TEST_DATA=str(test_data), CONTAINER=str(ENGINE))
    p = subprocess.run(["bash", "docker/build.sh", "test"], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=3600)
    log = p.stdout + p.stderr
    assert p.returncode == 0, log[-4000:]
    assert "smoke test passed: 120 frames, 1 tracklet" in log


def test_build_script_rejects_missing_test_data(tmp_path: Path) -> None:
    env = dict(os.environ, REID_TEST_DATA=str(tmp_path), CONTAINER=str(ENGINE or "podman"))
    p = subprocess.run(["bash", "docker/build.sh", "test"], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 2 and p.stderr.strip().splitlines()[-1].startswith("error: no models/ in")
