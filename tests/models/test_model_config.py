"""CSIPConfig: shipped YAMLs, strict keys, type coercion, round trips."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from csip_reid.core.errors import ConfigError
from csip_reid.models.config import CSIPConfig, list_configs, load_config

REPO_CONFIGS = Path(__file__).resolve().parents[2] / "configs"
EXPECTED = ["csip_custom", "csip_ilidsvid", "csip_lsvid", "csip_mars", "csip_prid", "csip_tiny"]


def test_shipped_configs_listed() -> None:
    assert list_configs() == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_load_by_name_and_path_agree(name: str) -> None:
    by_name = load_config(name)
    by_path = load_config(REPO_CONFIGS / f"{name}.yaml")
    assert by_name.to_dict() == by_path.to_dict()
    assert by_name.name == name


def test_mars_recipe_values() -> None:
    """Numbers of the official MARS recipe (facts doc 1.2-1.9)."""
    c = load_config("csip_mars")
    assert (c.input.height, c.input.width, c.input.seq_len) == (256, 128, 8)
    assert (c.visual.width, c.visual.depth, c.visual.heads, c.visual.patch_size, c.visual.proj_dim) == (768, 12, 12, 16, 512)
    assert (c.skeleton.hidden_dim, c.skeleton.layers, c.skeleton.heads, c.skeleton.k_pos_enc) == (512, 10, 8, 10)
    assert (c.stage1.epochs, c.stage1.batch_size, c.stage1.lr) == (120, 64, 3.5e-4)
    assert (c.stage2.epochs, c.stage2.lr, c.stage2.milestones, c.stage2.large_fc_lr) == (80, 5e-6, [30, 50, 70], True)
    assert c.stage2.train_skeleton is False and c.pfu.prototype_momentum == 0.0
    ilids = load_config("csip_ilidsvid")
    assert (ilids.stage2.epochs, ilids.stage2.milestones, ilids.stage2.large_fc_lr, ilids.num_cameras) == (60, [30, 50], False, 2)
    assert [load_config(n).dataset for n in EXPECTED] == ["custom", "ilidsvid", "lsvid", "mars", "prid", "minimars"]
    lsvid = load_config("csip_lsvid")
    assert (lsvid.num_cameras, lsvid.stage2.large_fc_lr) == (15, False)


def test_tiny_is_tiny() -> None:
    c = load_config("csip_tiny")
    assert c.input.height * c.input.width <= 64 * 32 and c.visual.depth <= 2 and c.skeleton.layers <= 2
    assert c.visual.pretrained is False


def test_yaml_exponent_without_dot_is_a_float(tmp_path: Path) -> None:
    # PyYAML reads "5e-6" as a string; the config must still treat it as a number.
    p = tmp_path / "c.yaml"
    p.write_text("stage2:\n  lr: 5e-6\n  milestones: [3, 5]\n")
    c = CSIPConfig.from_yaml(p)
    assert c.stage2.lr == pytest.approx(5e-6) and isinstance(c.stage2.lr, float)
    assert c.stage2.milestones == [3, 5]
    assert c.name == "c"


@pytest.mark.parametrize(
    "text, words",
    [
        ("stage2:\n  lrr: 1.0\n", "stage2.lrr"),
        ("bogus: 1\n", "bogus"),
        ("stage1:\n  epochs: ten\n", "stage1.epochs"),
        ("stage1:\n  epochs: 1.5\n", "stage1.epochs"),
        ("sgtm:\n  atd: 1\n", "sgtm.atd"),
        ("visual:\n  patch_size: 15\n", "patch size"),
        ("- a\n- b\n", "mapping"),
        ("stage2: [1, 2]\n", "stage2"),
    ],
)
def test_bad_configs_raise_config_error(tmp_path: Path, text: str, words: str) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=words.replace(".", r"\.")):
        CSIPConfig.from_yaml(p)


def test_unknown_name_lists_choices() -> None:
    with pytest.raises(ConfigError, match="csip_mars"):
        load_config("csip_nope")


def test_round_trip_through_yaml(tmp_path: Path) -> None:
    c = load_config("csip_tiny")
    c.stage2.milestones = [7, 9]
    c.sgtm.faithful_ske_view = True
    c.to_yaml(tmp_path / "out.yaml")
    again = CSIPConfig.from_yaml(tmp_path / "out.yaml")
    assert again.to_dict() == c.to_dict()
    # Plain types only (checkpoint-safe): no tuples anywhere.
    assert "!!python" not in (tmp_path / "out.yaml").read_text()
    assert yaml.safe_load((tmp_path / "out.yaml").read_text())["stage2"]["milestones"] == [7, 9]
