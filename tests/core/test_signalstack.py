"""The alternate signal stack OpenVINO leaves a thread: kept usable, so a child's exit cannot kill us."""

from __future__ import annotations

import ctypes
import subprocess
import sys
from pathlib import Path

import pytest

from csip_reid.core.signalstack import _LIBC, _Stack, current_stack, same_signal_stack

pytestmark = pytest.mark.skipif(_LIBC is None, reason="sigaltstack is read through the C library of Linux/macOS")

# Two models compiled, destroyed in the order they were made, then a Python SIGCHLD handler (as torch's
# DataLoader installs) and a few children: the handler runs on the thread's alternate signal stack.
CHILD = """
import contextlib, gc, signal, subprocess, sys, faulthandler
faulthandler.enable()
import csip_reid.core.openvino as ov
if sys.argv[2] == "unprotected":
    ov.same_signal_stack = contextlib.nullcontext
a = ov.openvino_model(sys.argv[1]); b = ov.openvino_model(sys.argv[1])
del a; gc.collect(); del b; gc.collect()
signal.signal(signal.SIGCHLD, lambda *args: None)
for _ in range(3):
    subprocess.run(["true"])
print("alive")
"""


def test_the_callers_stack_comes_back() -> None:
    before = current_stack()
    buf = ctypes.create_string_buffer(65536)
    with same_signal_stack():
        st = _Stack(ctypes.cast(buf, ctypes.c_void_p), 0, len(buf))
        assert _LIBC.sigaltstack(ctypes.byref(st), None) == 0
        assert current_stack() == (ctypes.addressof(buf), len(buf))
    assert current_stack() == before


def test_openvino_models_destroyed_out_of_order_leave_a_usable_stack(models_dir: Path) -> None:
    xml = next(models_dir.rglob("person-reidentification-retail-0277.xml"), None)
    if xml is None:
        pytest.skip("person-reidentification-retail-0277.xml missing")
    run = [sys.executable, "-c", CHILD, str(xml)]
    kept = subprocess.run([*run, "protected"], capture_output=True, text=True, timeout=300)
    assert kept.returncode == 0 and "alive" in kept.stdout, kept.stderr[-2000:]
    # Without the guard the same run dies of SIGSEGV with this OpenVINO (measured: exit -11); a later
    # OpenVINO may fix its side, so only the guarded run is required to live.
    bare = subprocess.run([*run, "unprotected"], capture_output=True, text=True, timeout=300)
    assert bare.returncode in (0, -11), bare.stderr[-2000:]
