"""Why a file could not be read with ``torch.load(weights_only=True)``, in words for the user.

torch's own message for a refused file ends with advice to re-run with ``weights_only=False``,
which would execute whatever code the file pickles. csip-reid never does that, so it never repeats
the advice: it says what the file is not instead.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

_ONNX_MAGIC = b"\x08"  # ONNX ModelProto starts with field 1 (ir_version, varint)


def unreadable_reason(path: str | Path, error: BaseException) -> str:
    """A short phrase (no torch advice) on why ``path`` is not a weights-only torch file."""
    p = Path(path)
    text = str(error)
    refused = "Weights only load failed" in text or "Unsupported global" in text
    try:
        head = p.read_bytes()[:16]
    except OSError as e:
        return f"it cannot be read ({e.strerror or e})"
    if not head:
        return "the file is empty"
    code = ("it holds pickled Python objects (code that would run on loading), not only tensors and plain "
            "values; csip-reid never loads such files")
    if zipfile.is_zipfile(p):
        with zipfile.ZipFile(p) as z:
            is_torch = any(n.endswith("data.pkl") for n in z.namelist())
        if not is_torch:
            return "it is a zip archive, not a PyTorch file"
        return code if refused else "it is a PyTorch file that cannot be read (truncated or damaged?)"
    if head[:1] == b"\x80":  # a pickle: torch's legacy format
        return code if refused else "it is a pickle that cannot be read safely"
    if p.suffix.lower() == ".onnx" or head[:1] == _ONNX_MAGIC:
        return "it looks like an ONNX model (use it with --embedder onnx:FILE)"
    return "it is not a PyTorch file"
