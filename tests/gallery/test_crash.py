"""kill -9 in the middle of indexing leaves a gallery that opens, whole videos only, FAISS == SQLite."""

from __future__ import annotations

import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from csip_reid.gallery import Gallery, IndexPolicy
from tests.helpers.gallery import add_video, unit_vectors

REPO = Path(__file__).resolve().parents[2]

# Adds videos forever; video i has 20 + 37 * (i % 5) tracklets, written into its name. Logs
# "begin i" / "end i" around each add_video call. A low exact_max makes the index switch to IVF
# (and re-train) while it runs, so the kill can also land in an index rebuild or save.
CHILD = """
import sys
from csip_reid.gallery import Gallery, IndexPolicy, VideoRecord
from tests.helpers.gallery import fake_embedder_info, make_tracklets, unit_vectors

root, log = sys.argv[1], open(sys.argv[2], "a", buffering=1)
g = Gallery.open_or_create(root, fake_embedder_info(), policy=IndexPolicy(exact_max=int(sys.argv[3])))
for i in range(int(sys.argv[4]), 100000):
    n = 20 + 37 * (i % 5)
    tracklets = make_tracklets(unit_vectors(n, seed=i), seed=i, thumb_height=64)
    log.write(f"begin {i}\\n")
    g.add_video(VideoRecord(f"/videos/v{i:05d}_n{n}.mp4", f"h{i}", "cam1", 25.0, 100, 64, 64), tracklets)
    log.write(f"end {i}\\n")
"""


def _wait_for(log: Path, pattern: str, last: bool = False, timeout: float = 60.0) -> None:
    """Wait until the log has a line matching ``pattern`` (as its last line if ``last``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = log.read_text().splitlines() if log.exists() else []
        if any(re.fullmatch(pattern, line) for line in (lines[-1:] if last else lines)):
            return
        time.sleep(0.002)
    raise AssertionError(f"child never logged {pattern!r}")


def _check(root: Path, finished: set[int]) -> list[dict]:
    """Invariants after a crash; returns the stored videos."""
    with Gallery.open(root, policy=IndexPolicy(exact_max=600)) as g:
        videos = g.info()["videos"]
        stored = {int(re.search(r"v(\d+)_", v["name"]).group(1)) for v in videos}
        assert finished <= stored <= finished | {max(finished) + 1}  # at most the in-flight one more
        for v in videos:  # every video whole
            assert v["tracklets"] == int(re.search(r"_n(\d+)\.mp4", v["name"]).group(1)), v
        assert g.index.ntotal == len(g) == sum(v["tracklets"] for v in videos)
        hit = g.search(unit_vectors(20, seed=0)[7], k=1)[0][0]
        assert (hit.video_name, hit.track_id) == ("v00000_n20.mp4", 8)
    return videos


@pytest.mark.slow
def test_sigkill_during_add_video(tmp_path: Path) -> None:
    """Six writers in a row on one gallery, each killed at a random moment of an add_video call."""
    root, log = tmp_path / "g", tmp_path / "log.txt"
    rng = random.Random(0)
    finished: set[int] = set()
    for _ in range(6):
        start = max(finished, default=-1) + 1
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(root), str(log), "600", str(start)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO,
        )
        try:
            _wait_for(log, rf"end {start + 1}")  # two whole videos in this round first
            _wait_for(log, r"begin \d+", last=True)  # then kill while a video is being added
            time.sleep(rng.uniform(0.0, 0.03))
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        assert child.returncode == -signal.SIGKILL, child.stderr.read().decode()[-2000:]
        finished |= {int(line.split()[1]) for line in log.read_text().splitlines() if line.startswith("end")}
        videos = _check(root, finished)

    # The next writer resumes: the killed writer's lock is gone, crash leftovers are removed.
    with Gallery.open(root) as g:
        vecs = unit_vectors(5, seed=99)
        add_video(g, "resumed.mp4", vecs)
        referenced = {Path(r.thumbnail).parent.name for r in g.iter_tracklets()}
        assert {p.name for p in (root / "thumbs").iterdir()} == referenced
        assert not [p for p in root.iterdir() if p.name.endswith(".tmp")]
        assert g.search(vecs[4], k=1)[0][0].video_name == "resumed.mp4"
    assert len(list(root.glob("index-*.faiss"))) == 1
    with Gallery.open(root) as g:
        assert g.index.ntotal == sum(v["tracklets"] for v in videos) + 5
