"""Fixtures: tiny dataset trees in the real layouts, built in tmp_path (see tests/helpers/datasets.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.datasets import make_custom, make_ilids, make_lsvid, make_mars, make_prid


@pytest.fixture
def mars_root(tmp_path: Path) -> Path:
    return make_mars(tmp_path / "mars")


@pytest.fixture
def lsvid_root(tmp_path: Path) -> Path:
    return make_lsvid(tmp_path / "lsvid")


@pytest.fixture
def ilids_root(tmp_path: Path) -> Path:
    return make_ilids(tmp_path / "ilids")


@pytest.fixture
def prid_root(tmp_path: Path) -> Path:
    return make_prid(tmp_path / "prid")


@pytest.fixture
def coded_custom(tmp_path: Path) -> Path:
    return make_custom(tmp_path / "custom")
