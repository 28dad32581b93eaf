"""The review app in a real headless Chromium (Playwright driving Debian's ``chromium``).

Set ``REID_SCREENSHOT_DIR=docs/img`` to refresh the README's screenshots; by default they go to a
temp folder. Skips with the reason where playwright or a chromium binary is missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import threading
import time
import zipfile
from pathlib import Path

import pytest

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install '.[browser-tests]')")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (apt-get install chromium; `make test` does)")


@pytest.fixture(scope="module")
def server(serve_gallery: Path, tmp_path_factory):
    """A real uvicorn server on a copy of the gallery, its tracks grouped into people."""
    import uvicorn

    from csip_reid.gallery.store import Gallery
    from csip_reid.identity import build_identities
    from csip_reid.serve import create_app

    root = tmp_path_factory.mktemp("browser") / "gallery"
    shutil.copytree(serve_gallery, root, ignore=shutil.ignore_patterns("write.lock"))
    with Gallery.open(root) as g:
        build_identities(g)
    sock = socket.create_server(("127.0.0.1", 0))  # port 0: the system picks a free one, no race
    port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(root), log_level="warning"))
    th = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    th.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", root
    srv.should_exit = True
    th.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        yield b
        b.close()


@pytest.fixture()
def page(browser, tmp_path):
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    ctx.close()
    assert not errors, errors


def shot(page, name: str, tmp_path: Path) -> Path:
    out = Path(os.environ.get("REID_SCREENSHOT_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(path))
    return path


def test_overview_lists_cameras_people_and_failures(server, page, tmp_path) -> None:
    url, _ = server
    page.goto(url + "/")
    assert page.locator("#cameras tbody tr").count() == 2
    assert "broken.mp4" in page.locator("#videos").inner_text() and "failed" in page.locator("#videos").inner_text()
    assert page.locator("#people li").count() >= 2
    assert "2026-05-01T08:00:00" in page.locator("#videos").inner_text()  # wall-clock start of the lobby video
    shot(page, "overview", tmp_path)


def test_search_by_clip_play_label_and_export(server, page, serve_material, tmp_path) -> None:
    url, root = server
    page.goto(url + "/search")
    page.set_input_files("#file", str(serve_material["query"]))
    page.fill("input[name=top_k]", "5")
    page.click("#search-button")
    page.wait_for_selector(".person-group .hit", timeout=120_000)
    groups = page.locator(".person-group")
    total = json.loads(page.request.get(url + "/api/gallery").text())["num_tracklets"]
    assert groups.count() >= 2 and page.locator(".hit").count() == min(5, total)
    first = page.locator(".hit").first
    assert "camera" in first.inner_text()
    # play the two best hits (the same person on both cameras): the player seeks to each span and
    # draws the stored box; lobby (H.264) plays in <video>, door (MPEG-4 part 2) in frame mode
    player = page.locator("#player")
    modes = {}
    for i in (1, 0):
        hit = page.locator(".hit").nth(i)
        camera = "lobby" if "camera lobby" in hit.inner_text() else "door"
        drawn = int(player.get_attribute("data-drawn") or 0)
        hit.locator("button.play").click()
        page.wait_for_function(f"() => document.querySelector('#player').dataset.tracklet === '{hit.get_attribute('data-tracklet')}'"
                               f" && Number(document.querySelector('#player').dataset.drawn) > {drawn}", timeout=30_000)
        span_start = float(player.get_attribute("data-span-start"))
        span_end = float(player.get_attribute("data-span-end"))
        # a codec failure may surface after the first frame (then frame mode takes over): let it settle
        page.wait_for_function("() => { const p = document.querySelector('#player').dataset;"
                               " return Number(p.time) >= Number(p.spanStart) - 0.2; }", timeout=15_000)
        t = float(player.get_attribute("data-time"))
        assert span_start - 0.2 <= t <= span_end + 1.0, (camera, t, span_start, span_end)
        lit = page.evaluate("""() => { const c = document.querySelector('#overlay');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }""")
        assert lit > 100, camera  # the box outline is on the canvas
        modes[camera] = player.get_attribute("data-mode")
    assert modes == {"lobby": "video", "door": "frames"}, modes
    native = page.evaluate("() => document.querySelector('#video').currentTime")
    assert native == 0 or player.get_attribute("data-mode") == "frames"
    shot(page, "search", tmp_path)
    # "same person": the second hit is the same as #1; the label is stored
    second = page.locator(".hit").nth(1)
    a, b = int(second.get_attribute("data-tracklet")), int(first.get_attribute("data-tracklet"))
    second.locator("button.same").click()
    page.wait_for_function("() => document.querySelector('#status').dataset.label", timeout=30_000)
    labels = json.loads(page.evaluate("async () => JSON.stringify(await (await fetch('/api/labels')).json())"))
    assert any(x["kind"] == "same" and {x["a"], x["b"]} == {a, b} for x in labels), labels
    group_of = page.evaluate("""(ids) => ids.map((id) => document.querySelector(`.hit[data-tracklet="${id}"]`)
        .closest('.person-group').dataset.identity)""", [a, b])
    assert group_of[0] == group_of[1] != ""  # the results refreshed: both in one person now
    # export two appearances; every hash in the manifest verifies
    page.locator(".hit input.pick").nth(0).check()
    page.locator(".hit input.pick").nth(1).check()
    with page.expect_download(timeout=120_000) as dl:
        page.click("#export-button")
    path = tmp_path / "evidence.zip"
    dl.value.save_as(path)
    z = zipfile.ZipFile(path)
    manifest = json.loads(z.read("manifest.json"))
    assert len(manifest["appearances"]) == 2
    for name, meta in manifest["files"].items():
        assert hashlib.sha256(z.read(name)).hexdigest() == meta["sha256"], name
    for src in manifest["sources"]:
        assert hashlib.sha256(Path(src["path"]).read_bytes()).hexdigest() == src["sha256"]


def test_search_by_photo(server, page, serve_material, tmp_path) -> None:
    import cv2

    url, _ = server
    cap = cv2.VideoCapture(str(serve_material["query"]))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 80)
    ok, frame = cap.read()
    cap.release()
    photo = tmp_path / "witness_photo.jpg"
    cv2.imwrite(str(photo), frame)
    page.goto(url + "/search")
    page.set_input_files("#file", str(photo))
    page.click("#search-button")
    page.wait_for_selector(".person-group .hit", timeout=120_000)
    assert "uploaded photo" in page.locator(".query-card").inner_text()
    assert page.locator(".person-group").count() >= 1


def test_person_page_timeline_plays(server, page, tmp_path) -> None:
    url, _ = server
    people = json.loads(page.request.get(url + "/api/identities").text())
    p = max(people, key=lambda p: (len(p["cameras"]), p["size"]))
    page.goto(f"{url}/person/{p['identity']}")
    lanes = page.locator("#timeline .lane")
    assert lanes.count() == len(p["cameras"])
    assert page.locator("#timeline .seg").count() == p["size"]
    page.locator("#timeline .seg").first.click()
    page.wait_for_function("() => document.querySelector('#player').dataset.drawn > 0", timeout=30_000)
    shot(page, "person", tmp_path)


def test_video_page_find_this_person(server, page, tmp_path) -> None:
    url, _ = server
    page.goto(url + "/video/1")
    n = page.locator("#timeline .seg").count()
    assert n == page.locator(".hit").count() > 0
    page.locator(".hit a", has_text="Find this person").first.click()
    page.wait_for_selector(".person-group .hit", timeout=60_000)
    assert page.locator(".query-card").inner_text().startswith("Query: track")
