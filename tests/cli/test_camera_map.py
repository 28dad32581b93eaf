"""``reid index --camera-map``: gallery cameras → a CSIP model's training cameras (SIE embedding).

A random-init csip_tiny stage-2 checkpoint embeds a real Intel clip (YOLOX-Nano detections). With
the map the SIE term of the mapped training camera is used; without it, the mean camera embedding.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from csip_reid.core.errors import ConfigError
from csip_reid.gallery.store import Gallery
from csip_reid.models import create_model
from csip_reid.models.checkpoint import save_checkpoint
from csip_reid.pipeline.camera_map import load_camera_map
from csip_reid.pipeline.indexer import Indexer
from csip_reid.pipeline.query import run_query
from csip_reid.pipeline.settings import PipelineSettings
from tests.helpers.cli import cut_clip, run_reid


@pytest.fixture(scope="module")
def setup(videos_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    video = videos_dir / "intel_one-by-one-person-detection.mp4"
    if not video.is_file():
        pytest.skip("intel_one-by-one-person-detection.mp4 missing")
    d = tmp_path_factory.mktemp("cammap")
    torch.manual_seed(0)
    model = create_model("csip_tiny", num_classes=16, num_cameras=6)
    with torch.no_grad():  # a clearly camera-dependent SIE table
        model.visual.sie.normal_(0.0, 1.0)
    ckpt = save_checkpoint(d / "best.pt", model, stage=2, epoch=1, stage_complete=True, skeleton_format=None)
    clip = cut_clip(video, d / "lobby.mp4", 80, 150)  # the first person walking in
    (d / "map.yaml").write_text("lobby: 2\ncar_park: 5\n")
    return {"dir": d, "ckpt": ckpt, "clip": clip, "map": d / "map.yaml"}


def _index(setup: dict, gallery: Path, offline_env: dict, *extra: str):  # type: ignore[no-untyped-def]
    return run_reid("index", str(setup["clip"]), "--gallery", str(gallery), "--detector", "yolox:yolox_nano",
                    "--embedder", f"csip:{setup['ckpt']}", "--json", "-q", *extra, env_extra=offline_env)


@pytest.fixture(scope="module")
def in_process_env(offline_env: dict) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for k, v in offline_env.items():
            mp.setenv(k, v)
        yield


def _settings(setup: dict, **kw: object) -> PipelineSettings:
    return PipelineSettings(detector="yolox:yolox_nano", embedder=f"csip:{setup['ckpt']}", **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def galleries(setup: dict, offline_env: dict, in_process_env: None) -> dict[str, Path]:
    mapped = setup["dir"] / "mapped"  # through the CLI
    p = _index(setup, mapped, offline_env, "--camera-map", str(setup["map"]))
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["tracklets"] >= 1
    plain = setup["dir"] / "plain"  # the same, in process, without a map
    idx = Indexer(plain, _settings(setup), progress=False, log=lambda m: None)
    try:
        assert idx.index([setup["clip"]]).to_dict()["tracklets"] >= 1
    finally:
        idx.gallery.close()
    return {"mapped": mapped, "plain": plain}


def test_camera_map_changes_the_vectors_and_is_recorded(galleries: dict[str, Path]) -> None:
    with Gallery.open(galleries["mapped"]) as g:
        ids_m, vec_m = g.vectors()
        stored = g.embedder["pipeline"]["camera_map"]
        cams = {r.camera for r in g.iter_tracklets()}
    with Gallery.open(galleries["plain"]) as g:
        ids_p, vec_p = g.vectors()
        assert g.embedder["pipeline"]["camera_map"] == {}
    assert stored == {"lobby": 2, "car_park": 5} and cams == {"lobby"}
    assert len(ids_m) == len(ids_p)
    # Same detections and crops: only the SIE term differs (camera 2 vs the mean camera).
    cos = np.sum(vec_m * vec_p, axis=1)
    assert np.all(cos < 0.999), cos
    assert np.allclose(np.linalg.norm(vec_m, axis=1), 1.0, atol=1e-5)


def test_query_uses_the_stored_map(galleries: dict[str, Path], setup: dict, offline_env: dict,
                                   in_process_env: None) -> None:
    def top(camera: str | None) -> float:
        res = run_query(galleries["mapped"], setup["clip"], top_k=1, progress=False, camera=camera)
        return res[0].hits[0].score

    # Through the CLI once: --camera reaches the query's pipeline.
    p = run_reid("query", str(setup["clip"]), "--gallery", str(galleries["mapped"]), "--json", "-q",
                 "--camera", "lobby", env_extra=offline_env, check=True)
    assert json.loads(p.stdout)["hits"][0]["score"] == pytest.approx(1.0, abs=1e-4)

    # The clip's stem is "lobby": mapped to camera 2 like the gallery, so it finds itself exactly.
    assert top(None) == pytest.approx(1.0, abs=1e-4)
    # An unmapped camera name gets the mean camera: the same tracklet no longer matches exactly.
    assert top("somewhere_else") < 0.999


def test_reindex_with_another_map_is_refused(galleries: dict[str, Path], setup: dict, in_process_env: None) -> None:
    other = setup["dir"] / "other.csv"
    other.write_text("camera,index\nlobby,0\n")
    before = Gallery.open(galleries["mapped"])
    n = len(before)
    before.close()
    with pytest.raises(ConfigError, match="was indexed with camera map"):
        Indexer(galleries["mapped"], _settings(setup, camera_map=load_camera_map(other)), progress=False)
    with pytest.raises(ConfigError, match="was indexed with no camera map"):
        Indexer(galleries["plain"], _settings(setup, camera_map={"lobby": 1}), progress=False)
    # Without --camera-map a rerun keeps the gallery's own map.
    idx = Indexer(galleries["mapped"], _settings(setup), progress=False)
    assert idx.settings.camera_map == {"lobby": 2, "car_park": 5}
    idx.gallery.close()
    with Gallery.open(galleries["mapped"]) as g:
        assert len(g) == n


def test_camera_map_files(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("camera,index\nlobby, 0\ncar park,3\n")
    assert load_camera_map(tmp_path / "a.csv") == {"lobby": 0, "car park": 3}
    (tmp_path / "b.yml").write_text("cameras:\n  lobby: 1\n")
    assert load_camera_map(tmp_path / "b.yml") == {"lobby": 1}
    (tmp_path / "c.yaml").write_text("lobby: -1\n")
    with pytest.raises(ConfigError, match="integers >= 0"):
        load_camera_map(tmp_path / "c.yaml")
    (tmp_path / "d.csv").write_text("lobby,1,2\n")
    with pytest.raises(ConfigError, match="camera,index"):
        load_camera_map(tmp_path / "d.csv")
    with pytest.raises(ConfigError, match="cannot read"):
        load_camera_map(tmp_path / "missing.yaml")
