"""Gallery test fixtures: an empty gallery."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from csip_reid.gallery import Gallery
from tests.helpers.gallery import fake_embedder_info


@pytest.fixture
def empty_gallery(tmp_path: Path) -> Iterator[Gallery]:
    """A new gallery of the fake 64-d embedder, closed after the test."""
    with Gallery.create(tmp_path / "g", fake_embedder_info()) as g:
        yield g
