"""Safety of the review app: paths, symlinks, tokens, hosts, uploads, and reading during a write."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
from fastapi.testclient import TestClient

from csip_reid.serve import create_app
from tests.helpers.cli import OFFLINE_ARGS

SECRET = b"top secret, never served"

TRAVERSALS = [
    "/media/video/..%2F..%2F..%2Fetc%2Fpasswd", "/media/video/%2Fetc%2Fpasswd", "/media/video/../../etc/passwd",
    "/media/video/1%2F..%2F..%2Fgallery.db", "/media/thumb/..%2Fgallery.db", "/media/thumb/%2e%2e%2fgallery.db",
    "/media/thumb/1/../../gallery.db", "/media/crops/-1", "/media/video/%00",
    "/static/..%2F..%2Fapp.py", "/static/../app.py", "/static/%2e%2e/%2e%2e/app.py", "/static//etc/passwd",
    "/media/video//etc/passwd", "/api/tracklets/..%2F..%2Fgallery.db", "/api/export?tracklets=../../etc/passwd",
]


def test_no_client_path_reaches_the_disk(client) -> None:
    for url in TRAVERSALS:
        r = client.get(url)
        assert r.status_code in (400, 404, 405, 422), (url, r.status_code)
        assert b"SQLite format 3" not in r.content and b"root:" not in r.content and b"create_app" not in r.content


def test_symlinked_thumbnail_is_refused(gallery_copy: Path, tmp_path: Path) -> None:
    import sqlite3

    secret = tmp_path / "secret.jpg"
    secret.write_bytes(SECRET)
    db = sqlite3.connect(gallery_copy / "gallery.db")
    tid, rel = db.execute("SELECT id, thumb_path FROM tracklets WHERE thumb_path IS NOT NULL LIMIT 1").fetchone()
    db.close()
    thumb = gallery_copy / rel
    c = TestClient(create_app(gallery_copy))
    assert c.get(f"/media/thumb/{tid}").status_code == 200
    thumb.unlink()
    thumb.symlink_to(secret)  # a link planted in thumbs/ pointing outside the gallery
    r = c.get(f"/media/thumb/{tid}")
    assert r.status_code == 404 and SECRET not in r.content


def test_token_required_on_every_route(serve_gallery: Path) -> None:
    c = TestClient(create_app(serve_gallery, token="s3cret-token"))
    for url in ("/", "/search", "/api/gallery", "/api/videos", "/api/tracklets/1", "/media/video/1",
                "/media/thumb/1", "/static/app.css", "/docs", "/openapi.json", "/api/export?tracklets=1"):
        assert c.get(url).status_code == 401, url
        assert c.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401, url
    assert c.post("/api/query", data={"tracklet_id": "1"}).status_code == 401
    assert c.post("/api/feedback", json={"tracklet_id": 1, "name": "x"}).status_code == 401
    assert c.get("/api/videos", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
    # the printed link: ?token= sets an HttpOnly cookie and redirects to the URL without it
    r = c.get("/search?tracklet=1&token=s3cret-token", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/search?tracklet=1"
    assert "HttpOnly" in r.headers["set-cookie"] and "token" not in r.headers["location"]
    assert c.get("/api/videos").status_code == 200  # the cookie now travels with every request
    c.cookies.clear()
    assert c.get("/api/videos").status_code == 401


def test_loopback_without_token_checks_the_host_header(serve_gallery: Path) -> None:
    c = TestClient(create_app(serve_gallery, allowed_hosts=("localhost", "127.0.0.1")), base_url="http://127.0.0.1:8765")
    assert c.get("/api/videos").status_code == 200
    assert c.get("/api/videos", headers={"Host": "evil.example:8765"}).status_code == 400  # DNS rebinding


def test_cli_on_another_host_generates_a_token(serve_gallery: Path) -> None:
    import httpx

    # A real process: the server's own socket, its lines on stderr; --port 0 takes a free port and says which.
    proc = subprocess.Popen([sys.executable, "-m", "csip_reid.cli", "serve", "--gallery", str(serve_gallery),
                             "--host", "0.0.0.0", "--port", "0"], stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            lines.append(line)
            if line.startswith("open:"):
                break
        token = lines[-1].strip().split("?token=")[1]
        assert len(token) >= 32
        port = int(re.search(r"on http://0\.0\.0\.0:(\d+)/ ", "".join(lines))[1])
        assert port > 0 and f"http://THIS-MACHINE:{port}/?token=" in lines[-1]
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                r = httpx.get(f"{url}/api/videos", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert r.status_code == 401
        assert httpx.get(f"{url}/api/videos", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _png() -> bytes:
    img = np.full((64, 48, 3), 200, np.uint8)
    return cv2.imencode(".png", img)[1].tobytes()


def test_uploads_limited_typed_by_decoding_and_cleaned(serve_gallery: Path, serve_material, tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    c = TestClient(create_app(serve_gallery, max_upload_mb=0.2, temp_root=temp))
    big = os.urandom(300_000)
    r = c.post("/api/query", files={"file": ("clip.mp4", big, "video/mp4")})
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    r = c.post("/api/query", files={"file": ("clip.mp4", b"#!/bin/sh\necho not a video\n" * 40, "video/mp4")})
    assert r.status_code == 415 and "neither an image nor a video" in r.json()["detail"]
    r = c.post("/api/query", files={"file": ("../../evil.mp4", b"", "video/mp4")})
    assert r.status_code == 415
    assert not (tmp_path.parent / "evil.mp4").exists()
    assert list(temp.iterdir()) == []  # every upload folder is gone, refused or not
    c2 = TestClient(create_app(serve_gallery, temp_root=temp))
    with open(serve_material["query"], "rb") as f:  # a clip named like a photo is still a clip
        r = c2.post("/api/query", files={"file": ("photo.jpg", f, "image/jpeg")}, data={"top_k": "2"})
    assert r.status_code == 200, r.text
    assert list(temp.iterdir()) == []


def test_reads_while_reid_index_writes(gallery_copy: Path, videos_dir: Path, serve_env: dict) -> None:
    """Readers poll while `reid index` adds two videos: no error, and a video appears whole or not at all."""
    c = TestClient(create_app(gallery_copy))
    before = {v["id"]: v["tracklets"] for v in c.get("/api/videos").json()}
    videos = [videos_dir / "tfjs_pose_1.mp4", videos_dir / "mmpose_demo.mp4"]
    env = {**os.environ, **serve_env}
    proc = subprocess.Popen([sys.executable, "-m", "csip_reid.cli", "index", *map(str, videos), "--gallery",
                             str(gallery_copy), "--camera", "new", *OFFLINE_ARGS], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen: dict[int, set[int]] = {}
    errors: list[str] = []
    polls = 0

    def poll() -> None:
        nonlocal polls
        while proc.poll() is None:
            for url in ("/api/videos", "/api/gallery", "/"):
                r = c.get(url)
                if r.status_code != 200:
                    errors.append(f"{url} {r.status_code} {r.text[:200]}")
            for v in c.get("/api/videos").json():
                seen.setdefault(v["id"], set()).add(v["tracklets"])
                if v["status"] == "indexed" and v["tracklets"]:
                    tid = c.get(f"/api/videos/{v['id']}").json()["tracklet_ids"][0]
                    if c.get(f"/api/tracklets/{tid}").status_code != 200:
                        errors.append(f"tracklet {tid} unreadable")
            polls += 1

    t = threading.Thread(target=poll)
    t.start()
    t.join(timeout=300)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert not errors, errors[:5]
    assert polls >= 3
    after = {v["id"]: v["tracklets"] for v in c.get("/api/videos").json()}
    assert len(after) > len(before) and set(before) <= set(after)
    for vid, counts in seen.items():
        assert counts == {after[vid]}, (vid, counts, after[vid])  # never a partly written video
