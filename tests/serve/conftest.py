"""A small real gallery for the review app: two cameras from the Intel sample, one broken file.

``lobby`` is the Intel clip itself (H.264, six people one after another), ``door`` its frames
220-450 re-encoded as MPEG-4 part 2 (the second person again, in a codec browsers cannot play), so
"find this person" has a true match on the other camera and the player's frame fallback is used.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.helpers.cli import OFFLINE_ARGS, cut_clip, run_reid
from tests.helpers.serve import DOOR_START, INTEL, LOBBY_START

pytest.importorskip("fastapi", reason="the [serve] extra is not installed")
pytest.importorskip("httpx", reason="httpx (FastAPI's TestClient) is not installed")



@pytest.fixture(scope="session")
def serve_env(models_dir: Path, tmp_path_factory) -> dict:
    """Offline pipeline settings, also set in this process (queries run in-process)."""
    env = {"REID_WEIGHTS_DIR": str(models_dir), "REID_OFFLINE": "1", "YOLO_OFFLINE": "1"}
    os.environ.update(env)
    return env


@pytest.fixture(scope="session")
def serve_material(videos_dir: Path, tmp_path_factory) -> dict[str, Path]:
    src = videos_dir / INTEL
    if not src.is_file():
        pytest.skip(f"{INTEL} missing")
    d = tmp_path_factory.mktemp("serve_videos")
    out = {"lobby": src.resolve(),
           "door": cut_clip(src, d / "door" / "cam_door.mp4", 220, 450),
           "query": cut_clip(src, d / "query_person2.mp4", 250, 420)}
    broken = d / "door" / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    out["broken"] = broken
    return out


@pytest.fixture(scope="session")
def serve_gallery(serve_material: dict[str, Path], serve_env: dict, tmp_path_factory) -> Path:
    """The gallery, indexed once per session with the real offline weights."""
    gallery = tmp_path_factory.mktemp("serve") / "gallery"
    run_reid("index", str(serve_material["lobby"]), "--gallery", str(gallery), "--camera", "lobby",
             *OFFLINE_ARGS, env_extra=serve_env, check=True)
    p = run_reid("index", str(serve_material["door"]), str(serve_material["broken"]), "--gallery", str(gallery),
                 "--camera", "door", *OFFLINE_ARGS, env_extra=serve_env)
    assert p.returncode == 1, p.stderr  # the broken file fails, the rest is indexed
    from csip_reid.gallery.store import Gallery

    with Gallery.open(gallery) as g:  # wall-clock starts: the door camera's recording an hour later
        g.set_video_time(str(serve_material["lobby"]), LOBBY_START)
        g.set_video_time(str(serve_material["door"]), DOOR_START)
    return gallery


@pytest.fixture()
def gallery_copy(serve_gallery: Path, tmp_path: Path) -> Path:
    """A private copy of the gallery for tests that change it."""
    dst = tmp_path / "gallery"
    shutil.copytree(serve_gallery, dst, symlinks=True, ignore=shutil.ignore_patterns("write.lock"))
    return dst


@pytest.fixture(scope="session")
def client(serve_gallery: Path, tmp_path_factory):
    from fastapi.testclient import TestClient

    from csip_reid.serve import create_app

    app = create_app(serve_gallery, temp_root=tmp_path_factory.mktemp("serve_tmp"))
    with TestClient(app) as c:
        yield c
