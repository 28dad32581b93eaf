"""onnxruntime helpers shared by every ONNX back-end (detector, ReID model)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from csip_reid.core.errors import WeightsNotFoundError

#: ``metadata_props["csip_reid.format"]`` of a clip embedder written by ``reid export-onnx``.
CLIP_ONNX_FORMAT = "csip-reid/onnx-clip-v1"


def onnx_session(path: str | Path, device: str = "cpu", threads: int | None = None) -> Any:
    """An onnxruntime session that shares the CPU well with the rest of the pipeline.

    Intra-op threads default to torch's thread count (the one process-wide setting, which users
    change with ``OMP_NUM_THREADS`` or ``torch.set_num_threads``), and idle pool threads sleep
    instead of spinning. The detector, the ReID model, the pose model and the decoding thread take
    turns on the same cores; a spinning pool burns the core the next stage needs. On a busy
    2-core machine this made YOLOX-Nano 2-3x faster (see ``bench/README.md``).

    Args:
        path: ONNX file.
        device: ``cpu`` or ``cuda[:N]`` (CUDA when onnxruntime has the CUDA provider).
        threads: Intra-op threads (default: ``torch.get_num_threads()``).

    Raises:
        WeightsNotFoundError: The file is not a loadable ONNX model.
    """
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    if threads is None:
        import torch

        threads = torch.get_num_threads()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = max(1, int(threads))
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), opts, providers=providers)
    except Exception as e:  # onnxruntime raises its own exception types
        raise WeightsNotFoundError(f"cannot load ONNX model {path}: {e}") from e


def run_onnx(session: Any, input_name: str, batch: np.ndarray, fixed_batch: int | None,
             max_batch: int | None = None) -> np.ndarray:
    """First output of ``session`` for ``batch``, in chunks (see :func:`run_in_chunks`)."""
    return run_in_chunks(lambda x: session.run(None, {input_name: x})[0], batch, fixed_batch, max_batch)


def run_in_chunks(run: Callable[[np.ndarray], np.ndarray], batch: np.ndarray,
                  fixed_batch: int | None, max_batch: int | None = None) -> np.ndarray:
    """``run(batch)``; a model with a fixed batch size is fed in chunks of that size (the last one
    padded by repeating its last item, then trimmed), a dynamic one in chunks of at most
    ``max_batch`` (None: all at once). Shared by the onnxruntime and OpenVINO back-ends."""
    if not fixed_batch:
        if not max_batch or len(batch) <= max_batch:
            return run(batch)
        return np.concatenate([run(batch[s : s + max_batch]) for s in range(0, len(batch), max_batch)], 0)
    outs = []
    for s in range(0, len(batch), fixed_batch):
        part = batch[s : s + fixed_batch]
        n = len(part)
        if n < fixed_batch:
            part = np.concatenate([part, np.repeat(part[-1:], fixed_batch - n, 0)])
        outs.append(run(part)[:n])
    return np.concatenate(outs, 0)
