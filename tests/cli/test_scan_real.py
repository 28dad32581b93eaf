"""`--scan adaptive` (the default) against `--scan full` on the real Intel clip, through the CLI."""

from __future__ import annotations

import json

import pytest

from tests.helpers.cli import INTEL_SEGMENTS, OFFLINE_ARGS, cut_clip, run_reid

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def full_gallery(videos_dir, offline_env, tmp_path_factory):
    video = videos_dir / "intel_one-by-one-person-detection.mp4"
    if not video.is_file():
        pytest.skip("intel_one-by-one-person-detection.mp4 missing")
    gallery = tmp_path_factory.mktemp("full") / "gallery"
    p = run_reid("index", str(video), "--gallery", str(gallery), "--scan", "full", "--json", *OFFLINE_ARGS,
                 env_extra=offline_env, check=True)
    return gallery, json.loads(p.stdout)


def _scan_of(gallery) -> str:
    from csip_reid.gallery.store import Gallery

    g = Gallery.open(gallery)
    try:
        return g.embedder["pipeline"]["scan"]
    finally:
        g.close()


def test_the_manifest_records_the_scan(intel_gallery, full_gallery):
    assert _scan_of(intel_gallery[0]) == "adaptive" and _scan_of(full_gallery[0]) == "full"
    assert intel_gallery[1]["tracklets"] <= full_gallery[1]["tracklets"]  # no extra fragmentation


@pytest.mark.parametrize("segment", [1, 4])
def test_query_answers_do_not_change(intel_gallery, full_gallery, videos_dir, offline_env, tmp_path, segment):
    a, b = INTEL_SEGMENTS[segment]
    clip = cut_clip(videos_dir / "intel_one-by-one-person-detection.mp4", tmp_path / "q.mp4", a + 20, b - 20)
    answers = []
    for gallery in (intel_gallery[0], full_gallery[0]):
        p = run_reid("query", str(clip), "--gallery", str(gallery), "--json", "--top-k", "3", "-q",
                     env_extra=offline_env, check=True)
        hits = json.loads(p.stdout)["hits"]
        answers.append([(h["start_frame"] // 10, h["end_frame"] // 10) for h in hits])
    ada, full = answers
    # the same people in the same order; spans agree within a few frames (interpolation, keyframes)
    assert len(ada) == len(full)
    for (s1, e1), (s2, e2) in zip(ada, full, strict=True):
        assert abs(s1 - s2) <= 1 and abs(e1 - e2) <= 1, answers


def test_bad_scan_is_refused(videos_dir, offline_env, tmp_path):
    p = run_reid("index", str(videos_dir / "intel_one-by-one-person-detection.mp4"), "--gallery",
                 str(tmp_path / "g"), "--scan", "fast", *OFFLINE_ARGS, env_extra=offline_env)
    assert p.returncode == 2 and "fast" in p.stderr and not (tmp_path / "g").exists()
