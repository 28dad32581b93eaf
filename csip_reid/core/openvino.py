"""OpenVINO helpers shared by every OpenVINO back-end: load IR (``.xml`` + ``.bin``) or ONNX,
batch dynamically where the model allows, and read the preprocessing an IR was converted with."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from csip_reid.core.errors import ConfigError, WeightsNotFoundError
from csip_reid.core.signalstack import same_signal_stack
from csip_reid.core.weights import file_sha256

logger = logging.getLogger(__name__)


def ir_weights_file(path: str | Path) -> Path | None:
    """The ``.bin`` beside an IR ``.xml`` (None for other files)."""
    p = Path(path)
    return p.with_suffix(".bin") if p.suffix.lower() == ".xml" else None


def model_sha256(path: str | Path) -> str:
    """SHA-256 identity of a model: the file's, or for IR the hash of the ``.xml`` and ``.bin`` hashes."""
    bin_file = ir_weights_file(path)
    if bin_file is None:
        return file_sha256(path)
    return hashlib.sha256((file_sha256(path) + file_sha256(bin_file)).encode()).hexdigest()


def ov_device(device: str) -> str:
    """OpenVINO device name for a pipeline device: ``cpu``/``cuda[:N]`` → ``CPU`` (OpenVINO has no
    CUDA plug-in), anything else (``gpu``, ``npu``, ``auto``) upper-cased."""
    d = device.split(":")[0].lower()
    return "CPU" if d in ("cpu", "cuda") else device.upper()


def openvino_model(path: str | Path, device: str = "cpu", threads: int | None = None,
                   dynamic_batch: bool = True, precision: str = "auto") -> tuple[Any, Any, int | None]:
    """Read and compile a model for inference on a CPU shared with the rest of the pipeline.

    The batch axis is made dynamic when the model allows it (else it keeps its fixed batch and the
    caller feeds chunks, see :func:`~csip_reid.core.onnx.run_in_chunks`). Threads default to
    torch's thread count, like the onnxruntime sessions, with the latency hint and no thread
    pinning (other stages share the cores). ``precision="auto"`` keeps OpenVINO's choice: bf16 on
    CPUs with AVX512-BF16/AMX, 2-3x faster than f32 there (bench/README.md, "Models"), vectors
    within ~2 % of f32's; ``"f32"`` forces full precision.

    Args:
        path: An IR ``.xml`` (its ``.bin`` beside it) or an ``.onnx`` file.
        device: Pipeline device (see :func:`ov_device`).
        threads: Inference threads (default: ``torch.get_num_threads()``).
        dynamic_batch: Try to make the first input's batch axis dynamic.
        precision: ``auto``, ``f32``, ``bf16`` or ``f16`` (OpenVINO's inference precision hint).

    Returns:
        ``(model, compiled_model, fixed_batch)``; ``fixed_batch`` is None when the batch is dynamic.

    Raises:
        ConfigError: The ``openvino`` package is not installed.
        WeightsNotFoundError: The file (or the ``.bin`` of an IR) is missing or not loadable.
    """
    try:
        import openvino as ov
    except ImportError as e:
        raise ConfigError(f"{path} needs the openvino package: pip install openvino ({e})") from None

    bin_file = ir_weights_file(path)
    if bin_file is not None and not bin_file.is_file():
        raise WeightsNotFoundError(f"OpenVINO IR {path} needs its weights file {bin_file} beside it")
    if threads is None:
        import torch

        threads = torch.get_num_threads()
    core = ov.Core()
    try:
        model = core.read_model(str(path))
    except Exception as e:  # openvino raises RuntimeError subclasses of its own
        raise WeightsNotFoundError(f"cannot load OpenVINO model {path}: {e}") from e
    shape = model.inputs[0].get_partial_shape()
    fixed: int | None = shape[0].get_length() if shape[0].is_static else None
    if dynamic_batch and fixed is not None:
        try:
            dims = [-1] + [d.get_length() if d.is_static else -1 for d in list(shape)[1:]]
            model.reshape({model.inputs[0].any_name: ov.PartialShape(dims)})
            fixed = None
        except Exception as e:  # a model with a baked-in batch size keeps it
            logger.info("%s keeps its fixed batch of %s (%s)", path, fixed, e)
    config: dict[str, Any] = {"INFERENCE_NUM_THREADS": max(1, int(threads)), "PERFORMANCE_HINT": "LATENCY",
                              "ENABLE_CPU_PINNING": False}
    if precision != "auto":
        config["INFERENCE_PRECISION_HINT"] = precision
    dev = ov_device(device)
    try:
        with same_signal_stack():  # OpenVINO would leave this thread a signal stack it later unmaps
            compiled = core.compile_model(model, dev, config if dev == "CPU" else {})
    except Exception as e:
        raise WeightsNotFoundError(f"cannot compile OpenVINO model {path} for {dev}: {e}") from e
    return model, compiled, fixed


def ir_conversion_preprocess(model: Any) -> dict[str, Any] | None:
    """Preprocessing an IR's conversion folded into the model, from its ``conversion_parameters``.

    Returns ``{"rgb": ..., "scale": 1.0, "mean": (0, 0, 0), "std": (1, 1, 1)}`` when the converter
    put mean/scale values inside the model (the model then takes 0-255 pixels), with ``rgb`` False
    when it also reversed the input channels (the model takes BGR); None when the IR does not say.
    """
    key = ["conversion_parameters"]
    if not (model.has_rt_info([*key, "mean_values"]) or model.has_rt_info([*key, "scale_values"])):
        return None
    reverse = model.has_rt_info([*key, "reverse_input_channels"]) and \
        str(model.get_rt_info([*key, "reverse_input_channels"]).astype(str)).lower() == "true"
    return {"rgb": not reverse, "scale": 1.0, "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}


def infer(compiled: Any, batch: np.ndarray) -> np.ndarray:
    """First output of ``compiled`` for one input batch."""
    return np.asarray(compiled(batch)[0])
