"""Keep a thread's alternate signal stack across a native call that replaces it.

OpenVINO's CPU plugin gives the thread that compiles a model an alternate signal stack of its own
and puts the previous one back when that compiled model is destroyed. Compiled models destroyed in
another order than they were made (two back-ends, a gallery opened twice, pytest fixtures) leave the
thread with the stack of a model already destroyed: unmapped memory. The next signal handled on the
alternate stack then kills the process with SIGSEGV (``si_code`` SI_KERNEL, no traceback): CPython
installs its handlers with ``SA_ONSTACK``, and torch's DataLoader installs one for SIGCHLD, so the
end of any child process was enough (``tests/core/test_signalstack.py`` reproduces the sequence).
Putting the caller's stack back right after the call keeps every stack the thread uses mapped.
Linux and macOS (``sigaltstack`` through ctypes); elsewhere, or if libc cannot be read, a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager


class _Stack(ctypes.Structure):
    """``stack_t`` of Linux and macOS."""

    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith(("linux", "darwin")):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    except OSError:
        return None


_LIBC = _libc()


def current_stack() -> tuple[int, int] | None:
    """``(address, size)`` of the calling thread's alternate signal stack (None: none, or unknown)."""
    if _LIBC is None:
        return None
    st = _Stack()
    if _LIBC.sigaltstack(None, ctypes.byref(st)) != 0 or not st.ss_sp:
        return None
    return int(st.ss_sp), int(st.ss_size)


@contextmanager
def same_signal_stack() -> Iterator[None]:
    """Run the block, then give the calling thread back the alternate signal stack it had before."""
    if _LIBC is None:
        yield
        return
    before = _Stack()
    known = _LIBC.sigaltstack(None, ctypes.byref(before)) == 0
    try:
        yield
    finally:
        if known:
            before.ss_flags &= ~1  # SS_ONSTACK is reported, never set
            _LIBC.sigaltstack(ctypes.byref(before), None)
