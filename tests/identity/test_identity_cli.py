"""The investigator's walk-through on real video, in-process: two camera folders with times in
their file names, identities, a photo query, a confirmed match, where and when the person was seen."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from csip_reid.cli import main
from csip_reid.core.video import cut_clip

OFFLINE = ["--detector", "yolox:yolox_nano", "--embedder", "onnx:osnet_x0_25_msmt17", "-q"]
#: (person, camera, frames of the Intel clip, file stem = wall-clock start): person A crosses cam1
#: then cam2; person B walks through cam1 while A is in cam2 (so the two are known to differ).
FILES = [("A", "cam1", (230, 335), "20240501_080023"), ("A", "cam2", (335, 440), "20240501_080033"),
         ("B", "cam1", (750, 860), "20240501_080035")]


@pytest.fixture(scope="module")
def env(models_dir: Path, tmp_path_factory) -> dict:
    return {"REID_WEIGHTS_DIR": str(models_dir), "REID_OFFLINE": "1", "YOLO_OFFLINE": "1",
            "REID_CACHE_DIR": str(tmp_path_factory.mktemp("cache"))}


def reid(env: dict, *args: str, code: int = 0) -> str:
    r = CliRunner().invoke(main, list(args), env=env)
    assert r.exit_code == code, f"reid {' '.join(args)} -> {r.exit_code}:\n{r.output}\n{r.exception!r}"
    return r.output


@pytest.fixture(scope="module")
def two_cameras(videos_dir: Path, env: dict, tmp_path_factory) -> tuple[Path, Path]:
    src = videos_dir / "intel_one-by-one-person-detection.mp4"
    if not src.is_file():
        pytest.skip("intel_one-by-one-person-detection.mp4 missing")
    root = tmp_path_factory.mktemp("archive")
    for _, cam, (a, b), stem in FILES:
        (root / cam).mkdir(exist_ok=True)
        cut_clip(src, root / cam / f"{stem}.mp4", a, b)
    gallery = root / "gallery"
    out = json.loads(reid(env, "index", str(root / "cam1"), str(root / "cam2"), "--gallery", str(gallery),
                          "--camera-from", "parent", "--time-from-name", "%Y%m%d_%H%M%S", "--json", *OFFLINE))
    assert out["indexed"] == 3 and out["tracklets"] >= 3
    cap = cv2.VideoCapture(str(src))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 300)  # person A, in the part cam1 saw
    ok, frame = cap.read()
    assert ok
    cv2.imwrite(str(root / "photo.jpg"), frame)
    return gallery, root


def test_walkthrough(two_cameras: tuple[Path, Path], env: dict, tmp_path: Path) -> None:
    src, root = two_cameras
    g = tmp_path / "g"
    shutil.copytree(src, g)
    info = json.loads(reid(env, "gallery", "info", "--gallery", str(g), "--json"))
    assert sorted(v["camera"] for v in info["videos"]) == ["cam1", "cam1", "cam2"]

    rep = json.loads(reid(env, "identities", "build", "--gallery", str(g), "--json"))
    assert rep["tracklets"] >= 3 and rep["threshold_source"] in ("known-different pairs", "random pairs")
    assert rep["threshold_reason"] and -1 <= rep["threshold"] <= 1
    text = reid(env, "identities", "build", "--gallery", str(g), "--threshold", "0.75", "--rebuild")
    assert "threshold: 0.750 (given)" in text

    # query by a photo: the largest person in the frame is A; A's tracklets in both cameras come first
    q = json.loads(reid(env, "query", str(root / "photo.jpg"), "--gallery", str(g), "--group", "person",
                        "--json", "-q"))
    assert q["query"]["kind"] == "image" and len(q["query"]["box"]) == 4 and q["query"]["people_detected"] >= 1
    top2 = q["hits"][:2]
    assert {Path(h["video"]).parent.name for h in top2} == {"cam1", "cam2"}, q["hits"]
    assert all(h["start_time"].startswith("2024-05-01T08:00:") for h in top2)
    assert all("identity" in h for h in q["hits"]) and q["people"][0]["score"] == q["hits"][0]["score"]
    a1, a2 = top2[0]["tracklet_id"], top2[1]["tracklet_id"]

    # the investigator confirms the match and names the person
    reid(env, "identities", "label", str(a1), "--same-as", str(a2), "--gallery", str(g))
    reid(env, "identities", "label", str(a1), "--name", "person A", "--gallery", str(g))
    reid(env, "identities", "build", "--gallery", str(g))  # later builds keep it
    people = json.loads(reid(env, "identities", "list", "--gallery", str(g), "--json"))["identities"]
    a = next(p for p in people if p["name"] == "person A")
    assert {a1, a2} <= {t["tracklet_id"] for t in a["tracklets"]} and a["cameras"] == ["cam1", "cam2"]
    assert a["first_seen"].startswith("2024-05-01T08:00:2") and a["last_seen"].startswith("2024-05-01T08:00:4")
    assert a["confirmed"] is True
    q = json.loads(reid(env, "query", str(root / "photo.jpg"), "--gallery", str(g), "--group", "person",
                        "--json", "-q"))
    assert q["people"][0]["identity"] == a["identity"] and q["people"][0]["name"] == "person A"
    assert q["people"][0]["cameras"] == ["cam1", "cam2"] and q["people"][0]["appearances"] == a["size"]
    text = reid(env, "identities", "list", "--gallery", str(g))
    assert "'person A' (confirmed)" in text and "cam2" in text

    # wall-clock filters: after A left, only B is left; nothing before the archive starts
    late = json.loads(reid(env, "query", str(root / "photo.jpg"), "--gallery", str(g), "--since",
                           "2024-05-01T08:00:34", "--json", "-q"))
    assert late["hits"] and all(h["end_time"] >= "2024-05-01T08:00:34" for h in late["hits"])
    assert a1 not in [h["tracklet_id"] for h in late["hits"]]
    early = json.loads(reid(env, "query", str(root / "photo.jpg"), "--gallery", str(g), "--until",
                            "2024-05-01T07:00:00", "--json", "-q"))
    assert early["hits"] == []

    # a folder of crops of A, and an explicit box, find A as well
    x1, y1, x2, y2 = q["query"]["box"]
    frame = cv2.imread(str(root / "photo.jpg"))
    crops = tmp_path / "crops"
    crops.mkdir()
    cv2.imwrite(str(crops / "a.jpg"), frame[y1:y2, x1:x2])
    cv2.imwrite(str(crops / "b.png"), cv2.flip(frame[y1:y2, x1:x2], 1))
    f = json.loads(reid(env, "query", str(crops), "--gallery", str(g), "--json", "-q"))
    assert f["query"]["kind"] == "folder" and f["query"]["num_samples"] == 2
    assert f["hits"][0]["tracklet_id"] in {a1, a2} and f["hits"][0]["identity"] == a["identity"]
    b = json.loads(reid(env, "query", str(root / "photo.jpg"), "--box", f"{x1},{y1},{x2},{y2}", "--gallery",
                        str(g), "--json", "-q", "--expand"))
    assert b["hits"][0]["tracklet_id"] in {a1, a2} and b["query"]["expanded_with"]["identity"] == a["identity"]


def test_bad_input_is_one_line_and_changes_nothing(two_cameras: tuple[Path, Path], env: dict, tmp_path: Path) -> None:
    src, root = two_cameras
    g = tmp_path / "g"
    shutil.copytree(src, g)
    reid(env, "identities", "build", "--gallery", str(g), "--threshold", "1")  # every tracklet alone
    ids = [int(p["tracklets"][0]["tracklet_id"]) for p in
           json.loads(reid(env, "identities", "list", "--gallery", str(g), "--json"))["identities"]]
    reid(env, "identities", "label", str(ids[0]), "--not", str(ids[1]), "--gallery", str(g))
    before = (g / "gallery.db").read_bytes()
    black = tmp_path / "black.jpg"
    cv2.imwrite(str(black), np.zeros((240, 320, 3), np.uint8))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    cases = [
        (["query", str(black)], "no person found in"),
        (["query", str(tmp_path / "empty")], "no images in folder"),
        (["query", str(root / "photo.jpg"), "--box", "10,10,5,5"], "--box"),
        (["query", str(root / "photo.jpg"), "--since", "last tuesday"], "not an ISO 8601 time"),
        (["identities", "label", "99999", "--same-as", str(ids[0])], "no tracklet 99999"),
        (["identities", "label", str(ids[0]), "--same-as", str(ids[1])], "labelled different"),
        (["identities", "label", str(ids[0])], "exactly one of"),
        (["identities", "list", "--identity", "99999"], "no identity 99999"),
        (["gallery", "set-time", "nosuch.mp4", "2024-05-01T08:00:00"], "no video"),
        (["gallery", "set-time", "20240501_080023.mp4", "noon"], "not an ISO 8601 time"),
        (["identities", "build", "--cameras", str(tmp_path / "missing.yaml")], "does not exist"),
    ]
    for args, message in cases:
        out = reid(env, *args, "--gallery", str(g), code=2)
        lines = [x for x in out.splitlines() if x.strip()]
        assert lines[-1].startswith("error: ") and message in lines[-1], (args, out)
    assert (g / "gallery.db").read_bytes() == before
    newer = tmp_path / "newer"
    shutil.copytree(src, newer)
    import sqlite3

    db = sqlite3.connect(newer / "gallery.db")
    db.execute("PRAGMA user_version = 99")
    db.close()
    out = reid(env, "identities", "list", "--gallery", str(newer), code=2)
    assert "schema version 99" in out and "upgrade csip-reid" in out
