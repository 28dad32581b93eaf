"""Gallery test setup: the benchmark helpers in ``bench/`` (``synthetic``) are importable; an empty gallery."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from gallery_testlib import fake_embedder_info  # noqa: E402

from csip_reid.gallery import Gallery  # noqa: E402


@pytest.fixture
def empty_gallery(tmp_path: Path) -> Iterator[Gallery]:
    """A new gallery of the fake 64-d embedder, closed after the test."""
    with Gallery.create(tmp_path / "g", fake_embedder_info()) as g:
        yield g
