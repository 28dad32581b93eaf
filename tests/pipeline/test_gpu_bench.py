"""bench/gpu.sh and its CPU fallback (no GPU here: the script must still run and print its tables)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_gpu_sh_syntax() -> None:
    p = subprocess.run(["bash", "-n", str(REPO / "bench" / "gpu.sh")], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


@pytest.mark.slow
def test_gpu_bench_cpu_fallback(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "YOLO_CONFIG_DIR": str(tmp_path / "y"),
           "REID_CACHE_DIR": str(tmp_path / "c")}
    p = subprocess.run([sys.executable, str(REPO / "bench" / "gpu_bench.py"), "--device", "cpu", "--quick",
                        "--frames", "12", "--detector-frames", "16", "--size", "320x180",
                        "--sections", "env,decode,detect"], capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    out = p.stdout
    assert "| device asked | cpu |" in out
    decode = re.findall(r"\| OpenCV \(CPU\) \| ([14]) \| (\d+) \| [\d.]+ \| (\d+) \|", out)
    assert [(s, int(n)) for s, n, _ in decode] == [("1", 12), ("4", 48)] and all(int(f) > 0 for *_, f in decode)
    rows = re.findall(r"\| FP32 \| (1|16) \| 16 \| [\d.]+ \| ([\d.]+) \|", out)
    assert [b for b, _ in rows] == ["1", "16"] and all(float(f) > 0 for _, f in rows)
    assert "FP16" not in out  # half precision is a CUDA-only row
