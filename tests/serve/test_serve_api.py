"""The review app's JSON API and media endpoints on a real gallery (FastAPI TestClient)."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from pathlib import Path

import cv2
import numpy as np

from csip_reid.gallery.schema import wall_time
from csip_reid.gallery.store import Gallery
from tests.helpers.serve import DOOR_START, LOBBY_START, PERSON2


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def test_gallery_videos_and_cameras(client, serve_gallery: Path, serve_material) -> None:
    with Gallery.open(serve_gallery) as g:
        info = g.info()
    body = client.get("/api/gallery").json()
    assert body["num_tracklets"] == info["num_tracklets"] > 0
    cams = {c["camera"]: c for c in body["cameras"]}
    assert set(cams) == {"lobby", "door"}
    assert cams["door"]["videos"] == cams["lobby"]["videos"] == 1
    assert body["num_failed"] == info["num_failed"] == 1
    videos = client.get("/api/videos").json()
    by_name = {v["name"]: v for v in videos}
    by_name["cam_lobby.mp4"] = by_name[serve_material["lobby"].name]
    assert by_name["cam_lobby.mp4"]["num_frames"] == 1394 and by_name["cam_door.mp4"]["num_frames"] == 230
    assert by_name["cam_lobby.mp4"]["duration_s"] == 139.4  # 10 fps
    assert by_name["cam_lobby.mp4"]["start_time"] == LOBBY_START
    assert by_name["cam_lobby.mp4"]["end_time"] == "2026-05-01T08:02:19.400+00:00"
    assert by_name["broken.mp4"]["status"] == "failed" and by_name["broken.mp4"]["error"]
    assert sum(v["tracklets"] for v in videos) == info["num_tracklets"]
    page = client.get("/").text
    assert "cam_door.mp4" in page and "failed" in page and "Search by photo or clip" in page


def test_tracklet_boxes_match_the_store(client, serve_gallery: Path) -> None:
    with Gallery.open(serve_gallery) as g:
        rec = next(iter(g.iter_tracklets()))
    t = client.get(f"/api/tracklets/{rec.id}").json()
    assert t["num_frames"] == len(t["boxes"]) == rec.num_frames
    assert [b[0] for b in t["boxes"]] == [int(f) for f in rec.frames]
    np.testing.assert_allclose(np.array([b[2:] for b in t["boxes"]]), rec.boxes, atol=0.06)
    assert t["fps"] == 10.0 and (t["width"], t["height"]) == (768, 432)
    assert client.get("/api/tracklets/999999").status_code == 404
    assert client.get("/api/tracklets/abc").status_code == 422


def test_video_byte_ranges(client) -> None:
    v = next(v for v in client.get("/api/videos").json() if v["status"] == "indexed")
    data = Path(v["path"]).read_bytes()
    full = client.get(f"/media/video/{v['id']}")
    assert full.status_code == 200 and full.content == data
    assert full.headers["accept-ranges"] == "bytes" and full.headers["content-type"] == "video/mp4"
    part = client.get(f"/media/video/{v['id']}", headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == data[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
    tail = client.get(f"/media/video/{v['id']}", headers={"Range": "bytes=-500"})
    assert tail.status_code == 206 and tail.content == data[-500:]
    assert client.get(f"/media/video/{v['id']}", headers={"Range": f"bytes={len(data) + 10}-"}).status_code == 416
    failed = next(v for v in client.get("/api/videos").json() if v["status"] == "failed")
    assert client.get(f"/media/video/{failed['id']}").status_code == 404


def test_thumbnail_and_crop_strip_decode(client) -> None:
    t = client.get("/api/tracklets/1").json()
    thumb = cv2.imdecode(np.frombuffer(client.get("/media/thumb/1").content, np.uint8), cv2.IMREAD_COLOR)
    assert thumb is not None and thumb.shape[0] > 16
    strip = cv2.imdecode(np.frombuffer(client.get("/media/crops/1").content, np.uint8), cv2.IMREAD_COLOR)
    assert strip is not None and strip.shape[0] == 128
    # up to 8 crops side by side: wider than one person crop is tall
    assert strip.shape[1] > 128 and len(t["sample_frames"]) > 1
    assert client.get("/media/thumb/424242").status_code == 404


def _person2_tracklets(client) -> dict[str, int]:
    """Tracklet id of the second person on each camera (the longest overlap with its frames)."""
    out = {}
    for v in client.get("/api/videos").json():
        if v["status"] != "indexed":
            continue
        offset = 0 if v["camera"] == "lobby" else 220
        best = max(client.get(f"/api/videos/{v['id']}").json()["tracklet_ids"], key=lambda i: _overlap(
            client.get(f"/api/tracklets/{i}").json()["start_frame"] + offset,
            client.get(f"/api/tracklets/{i}").json()["end_frame"] + offset, *PERSON2))
        out[v["camera"]] = best
    return out


def test_find_this_person_across_cameras(client) -> None:
    p2 = _person2_tracklets(client)
    r = client.post("/api/query", data={"tracklet_id": str(p2["door"]), "top_k": "3"})
    assert r.status_code == 200, r.text
    body = r.json()
    ids = [h["tracklet_id"] for h in body["hits"]]
    assert p2["door"] not in ids and len(ids) == 3
    assert ids[0] == p2["lobby"], body["hits"]
    assert [h["rank"] for h in body["hits"]] == [1, 2, 3]
    assert body["hits"][0]["score"] > body["hits"][1]["score"]
    h = body["hits"][0]
    assert h["video_url"] == f"/media/video/{h['video_id']}" and h["camera"] == "lobby"
    assert h["start_time"] == wall_time(LOBBY_START, h["start_s"]) and h["start_time"] > LOBBY_START
    assert body["people"] and sum(p["appearances"] for p in body["people"]) == 3
    assert body["query"]["source"] == "tracklet" and body["query"]["tracklet_id"] == p2["door"]


def test_query_by_uploaded_clip(client, serve_material) -> None:
    p2 = _person2_tracklets(client)
    with open(serve_material["query"], "rb") as f:
        r = client.post("/api/query", files={"file": ("clip.mp4", f, "video/mp4")},
                        data={"top_k": "4", "mode": "appearance"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert {body["hits"][0]["tracklet_id"], body["hits"][1]["tracklet_id"]} == set(p2.values())
    assert body["query"]["video"] == "uploaded clip" and body["query"]["thumbnail_data"].startswith("data:image/jpeg")
    assert "thumbnail" not in body["query"]  # no server path leaks to the client
    # a photo: one frame of the query clip (the largest person in it is searched)
    cap = cv2.VideoCapture(str(serve_material["query"]))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 80)
    ok, frame = cap.read()
    cap.release()
    assert ok
    photo = cv2.imencode(".jpg", frame)[1].tobytes()
    r = client.post("/api/query", files={"file": ("still.bin", photo, "application/octet-stream")},
                    data={"top_k": "4"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["query"]["kind"] == "image" and body["query"]["video"] == "uploaded photo"
    assert body["hits"][0]["tracklet_id"] in set(p2.values())
    assert body["people"] and all(set(p["hits"]) <= {h["tracklet_id"] for h in body["hits"]} for p in body["people"])
    since = client.post("/api/query", data={"tracklet_id": str(p2["door"]), "since": DOOR_START})
    assert {h["camera"] for h in since.json()["hits"]} <= {"door"}  # lobby recorded an hour before
    bad = client.post("/api/query", data={"tracklet_id": "1", "mode": "nonsense"})
    assert bad.status_code in (400, 422)
    both = client.post("/api/query", data={"tracklet_id": "1"}, files={"file": ("c.mp4", b"x", "video/mp4")})
    assert both.status_code == 422


def test_evidence_zip_hashes_verify(client, serve_material) -> None:
    p2 = _person2_tracklets(client)
    ids = [p2["lobby"], p2["door"]]
    r = client.get(f"/api/export?tracklets={ids[0]},{ids[1]}")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    z = zipfile.ZipFile(io.BytesIO(r.content))
    manifest = json.loads(z.read("manifest.json"))
    names = set(z.namelist()) - {"manifest.json"}
    assert set(manifest["files"]) == names and "report.html" in names
    for name, meta in manifest["files"].items():
        blob = z.read(name)
        assert hashlib.sha256(blob).hexdigest() == meta["sha256"] and len(blob) == meta["size"]
    assert [a["tracklet_id"] for a in manifest["appearances"]] == ids
    cams = {a["camera"] for a in manifest["appearances"]}
    assert cams == {"lobby", "door"}
    for src in manifest["sources"]:
        assert src["sha256"] == hashlib.sha256(Path(src["path"]).read_bytes()).hexdigest()
    a = manifest["appearances"][0]
    clip = z.read(a["clip"])
    tmp = Path(serve_material["query"]).with_name("exported.mp4")
    tmp.write_bytes(clip)
    cap = cv2.VideoCapture(str(tmp))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    assert n == a["clip_frames"][1] - a["clip_frames"][0]  # the span plus 1 s either side
    assert a["clip_frames"][0] <= a["start_frame"] and a["clip_frames"][1] > a["end_frame"]
    assert str(ids[0]) in z.read("report.html").decode()
    assert client.get("/api/export?tracklets=1,999999").status_code == 404
    assert client.get("/api/export?tracklets=").status_code == 400
    assert client.get("/api/export?tracklets=1;rm").status_code == 400


def test_pages_ship_every_asset(client) -> None:
    """No page loads anything from another host (air-gapped users): every src/href is local."""
    for url in ("/", "/search", "/tracklet/1", "/video/1", "/docs"):
        r = client.get(url)
        assert r.status_code == 200, url
        refs = re.findall(r'(?:src|href)="([^"]+)"', r.text)
        assert refs and all(ref.startswith(("/", "#")) for ref in refs), (url, refs)
        for ref in refs:
            if ref.startswith("/static/"):
                assert client.get(ref).status_code == 200, ref
    assert "/api/query" in client.get("/docs").text
    assert "/api/query" in client.get("/openapi.json").json()["paths"]
