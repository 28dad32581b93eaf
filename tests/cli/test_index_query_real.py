"""End to end on real video: `reid index` then `reid query` with the offline YOLOX + OSNet weights."""

from __future__ import annotations

import json

import pytest

from tests.helpers.cli import INTEL_SEGMENTS, OFFLINE_ARGS, cut_clip, gallery_info, run_reid

pytestmark = pytest.mark.slow


def _segment_of(start: int, end: int) -> int | None:
    """Index of the person segment a frame span overlaps most, or None."""
    best, best_ov = None, 0
    for i, (a, b) in enumerate(INTEL_SEGMENTS):
        ov = min(end, b) - max(start, a)
        if ov > best_ov:
            best, best_ov = i, ov
    return best


def test_every_person_yields_tracklets(intel_gallery):
    gallery, summary = intel_gallery
    assert summary["indexed"] == 1 and summary["failed"] == 0
    (res,) = summary["results"]  # the whole video was covered: nothing missing, nothing failed
    assert res["promised_frames"] == 1394 and res["missing_frames"] == 0 and res["failed_frames"] == 0
    assert summary["frames"] >= 1200  # the default decoder skips quiet stretches to keyframes
    info = gallery_info(gallery)
    assert info["num_tracklets"] == summary["tracklets"] >= 6
    rows = run_reid("query", "--help").stdout  # cheap sanity that the CLI is importable
    assert "--top-k" in rows
    # every tracklet is stored with a time span; every person segment is covered by one
    from csip_reid.gallery.store import Gallery

    g = Gallery.open(gallery)
    spans = [(r.start_frame, r.end_frame) for r in g.iter_tracklets()]
    covered = {_segment_of(a, b) for a, b in spans}
    assert covered >= set(range(len(INTEL_SEGMENTS))), f"segments covered: {covered}, spans {spans}"


@pytest.mark.parametrize("segment,time_range", [(1, False), (4, False), (2, True)])
def test_query_clip_finds_its_person_first(intel_gallery, videos_dir, offline_env, tmp_path, segment, time_range):
    gallery, _ = intel_gallery
    a, b = INTEL_SEGMENTS[segment]
    video = videos_dir / "intel_one-by-one-person-detection.mp4"
    if time_range:  # a part of a long recording, chosen by time (10 fps): no clip file needed
        args = [str(video), "--start", f"0:{(a + 20) / 10:04.1f}", "--end", f"{(b - 20) / 10}"]
    else:
        args = [str(cut_clip(video, tmp_path / f"q{segment}.mp4", a + 20, b - 20))]
    report = tmp_path / "r.html"
    p = run_reid("query", *args, "--gallery", str(gallery), "--json", "--top-k", "5", "--report",
                 str(report), "-q", env_extra=offline_env, check=True)
    out = json.loads(p.stdout)
    hits = out["hits"]
    assert 1 <= len(hits) <= 5
    assert [h["rank"] for h in hits] == list(range(1, len(hits) + 1))
    assert all(hits[i]["score"] >= hits[i + 1]["score"] for i in range(len(hits) - 1))
    top = hits[0]
    assert set(top) >= {"rank", "score", "video", "camera", "track_id", "start_frame", "end_frame",
                        "start_s", "end_s", "thumbnail"}
    assert top["video"].endswith("intel_one-by-one-person-detection.mp4")
    if time_range:
        assert a + 15 <= out["query"]["start_frame"] and out["query"]["end_frame"] <= b - 20
    assert _segment_of(top["start_frame"], top["end_frame"]) == segment
    assert top["start_s"] == pytest.approx(top["start_frame"] / 10.0, abs=0.15)
    html = report.read_text()
    assert "intel_one-by-one-person-detection.mp4" in html and html.count("data:image/jpeg;base64") >= 2


def test_reindex_is_skipped(intel_gallery, videos_dir, offline_env):
    gallery, summary = intel_gallery
    p = run_reid("index", str(videos_dir / "intel_one-by-one-person-detection.mp4"), "--gallery", str(gallery),
                 "--json", *OFFLINE_ARGS, env_extra=offline_env, check=True)
    again = json.loads(p.stdout)
    assert again["skipped"] == 1 and again["indexed"] == 0 and again["tracklets"] == 0
    assert gallery_info(gallery)["num_tracklets"] == summary["tracklets"]


def test_missing_checkpoint_is_one_line_error(intel_gallery, videos_dir, offline_env, tmp_path):
    gallery, summary = intel_gallery
    clip = cut_clip(videos_dir / "intel_one-by-one-person-detection.mp4", tmp_path / "c.mp4", 250, 300)
    p = run_reid("index", str(clip), "--gallery", str(gallery), "--detector", "yolox:yolox_nano",
                 "--embedder", "csip:/nonexistent/ckpt.pt", "-q", env_extra=offline_env)
    assert p.returncode != 0
    assert p.stderr.strip().splitlines()[-1].startswith("error:")
    assert gallery_info(gallery)["num_tracklets"] == summary["tracklets"]
