"""Uploads in `reid serve`: the gallery's models are built once per app, each upload is decoded once
for the search, and its picture comes back inline without a file written for it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from csip_reid.core.video import VideoReader


def test_models_built_once_per_gallery(serve_gallery: Path, serve_material: dict[str, Path],
                                       monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from csip_reid.pipeline import indexer
    from csip_reid.serve import create_app, search

    built, passes, galleries = [], [], []
    init, frames, run_query = indexer.Pipeline.__init__, VideoReader._frames, search.run_query

    def counted_init(self, *a, **kw) -> None:
        built.append(1)
        init(self, *a, **kw)

    def counted_frames(self):
        passes.append(self.path.name)
        return frames(self)

    def spied_query(gallery, *a, **kw):
        galleries.append(gallery)
        return run_query(gallery, *a, **kw)

    monkeypatch.setattr(indexer.Pipeline, "__init__", counted_init)
    monkeypatch.setattr(VideoReader, "_frames", counted_frames)
    monkeypatch.setattr(search, "run_query", spied_query)
    monkeypatch.setenv("REID_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "uploads").mkdir()
    app = create_app(serve_gallery, temp_root=tmp_path / "uploads")
    assert built == []  # browsing needs no model: they are built on the first upload
    with TestClient(app) as client:
        answers = []
        for _ in range(2):
            with open(serve_material["query"], "rb") as f:
                r = client.post("/api/query", files={"file": ("clip.mp4", f, "video/mp4")}, data={"top_k": "3"})
            assert r.status_code == 200, r.text
            answers.append(r.json())
    assert built == [1]
    assert passes == ["upload.mp4", "upload.mp4"]  # one decoding of each upload (its type check only opens it)
    assert all(type(g).__name__ == "Gallery" and g.root == app.state.gallery.root for g in galleries)
    assert [h["tracklet_id"] for h in answers[0]["hits"]] == [h["tracklet_id"] for h in answers[1]["hits"]]
    thumb = answers[0]["query"]["thumbnail_data"]
    assert thumb.startswith("data:image/jpeg;base64,") and len(thumb) > 200
    assert not (tmp_path / "cache").exists() or not any(os.scandir(tmp_path / "cache"))  # nothing written
    assert os.listdir(tmp_path / "uploads") == []  # the upload is gone too
