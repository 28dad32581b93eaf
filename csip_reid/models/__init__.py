"""CSIP-ReID models: config, modules, losses, and a small timm-style model registry.

Example:
    >>> from csip_reid.models import create_model, list_models
    >>> list_models()
    ['csip_tiny', 'csip_vit_b16']
    >>> model = create_model("csip_tiny", num_classes=10)
    >>> model.feature_dim
    160
"""

from __future__ import annotations

from typing import Any

from csip_reid.core.registry import Registry
from csip_reid.models.config import CSIPConfig, list_configs, load_config
from csip_reid.models.csip import CSIPReID

MODELS: Registry[CSIPReID] = Registry("model")


def build_model(
    cfg: CSIPConfig, num_classes: int, num_cameras: int | None = None, pretrained: bool | None = None
) -> CSIPReID:
    """Build a :class:`CSIPReID` from a config.

    Args:
        cfg: The configuration.
        num_classes: Number of training identities (classifier size, number of prototypes).
        num_cameras: SIE camera count (default ``cfg.num_cameras``).
        pretrained: Load the CLIP visual weights (default ``cfg.visual.pretrained``).
    """
    model = CSIPReID(cfg, num_classes, num_cameras)
    if cfg.visual.pretrained if pretrained is None else pretrained:
        model.visual.load_clip(cfg.visual.pretrained_weights)
    return model


def _register(name: str, config: str, help: str) -> None:
    def factory(arg: str | None, num_classes: int = 625, num_cameras: int | None = None,
                pretrained: bool = False) -> CSIPReID:
        return build_model(load_config(config), num_classes, num_cameras, pretrained)

    MODELS.register(name, help=help)(factory)


_register("csip_vit_b16", "csip_mars", "CSIP-ReID, CLIP ViT-B/16 at 256x128, T=8 (the paper's model)")
_register("csip_tiny", "csip_tiny", "CSIP-ReID architecture at toy sizes (tests, smoke runs)")


def list_models() -> list[str]:
    """Registered model names."""
    return MODELS.names()


def create_model(name: str, **kwargs: Any) -> CSIPReID:
    """Build a registered model: ``create_model("csip_tiny", num_classes=16, pretrained=False)``.

    Pretrained CLIP weights are off by default here (``pretrained=True`` loads them).
    """
    return MODELS.create(name, **kwargs)


__all__ = ["CSIPConfig", "CSIPReID", "MODELS", "build_model", "create_model", "list_configs",
           "list_models", "load_config"]
