"""CSIP-ReID configuration: a tree of dataclasses, loadable from YAML.

Every size and every training knob of the model is a config value. Shipped configs live in
``csip_reid/configs/`` (see :mod:`csip_reid.core.configs`); :func:`load_config` takes either a
YAML path or the name of a shipped config (``csip_mars``, ``csip_tiny``, ...).

A YAML file only needs the values that differ from the defaults, which follow the official
CSIP-ReID MARS recipe (ViT-B/16 at 256x128, T=8, 10-layer SGT, see ``docs/csip-quirks.md``).
Unknown keys are an error, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from csip_reid.core.configs import config_path, shipped_configs
from csip_reid.core.errors import ConfigError

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


@dataclass
class InputConfig:
    """Network input. The official code normalises with ImageNet mean/std (its 0.5 setting is unused)."""

    height: int = 256
    width: int = 128
    seq_len: int = 8
    mean: list[float] = field(default_factory=lambda: list(IMAGENET_MEAN))
    std: list[float] = field(default_factory=lambda: list(IMAGENET_STD))


@dataclass
class VisualConfig:
    """CLIP ViT image tower (timm ``VisionTransformer``, pre-norm, CLS token).

    ``pretrained_weights`` is a path or a name for :func:`csip_reid.core.weights.resolve_weights`
    (``clip_vit_b16`` = OpenAI's ``ViT-B-16.pt``); it is loaded when ``pretrained`` is true.
    """

    patch_size: int = 16
    width: int = 768
    depth: int = 12
    heads: int = 12
    mlp_ratio: float = 4.0
    proj_dim: int = 512
    act: str = "quick_gelu"
    pretrained: bool = True
    pretrained_weights: str = "clip_vit_b16"
    sie: bool = True
    sie_coe: float = 1.0


@dataclass
class SkeletonConfig:
    """SGT skeleton encoder (a port of TranSG's graph transformer, attention over joints per frame)."""

    format: str = "h36m17-3d"
    num_joints: int = 17
    in_dim: int = 3
    hidden_dim: int = 512
    layers: int = 10
    heads: int = 8
    ffn_dim: int = 1024
    dropout: float = 0.3
    k_pos_enc: int = 10
    logit_clamp: float = 5.0


@dataclass
class PFUConfig:
    """Prototype Fusion Updater: fusion gate + Visual Token Updater (prompt-generator layers)."""

    gate_hidden: int = 512
    layers: int = 2
    heads: int = 8
    mlp_ratio: float = 4.0
    dropout: float = 0.1
    #: Biases on the updater's q/k/v projections. The official code has none (False); checkpoints
    #: written before csip-reid 1.0 had them and load with True (set automatically on loading).
    qkv_bias: bool = False
    #: 0 keeps the prototypes static for all of stage 2 (official code); m > 0 makes them an EMA
    #: ``P <- m P + (1 - m) batch_mean`` of the current batch (a deviation, off by default).
    prototype_momentum: float = 0.0


@dataclass
class SGTMConfig:
    """Skeleton Guided Temporal Modeling (MTE + ATD + token-type embeddings + TA + attention pooling)."""

    heads: int = 8
    mlp_ratio: float = 4.0
    dropout: float = 0.1
    atd: bool = True
    #: Reproduce the official ``x_ske.view(j, b, T, d)`` joint-token scramble (off: tokens kept in place).
    faithful_ske_view: bool = False


@dataclass
class LossConfig:
    """Loss weights: ``id * sum(3 CE) + triplet * sum(3 tri) + csip * CE + frame * CE / T``."""

    label_smooth: float = 0.1
    triplet_margin: float = 0.3
    supcon_temperature: float = 1.0
    id_weight: float = 0.25
    triplet_weight: float = 1.0
    csip_weight: float = 1.0
    frame_weight: float = 1.3
    frame_divide_by_t: bool = True


@dataclass
class Stage1Config:
    """Contrastive skeleton-image pretraining (visual encoder frozen). Cosine schedule per epoch."""

    epochs: int = 120
    batch_size: int = 64
    sampler: str = "shuffle"
    num_instances: int = 4
    augment: bool = False
    lr: float = 3.5e-4
    weight_decay: float = 1e-4
    warmup_epochs: int = 5
    warmup_lr: float = 1e-5
    min_lr: float = 1e-6
    #: Drop the last, smaller batch of an epoch: official False on MARS/LS-VID, True on iLIDS-VID.
    drop_last: bool = False


@dataclass
class Stage2Config:
    """Prototype-guided fine-tuning. Warm-up + multi-step schedule per epoch."""

    epochs: int = 80
    batch_size: int = 16
    sampler: str = "pk"
    num_instances: int = 4
    augment: bool = True
    lr: float = 5e-6
    weight_decay: float = 1e-4
    bias_lr_factor: float = 2.0
    weight_decay_bias: float = 1e-4
    #: New modules (PFU, SGTM, temporal classifier) at ``lr * fc_lr_factor`` (MARS recipe).
    large_fc_lr: bool = True
    fc_lr_factor: float = 10.0
    warmup_epochs: int = 10
    warmup_factor: float = 0.1
    milestones: list[int] = field(default_factory=lambda: [30, 50, 70])
    gamma: float = 0.1
    eval_period: int = 2
    eval_sampling: str = "rrs"
    #: Paper figure: the skeleton encoder is frozen in stage 2 (the official code trains it).
    train_skeleton: bool = False
    #: Stage-1 checkpoint to start stage 2 from when ``<output>/stage1.pt`` does not exist.
    init_checkpoint: str | None = None


@dataclass
class RunConfig:
    """Run-time settings shared by both stages."""

    seed: int = 1234
    amp: bool = True
    num_workers: int = 4
    log_period: int = 50
    eval_batch_size: int = 32


@dataclass
class CSIPConfig:
    """The whole CSIP-ReID configuration."""

    name: str = "csip_mars"
    #: Dataset reader this config is meant for (``reid train`` uses it when ``--dataset`` is not given).
    dataset: str | None = None
    #: Reader options that belong to the recipe (e.g. LS-VID's ``train_piece_len: 48``); applied only
    #: when training on ``dataset``.
    dataset_options: dict[str, Any] = field(default_factory=dict)
    num_cameras: int = 6
    input: InputConfig = field(default_factory=InputConfig)
    visual: VisualConfig = field(default_factory=VisualConfig)
    skeleton: SkeletonConfig = field(default_factory=SkeletonConfig)
    pfu: PFUConfig = field(default_factory=PFUConfig)
    sgtm: SGTMConfig = field(default_factory=SGTMConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    stage1: Stage1Config = field(default_factory=Stage1Config)
    stage2: Stage2Config = field(default_factory=Stage2Config)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check the sizes fit together; raise :class:`ConfigError` otherwise."""
        v, s, i = self.visual, self.skeleton, self.input
        checks = [
            (i.height % v.patch_size == 0 and i.width % v.patch_size == 0,
             f"input {i.height}x{i.width} is not a multiple of patch size {v.patch_size}"),
            (v.width % v.heads == 0, f"visual width {v.width} not divisible by {v.heads} heads"),
            (s.hidden_dim % s.heads == 0, f"skeleton hidden_dim {s.hidden_dim} not divisible by {s.heads} heads"),
            (v.proj_dim % self.pfu.heads == 0, f"proj_dim {v.proj_dim} not divisible by {self.pfu.heads} PFU heads"),
            (v.width % self.sgtm.heads == 0, f"visual width {v.width} not divisible by {self.sgtm.heads} SGTM heads"),
            (0 < s.k_pos_enc < s.num_joints, f"k_pos_enc must be in 1..{s.num_joints - 1}"),
            (i.seq_len >= 1, "seq_len must be >= 1"),
            (len(i.mean) == 3 and len(i.std) == 3, "mean and std need 3 values"),
            (0.0 <= self.pfu.prototype_momentum < 1.0, "prototype_momentum must be in [0, 1)"),
            (self.stage1.sampler in ("pk", "shuffle") and self.stage2.sampler in ("pk", "shuffle"),
             "sampler must be 'pk' or 'shuffle'"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(f"config {self.name!r}: {msg}")

    # -- (de)serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (lists, not tuples): YAML- and ``torch.load(weights_only=True)``-safe."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CSIPConfig:
        """Build from a (partial) nested dict; unknown keys raise :class:`ConfigError`."""
        return _build(cls, d or {}, "")

    @classmethod
    def from_yaml(cls, path: str | Path) -> CSIPConfig:
        """Read a YAML file (only the values that differ from the defaults are needed)."""
        try:
            with open(path, encoding="utf-8") as f:
                data = yaml.safe_load(f)
        except OSError as e:
            raise ConfigError(f"cannot read config {path}: {e.strerror or e}") from e
        except yaml.YAMLError as e:
            raise ConfigError(f"config {path} is not valid YAML: {e}") from e
        if data is not None and not isinstance(data, dict):
            raise ConfigError(f"config {path} must be a mapping at the top level")
        data = dict(data or {})
        data.setdefault("name", Path(path).stem)
        return cls.from_dict(data)

    def to_yaml(self, path: str | Path) -> None:
        """Write the full resolved config."""
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"config section {where or 'root'!r} must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown config key(s) {', '.join(where + k for k in unknown)}; "
            f"valid keys here: {', '.join(fields)}"
        )
    kwargs = {}
    for name, value in data.items():
        sub = _SECTIONS.get((cls, name))
        if sub:
            kwargs[name] = _build(sub, value, f"{where}{name}.")
        else:
            kwargs[name] = _coerce(value, str(fields[name].type), where + name)
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"bad config section {where or 'root'!r}: {e}") from e


def _coerce(value: Any, type_name: str, key: str) -> Any:
    """Check/convert a YAML value to the field type (PyYAML reads ``5e-6`` as a string)."""
    optional = type_name.endswith("| None")
    base = type_name.replace("| None", "").strip()
    if value is None:
        if optional:
            return None
        raise ConfigError(f"config key {key!r} must not be empty")
    if base.startswith("dict["):
        if not isinstance(value, dict):
            raise ConfigError(f"config key {key!r} must be a mapping, got {value!r}")
        return dict(value)
    try:
        if base.startswith("list["):
            if not isinstance(value, (list, tuple)):
                raise TypeError
            return [_coerce(v, base[5:-1], key) for v in value]
        if base == "bool":
            if not isinstance(value, bool):
                raise TypeError
            return value
        if base == "int":
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise TypeError
            return int(float(value))
        if base == "float":
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if base == "str":
            if not isinstance(value, str):
                raise TypeError
            return value
    except (TypeError, ValueError):
        raise ConfigError(f"config key {key!r} must be {type_name}, got {value!r}") from None
    return value


_SECTIONS: dict[tuple[type, str], type] = {
    (CSIPConfig, f.name): f.default_factory  # type: ignore[misc]
    for f in dataclasses.fields(CSIPConfig)
    if dataclasses.is_dataclass(f.default_factory)
}


def list_configs() -> list[str]:
    """Names of the CSIP-ReID configs shipped with the package (``csip_*.yaml``)."""
    return shipped_configs("csip_")


def load_config(path_or_name: str | Path) -> CSIPConfig:
    """Load a config from a YAML path or by the name of a shipped config (``csip_tiny``)."""
    return CSIPConfig.from_yaml(config_path(path_or_name, "csip_"))
