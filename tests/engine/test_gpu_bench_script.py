"""bench/gpu_train.sh: valid shell, and without CUDA it says so and runs its CPU smoke version."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "gpu_train.sh"


def test_script_parses() -> None:
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0


@pytest.mark.slow
def test_cpu_fallback_runs_the_smoke_version() -> None:
    env = {**os.environ, "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    p = subprocess.run(["bash", str(SCRIPT), "--json", "--steps", "1"], capture_output=True, text=True, env=env,
                       timeout=600, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    assert "no CUDA device" in p.stderr
    res = json.loads(p.stdout)
    assert res["device"] == "cpu (smoke)" and res["config"] == "csip_tiny" and res["amp"] is False
    for stage, batch in (("stage1", 16), ("stage2", 8)):
        assert res[stage]["batch"] == batch and res[stage]["clips_per_s"] > 0 and res[stage]["mars_hours"] > 0
