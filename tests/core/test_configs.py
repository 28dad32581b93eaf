"""Every YAML that ships: one copy, each one loads, and the pipeline configs do not drift."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from csip_reid.core.configs import CONFIG_DIR, config_path, shipped_configs
from csip_reid.core.errors import ConfigError
from csip_reid.models.config import load_config
from csip_reid.pipeline.detect import DEFAULT_CONF
from csip_reid.pipeline.settings import PipelineSettings

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted(CONFIG_DIR.glob("*.yaml"))
#: pipeline settings a shipped pipeline YAML may set to something else than the defaults, and why
ALLOWED_DIFFERENCES = {
    "pipeline": set(),
    "offline_demo": {"detector"},  # the offline YOLOX-Nano weights instead of the ultralytics hub name
}


def test_one_copy_of_the_configs() -> None:
    """The repository's configs/ is the package's folder, not a second copy that can drift."""
    assert (REPO / "configs").resolve() == CONFIG_DIR.resolve()
    assert len(SHIPPED) >= 8
    copies = [p for p in REPO.rglob("*.yaml") if p.name in {s.name for s in SHIPPED}
              and ".venv" not in p.parts and p.resolve().parent != CONFIG_DIR.resolve()]
    assert copies == [], f"second copies of shipped configs: {copies}"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_yaml_loads_by_name_and_path(path: Path) -> None:
    assert path.stem in shipped_configs()
    assert config_path(path.stem) == CONFIG_DIR / path.name
    if path.stem.startswith("csip_"):
        assert load_config(path.stem).to_dict() == load_config(path).to_dict()
    else:
        assert PipelineSettings.load(path.stem) == PipelineSettings.load(path)


@pytest.mark.parametrize("name", sorted(ALLOWED_DIFFERENCES))
def test_pipeline_configs_match_the_defaults(name: str) -> None:
    raw = yaml.safe_load((CONFIG_DIR / f"{name}.yaml").read_text())["pipeline"]
    defaults = PipelineSettings().to_dict()
    differ = {k for k, v in raw.items() if defaults[k] != v}
    assert differ == ALLOWED_DIFFERENCES[name], f"{name}.yaml drifted from the defaults: {differ}"
    assert PipelineSettings().detector_conf == DEFAULT_CONF


def test_pipeline_names_every_shipped_pipeline_config() -> None:
    pipelines = {p.stem for p in SHIPPED if not p.stem.startswith("csip_")}
    assert pipelines == set(ALLOWED_DIFFERENCES)


def test_unknown_config_lists_the_shipped_names() -> None:
    with pytest.raises(ConfigError, match="offline_demo"):
        config_path("no_such_config")
