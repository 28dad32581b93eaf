"""``openvino:`` embedder: an OpenVINO IR (``.xml`` + ``.bin``) or ONNX person-ReID image model.

Spec ``openvino:NAME_OR_PATH`` (``openvino:person-reidentification-retail-0277``). The crop
preprocessing comes, in this order, from the ``preprocess`` option, the model's registered weights
entry (``reid weights``: Intel's IR models take BGR 0-255 and normalise inside the model), the
conversion parameters stored in an IR (mean/scale folded in, channels reversed), or the default
(RGB/255, ImageNet mean/std). Like every embedder it is recorded in the gallery manifest through
:meth:`describe` and the fingerprint (IR: the hash of the ``.xml`` and ``.bin`` hashes).

Frames are batched with a dynamic batch axis when the model can be reshaped to one, else fed in
chunks of the model's fixed batch. Per-frame features are pooled exactly as the ``onnx:`` embedder
pools them (this class reuses its pooling).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from csip_reid.core.embedder import EMBEDDERS, CropPreprocess
from csip_reid.core.onnx import run_in_chunks
from csip_reid.core.openvino import infer, ir_conversion_preprocess, model_sha256, openvino_model
from csip_reid.core.pooling import as_pooling
from csip_reid.core.weights import KNOWN_WEIGHTS, resolve_weights
from csip_reid.pipeline.embed.onnx import MAX_BATCH, OnnxEmbedder

DEFAULT_MODEL = "person-reidentification-retail-0277"


@dataclass
class OpenVinoEmbedder(OnnxEmbedder):
    """Frame-level OpenVINO ReID model; per-frame L2-normalised features averaged, re-normalised.

    The model must take one (B, 3, H, W) float32 input and return (B, D) features.
    """

    #: Preprocessing given explicitly or by the weights entry (else read from the IR, see module doc).
    preprocess_known: bool = False
    #: OpenVINO inference precision: ``auto`` (bf16 where the CPU has it), ``f32``, ...
    precision: str = "auto"

    def __post_init__(self) -> None:
        model, self.compiled, self.fixed_batch = openvino_model(self.path, self.device, precision=self.precision)
        if not self.preprocess_known:
            folded = ir_conversion_preprocess(model)
            if folded is not None:
                self.preprocess = CropPreprocess(**{**self.preprocess.to_dict(), **folded})
        shape = model.inputs[0].get_partial_shape()
        if shape.rank.get_length() != 4:
            raise ValueError(f"{self.path}: expected one (B, 3, H, W) input, got {shape}")
        if shape[2].is_static and shape[3].is_static:
            hw = (shape[2].get_length(), shape[3].get_length())
            if hw != (self.preprocess.height, self.preprocess.width):
                self.preprocess = CropPreprocess(**{**self.preprocess.to_dict(), "height": hw[0], "width": hw[1]})
        out = model.outputs[0].get_partial_shape()
        if out[-1].is_static:
            self.dim = out[-1].get_length()
        else:
            self.dim = int(self._run(np.zeros((1, 3, self.preprocess.height, self.preprocess.width),
                                              np.float32)).shape[-1])
        self._sha = model_sha256(self.path)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return run_in_chunks(lambda x: infer(self.compiled, x), batch, self.fixed_batch,
                             MAX_BATCH).reshape(len(batch), -1)


@EMBEDDERS.register("openvino", help="OpenVINO IR (.xml+.bin) or ONNX ReID model, pooled over its best crops")
def _make_openvino(arg: str | None, device: str = "cpu", **options: Any) -> OpenVinoEmbedder:
    name = arg or DEFAULT_MODEL
    path = resolve_weights(name, "ReID weights")
    pre = options.pop("preprocess", None)
    info = KNOWN_WEIGHTS.get(name) or KNOWN_WEIGHTS.get(path.name)
    known = pre is not None or (info is not None and info.preprocess is not None)
    if pre is None and info is not None and info.preprocess is not None:
        pre = info.preprocess
    pre = CropPreprocess.from_dict(pre) if isinstance(pre, dict) else (pre or CropPreprocess())
    return OpenVinoEmbedder(spec=f"openvino:{name}", preprocess=pre, path=str(path), device=device,
                            max_frames=options.pop("max_frames", 16), preprocess_known=known,
                            pooling=as_pooling(options.pop("pooling", None)), **options)
