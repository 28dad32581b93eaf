"""One writer at a time: an advisory lock file that names its holder.

The lock is a ``flock`` on ``<gallery>/write.lock``. The kernel drops it when the holder exits,
however it exits (``kill -9`` included), so a lock file left behind by a dead process is stale by
construction: the next writer simply takes it over. The file's content (PID, host, start time) is
only used to tell the user who holds a live lock. Readers never take the lock.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from pathlib import Path

from csip_reid.core.errors import GalleryError
from csip_reid.core.walltime import now_iso


class WriterLock:
    """Exclusive, non-reentrant writer lock on a gallery directory.

    Args:
        path: The lock file (created if missing).
        gallery: Gallery path, for error messages.
    """

    def __init__(self, path: Path, gallery: Path) -> None:
        self.path = path
        self.gallery = gallery
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def holder(self) -> str:
        """Who holds (or last held) the lock, as written in the lock file."""
        try:
            text = self.path.read_text().strip()
        except OSError:
            return "unknown process"
        return text.replace("\n", ", ") or "unknown process"

    def acquire(self, timeout: float = 0.0, poll: float = 0.2) -> None:
        """Take the lock, waiting up to ``timeout`` seconds.

        Raises:
            GalleryError: Another live process holds the lock.
        """
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise GalleryError(
                        f"gallery {self.gallery} is being written by another process "
                        f"({self.holder()}); wait for it to finish or use another --gallery"
                    ) from None
                time.sleep(poll)
        started = now_iso()
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\nhost {socket.gethostname()}\nsince {started}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (the file stays; its content no longer matters)."""
        if self._fd is None:
            return
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None
