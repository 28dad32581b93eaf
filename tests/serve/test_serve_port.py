"""``reid serve`` binds its own socket: a busy port is a one-line error, ``--port 0`` a free port it names."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from csip_reid.gallery import Gallery
from tests.helpers.cli import run_reid
from tests.helpers.gallery import add_video, fake_embedder_info, unit_vectors


@pytest.fixture()
def small_gallery(tmp_path: Path) -> Path:
    g = Gallery.create(tmp_path / "g", fake_embedder_info())
    add_video(g, "cam1.mp4", unit_vectors(3, seed=0))
    g.close()
    return tmp_path / "g"


def test_port_in_use_is_a_one_line_error(small_gallery: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        p = run_reid("serve", "--gallery", str(small_gallery), "--port", str(port))
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().splitlines() == [f"error: cannot listen on 127.0.0.1:{port}: Address already in use"]


def test_port_zero_is_reported_as_the_port_bound(small_gallery: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    bound: list[int] = []

    def fake_run(self: uvicorn.Server, sockets: list[socket.socket]) -> None:  # stands in for serving forever
        bound.extend(s.getsockname()[1] for s in sockets)
        for s in sockets:
            s.close()

    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    p = run_reid("serve", "--gallery", str(small_gallery), "--port", "0")
    assert p.returncode == 0, p.stderr
    assert len(bound) == 1 and bound[0] > 0
    assert f"on http://127.0.0.1:{bound[0]}/ (Ctrl-C stops)" in p.stderr
    assert f"open: http://127.0.0.1:{bound[0]}/" in p.stderr
