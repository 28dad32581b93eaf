"""Named weights: every offline model is registered with its SHA-256, licence and training data;
``reid weights`` filters by licence and prints JSON; IR models download with their ``.bin``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from csip_reid.cli import main
from csip_reid.core import weights
from csip_reid.core.weights import (
    KNOWN_WEIGHTS,
    WeightsInfo,
    file_sha256,
    registered_weights,
    resolve_weights,
)
from csip_reid.pipeline.backends import all_registries

all_registries()  # modules that register their own weights


def _sums(test_data: Path) -> dict[str, str]:
    f = test_data / "SHA256SUMS"
    if not f.is_file():
        pytest.skip(f"no SHA256SUMS in {test_data}")
    pairs = (line.split() for line in f.read_text().splitlines() if line.strip())
    return {Path(p).name: sha for sha, p in pairs if p.startswith("models/")}


def test_every_offline_model_is_registered_with_its_checksum(test_data: Path) -> None:
    sums = _sums(test_data)
    by_file = {i.filename: i for i in registered_weights()}
    by_file.update({c.filename: c for i in registered_weights() for c in i.companions})
    assert set(sums) <= set(by_file), f"unregistered: {sorted(set(sums) - set(by_file))}"
    for filename, sha in sums.items():
        assert by_file[filename].sha256 == sha, filename
        local = test_data / "models" / filename
        if local.is_file():
            assert file_sha256(local) == sha, filename


def test_every_entry_says_licence_training_data_and_task() -> None:
    for info in registered_weights():
        assert info.licence and info.training_data and info.description, info.name
        assert info.task in {"reid", "detector", "pose"}, info.name
        if info.licence == "research-only":
            assert not info.commercial_use and not info.permissive, info.name
    assert KNOWN_WEIGHTS["person-reidentification-retail-0277"].permissive
    assert not KNOWN_WEIGHTS["yolov8n_int8"].permissive and KNOWN_WEIGHTS["yolov8n_int8"].licence == "AGPL-3.0"
    assert not KNOWN_WEIGHTS["osnet_x0_25_msmt17"].permissive


@pytest.fixture()
def runner(monkeypatch: pytest.MonkeyPatch, models_dir: Path, tmp_path: Path) -> CliRunner:
    monkeypatch.setenv("REID_WEIGHTS_DIR", str(models_dir))
    monkeypatch.setenv("REID_OFFLINE", "1")
    monkeypatch.setenv("REID_CACHE_DIR", str(tmp_path / "cache"))
    return CliRunner()


def test_weights_json_and_permissive_filter(runner: CliRunner, models_dir: Path) -> None:
    r = runner.invoke(main, ["weights", "--json"])
    assert r.exit_code == 0, r.output
    rows = {row["name"]: row for row in json.loads(r.output)}
    assert rows["osnet_x0_5_msmt17"]["status"] == "present"
    assert rows["osnet_x0_5_msmt17"]["local"] == str(models_dir / "osnet_x0_5_msmt17.onnx")
    assert rows["clip_vit_b16"]["status"] == "missing" and rows["clip_vit_b16"]["local"] is None
    assert rows["person-reidentification-retail-0277"]["companions"] == ["person-reidentification-retail-0277.bin"]
    r = runner.invoke(main, ["weights", "--json", "--permissive"])
    permissive = json.loads(r.output)
    assert permissive and all(row["permissive"] and row["licence"] == "Apache-2.0" for row in permissive)
    assert {row["name"] for row in permissive} == {n for n, row in rows.items() if row["permissive"]}
    assert "osnet_x0_25_msmt17" not in {row["name"] for row in permissive}


def test_weights_table_has_a_licence_column(runner: CliRunner) -> None:
    r = runner.invoke(main, ["weights", "--licence", "agpl-3.0"])
    assert r.exit_code == 0, r.output
    header, row = r.output.splitlines()[1:3]
    assert "LICENCE" in header and row.split()[:3] == ["yolov8n_int8", "detector", "AGPL-3.0"]
    assert len([line for line in r.output.splitlines() if "AGPL-3.0" in line]) == 1


def test_unknown_licence_is_a_one_line_error(runner: CliRunner) -> None:
    r = runner.invoke(main, ["weights", "--licence", "WTFPL"])
    assert r.exit_code == 2
    err = [line for line in r.output.splitlines() if line.startswith("Error:")]
    assert len(err) == 1 and "Apache-2.0" in err[0] and "research-only" in err[0]


def test_an_ir_model_downloads_with_its_bin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "m.xml").write_bytes(b"<net/>")
    (src / "m.bin").write_bytes(b"\x00" * 10)
    bin_info = WeightsInfo("m.bin", "m.bin", (src / "m.bin").as_uri(), file_sha256(src / "m.bin"))
    info = WeightsInfo("fid_ir", "m.xml", (src / "m.xml").as_uri(), file_sha256(src / "m.xml"), "t",
                       companions=(bin_info,))
    monkeypatch.setitem(KNOWN_WEIGHTS, info.name, info)
    for k in ("REID_OFFLINE", "HF_HUB_OFFLINE", "YOLO_OFFLINE", "REID_WEIGHTS_DIR"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("REID_CACHE_DIR", str(tmp_path / "cache"))
    got = resolve_weights("fid_ir")
    assert got == weights.cache_dir() / "weights" / "m.xml" and got.read_bytes() == b"<net/>"
    assert (got.parent / "m.bin").read_bytes() == b"\x00" * 10
