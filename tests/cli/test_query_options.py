"""`reid query --all-tracks / --track-id / --detector` and `reid gallery remove` on a real two-person clip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.cli import OFFLINE_ARGS, cut_clip, gallery_info, run_reid


@pytest.fixture(scope="module")
def two_people(videos_dir: Path, offline_env: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    video = videos_dir / "intel_one-by-one-person-detection.mp4"
    if not video.is_file():
        pytest.skip("intel_one-by-one-person-detection.mp4 missing")
    d = tmp_path_factory.mktemp("two")
    clip = cut_clip(video, d / "two.mp4", 140, 300)  # the first person leaving, the second entering
    other = cut_clip(video, d / "third.mp4", 520, 620)  # a third person, for `gallery remove`
    gallery = d / "gallery"
    for v in (clip, other):
        run_reid("index", str(v), "--gallery", str(gallery), *OFFLINE_ARGS, env_extra=offline_env, check=True)
    p = run_reid("query", str(clip), "--gallery", str(gallery), "--all-tracks", "--json", "--report",
                 str(d / "rep.html"), "-q", env_extra=offline_env, check=True)
    return {"dir": d, "clip": clip, "other": other, "gallery": gallery, "all": json.loads(p.stdout)}


def test_all_tracks_json_shape_and_report_names(two_people: dict) -> None:
    res = two_people["all"]
    assert set(res) == {"queries", "reports"}
    queries = res["queries"]
    assert len(queries) >= 2
    starts = [q["query"]["start_frame"] for q in queries]
    assert starts == sorted(starts)  # in order of appearance
    ids = [q["query"]["track_id"] for q in queries]
    assert len(set(ids)) == len(ids)
    for q in queries:
        assert set(q) == {"query", "hits"} and q["hits"]
        # every track of an indexed clip finds its own gallery copy first
        top = q["hits"][0]
        assert top["score"] == pytest.approx(1.0, abs=1e-3) and top["track_id"] == q["query"]["track_id"]
    names = sorted(Path(r).name for r in res["reports"])
    assert names == sorted(f"rep_t{i}.html" for i in ids)
    assert all(Path(r).is_file() and Path(r).stat().st_size > 1000 for r in res["reports"])


def test_track_id_picks_that_track(two_people: dict, offline_env: dict) -> None:
    queries = two_people["all"]["queries"]
    wanted = queries[-1]["query"]["track_id"]
    p = run_reid("query", str(two_people["clip"]), "--gallery", str(two_people["gallery"]), "--track-id",
                 str(wanted), "--json", "-q", env_extra=offline_env, check=True)
    one = json.loads(p.stdout)
    assert set(one) == {"query", "hits"} and one["query"]["track_id"] == wanted
    assert one["hits"][0]["track_id"] == wanted
    p = run_reid("query", str(two_people["clip"]), "--gallery", str(two_people["gallery"]), "--track-id",
                 "9999", "-q", env_extra=offline_env)
    assert p.returncode == 2 and "track id 9999 not found" in p.stderr
    assert all(str(q["query"]["track_id"]) in p.stderr for q in queries)  # lists the tracks there are


def test_query_detector_override(two_people: dict, offline_env: dict, models_dir: Path) -> None:
    """The same weights at another path: accepted, same hits; a missing file: a one-line error."""
    p = run_reid("query", str(two_people["clip"]), "--gallery", str(two_people["gallery"]), "--json", "-q",
                 "--detector", f"yolox:{models_dir / 'yolox_nano.onnx'}", env_extra=offline_env, check=True)
    default = two_people["all"]["queries"]
    longest = max(default, key=lambda q: q["query"]["end_frame"] - q["query"]["start_frame"])
    assert json.loads(p.stdout)["hits"][0]["tracklet_id"] == longest["hits"][0]["tracklet_id"]
    p = run_reid("query", str(two_people["clip"]), "--gallery", str(two_people["gallery"]), "-q",
                 "--detector", f"yolox:{two_people['dir'] / 'missing.onnx'}", env_extra=offline_env)
    assert p.returncode == 2 and p.stderr.strip().splitlines()[-1].startswith("error:")


def test_gallery_remove(two_people: dict, offline_env: dict) -> None:
    g = two_people["gallery"]
    before = gallery_info(g)
    other = [v for v in before["videos"] if Path(v["path"]).name == "third.mp4"]
    assert len(other) == 1 and other[0]["tracklets"] >= 1
    p = run_reid("gallery", "remove", "third.mp4", "--gallery", str(g), env_extra=offline_env, check=True)
    assert f"{other[0]['tracklets']} tracklets" in p.stdout
    after = gallery_info(g)
    assert after["num_tracklets"] == before["num_tracklets"] - other[0]["tracklets"]
    assert [Path(v["path"]).name for v in after["videos"]] == ["two.mp4"]
    p = run_reid("query", str(two_people["other"]), "--gallery", str(g), "--json", "-q", env_extra=offline_env,
                 check=True)
    assert all(Path(h["video"]).name != "third.mp4" for h in json.loads(p.stdout)["hits"])
    p = run_reid("gallery", "remove", "third.mp4", "--gallery", str(g), env_extra=offline_env)
    assert p.returncode == 2 and "error:" in p.stderr
