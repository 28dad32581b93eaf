"""Helpers for end-to-end CLI tests on real video (imported by the tests and conftests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from csip_reid.core.video import cut_clip  # noqa: F401  (re-exported for the tests)

# Person time segments of the Intel sample (frame ranges, from the test material README).
INTEL_SEGMENTS = [(70, 190), (230, 440), (510, 690), (750, 860), (940, 1190), (1240, 1350)]


def run_reid(*args: str, env_extra: dict | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """Run ``reid ARGS`` in this process (click's runner): exit code, stdout and stderr as a process
    would give them, without a new Python each time. For what needs a real process (entry point,
    signals, a crash) use :func:`run_reid_process`."""
    from click.testing import CliRunner

    from csip_reid.cli import main

    res = CliRunner().invoke(main, list(args), env=env_extra, prog_name="reid")
    p = subprocess.CompletedProcess(["reid", *args], res.exit_code, res.stdout, res.stderr)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise AssertionError(f"reid {' '.join(args)} raised out of the CLI:\n{p.stderr}") from res.exception
    if check and p.returncode != 0:
        raise AssertionError(f"reid {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def run_reid_process(*args: str, env_extra: dict | None = None, check: bool = False,
                     timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the real console entry point (``python -m csip_reid.cli``) in a subprocess."""
    env = dict(os.environ)
    env.update(env_extra or {})
    p = subprocess.run([sys.executable, "-m", "csip_reid.cli", *args], capture_output=True, text=True,
                       env=env, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"reid {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def black_video(dst: Path, n: int = 30, size=(320, 240)) -> Path:
    out = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), 10, size)
    for i in range(n):
        frame = np.zeros((size[1], size[0], 3), np.uint8)
        cv2.putText(frame, str(i), (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 1, (40, 40, 40), 2)
        out.write(frame)
    out.release()
    return dst


def gallery_info(gallery: Path) -> dict:
    return json.loads(run_reid("gallery", "info", "--gallery", str(gallery), "--json", check=True).stdout)


OFFLINE_ARGS = ("--detector", "yolox:yolox_nano", "--embedder", "onnx:osnet_x0_25_msmt17", "-q")
