"""Bad inputs and crashes: clear one-line errors, nothing indexed is lost, reruns resume."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.cli import OFFLINE_ARGS, black_video, cut_clip, gallery_info, run_reid

pytestmark = pytest.mark.slow


@pytest.fixture()
def small_gallery(videos_dir, offline_env, tmp_path):
    """A gallery holding one short real clip with one person."""
    clip = cut_clip(videos_dir / "intel_one-by-one-person-detection.mp4", tmp_path / "p2.mp4", 240, 330)
    gallery = tmp_path / "gallery"
    run_reid("index", str(clip), "--gallery", str(gallery), *OFFLINE_ARGS, env_extra=offline_env, check=True)
    n = gallery_info(gallery)["num_tracklets"]
    assert n >= 1
    return gallery, n


def _one_line_error(p) -> str:
    lines = [ln for ln in p.stderr.strip().splitlines() if ln.startswith("error:")]
    assert lines, f"no error line in stderr: {p.stderr!r}"
    assert "Traceback" not in p.stderr
    return lines[-1]


def test_bad_inputs_give_errors_and_keep_gallery(small_gallery, offline_env, tmp_path):
    gallery, n = small_gallery
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    # a missing path: nothing to index at all
    p = run_reid("index", str(tmp_path / "missing.mp4"), "--gallery", str(gallery), *OFFLINE_ARGS,
                 env_extra=offline_env)
    assert p.returncode == 2 and "no such file" in _one_line_error(p)
    # broken files: each fails on its own, the run exits 1, the summary says so
    p = run_reid("index", str(empty), str(text), "--gallery", str(gallery), "--json", *OFFLINE_ARGS,
                 env_extra=offline_env)
    assert p.returncode == 1
    summary = json.loads(p.stdout)
    assert summary["failed"] == 2 and summary["indexed"] == 0
    assert all("cannot open video" in r["error"] for r in summary["results"])
    info = gallery_info(gallery)
    assert info["num_tracklets"] == n and info["num_failed"] == 2
    # a query with a broken clip or no person: one-line error, exit 2
    p = run_reid("query", str(text), "--gallery", str(gallery), "-q", env_extra=offline_env)
    assert p.returncode == 2 and "cannot open video" in _one_line_error(p)
    nobody = black_video(tmp_path / "black.mp4")
    p = run_reid("query", str(nobody), "--gallery", str(gallery), "-q", env_extra=offline_env)
    assert p.returncode == 2 and "no person" in _one_line_error(p)
    # a video with nobody in it is indexed with zero tracklets and reported, not an error
    p = run_reid("index", str(nobody), "--gallery", str(gallery), "--json", *OFFLINE_ARGS, env_extra=offline_env)
    assert p.returncode == 0 and json.loads(p.stdout)["empty"] == 1
    assert gallery_info(gallery)["num_tracklets"] == n
    # not a gallery
    p = run_reid("query", str(nobody), "--gallery", str(tmp_path / "nowhere"), "-q", env_extra=offline_env)
    assert p.returncode == 2 and _one_line_error(p)


def test_kill_mid_index_then_resume(videos_dir, offline_env, tmp_path):
    src = videos_dir / "intel_one-by-one-person-detection.mp4"
    folder = tmp_path / "videos"
    folder.mkdir()
    spans = [(60, 200), (220, 450), (500, 700), (740, 870)]
    for i, (a, b) in enumerate(spans):
        cut_clip(src, folder / f"clip{i}.mp4", a, b)
    gallery = tmp_path / "gallery"
    env = {**os.environ, **offline_env}
    cmd = [sys.executable, "-m", "csip_reid.cli", "index", str(folder), "--gallery", str(gallery), *OFFLINE_ARGS]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = gallery / "gallery.db"
    deadline = time.time() + 300
    done = 0
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
        if db.exists():
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as c:
                    done = c.execute("SELECT COUNT(*) FROM videos WHERE status='indexed'").fetchone()[0]
            except sqlite3.Error:
                continue
            if done >= 1:
                break
    assert proc.poll() is None, "index finished before it could be killed; clips too short?"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    info = gallery_info(gallery)  # opens after kill -9
    assert 1 <= info["num_videos"] < len(spans)
    kept = info["num_tracklets"]
    assert kept >= 1
    p = run_reid("index", str(folder), "--gallery", str(gallery), "--json", *OFFLINE_ARGS,
                 env_extra=offline_env, check=True)
    s = json.loads(p.stdout)
    assert s["skipped"] == info["num_videos"] and s["skipped"] + s["indexed"] + s["empty"] == len(spans)
    final = gallery_info(gallery)
    assert final["num_videos"] == len(spans)
    assert final["num_tracklets"] == kept + s["tracklets"]


def _tracklets(gallery: Path) -> list[tuple]:
    from csip_reid.gallery.store import Gallery

    with Gallery.open(gallery) as g:
        return sorted((r.track_id, r.frames.tolist(), np.round(r.boxes, 2).tolist(), r.embedding)
                      for r in g.iter_tracklets())


def test_kill_inside_a_long_video_then_resume(videos_dir, offline_env, tmp_path):
    """kill -9 in the middle of one video: the rerun goes on from its last segment and gives the clean gallery."""
    src = videos_dir / "intel_one-by-one-person-detection.mp4"
    args = ("--segment-minutes", "0.25", *OFFLINE_ARGS)  # 15 s segments of a 139 s clip
    clean = tmp_path / "clean"
    run_reid("index", str(src), "--gallery", str(clean), *args, env_extra=offline_env, check=True)
    gallery = tmp_path / "gallery"
    proc = subprocess.Popen([sys.executable, "-m", "csip_reid.cli", "index", str(src), "--gallery", str(gallery),
                             *args], env={**os.environ, **offline_env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    db, frame, deadline = gallery / "gallery.db", 0, time.time() + 300
    while time.time() < deadline and proc.poll() is None and frame < 700:
        time.sleep(0.2)
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as c:
                frame = max([0, *(r[0] for r in c.execute("SELECT frame FROM resume_points"))])
        except sqlite3.Error:
            continue
    assert proc.poll() is None, "index finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    info = gallery_info(gallery)
    assert info["num_videos"] == 0 and len(info["partial"]) == 1 and info["partial"][0]["indexed_to_s"] >= 70
    p = run_reid("index", str(src), "--gallery", str(gallery), *args, env_extra=offline_env, check=True)
    assert "resume" in p.stderr and "indexed 1" in p.stdout
    assert gallery_info(gallery)["partial"] == []
    got, want = _tracklets(gallery), _tracklets(clean)
    assert [t[:3] for t in got] == [t[:3] for t in want] and len(want) >= 5
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a[3], b[3], atol=1e-5)
