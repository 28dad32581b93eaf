"""The package's public API: lazy, complete, and light to import."""

from __future__ import annotations

import subprocess
import sys

import pytest

import csip_reid


def test_import_is_light():
    """`import csip_reid` must not pull torch or OpenCV in (CLI start-up, scripts, workers)."""
    code = "import sys, csip_reid; print(sorted(m for m in ('torch', 'cv2', 'ultralytics', 'faiss') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", sorted(csip_reid._LAZY))
def test_every_public_name_resolves(name):
    obj = getattr(csip_reid, name)
    assert callable(obj) and name in dir(csip_reid)


def test_unknown_name_is_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        csip_reid.nope  # noqa: B018
