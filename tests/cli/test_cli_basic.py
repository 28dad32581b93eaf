"""Fast CLI checks run in-process (click's runner): listings, option parsing, errors."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from csip_reid.cli import main
from csip_reid.cli.query import _seconds


@pytest.fixture()
def runner(monkeypatch, models_dir, tmp_path):
    monkeypatch.setenv("REID_WEIGHTS_DIR", str(models_dir))
    monkeypatch.setenv("REID_OFFLINE", "1")
    monkeypatch.setenv("REID_CACHE_DIR", str(tmp_path / "cache"))
    return CliRunner()


def test_backends_lists_every_registry(runner):
    r = runner.invoke(main, ["backends", "--json"])
    assert r.exit_code == 0, r.output
    lines = json.loads(r.output)
    assert {"ultralytics", "yolox"} <= set(lines["detectors"])
    assert {"bytetrack", "botsort"} <= set(lines["trackers"])
    assert {"none", "movenet", "yolo-pose", "rtmpose-s"} <= set(lines["pose"])
    assert {"onnx", "csip", "skeleton"} <= set(lines["embedders"])
    assert {"mars", "lsvid", "ilidsvid", "prid", "custom", "minimars"} <= set(lines["datasets"])
    assert {"csip_tiny", "csip_vit_b16"} <= set(lines["models"])
    text = runner.invoke(main, ["backends"]).output
    assert "KIND[:ARG]" in text  # the one spec grammar is documented
    for names in lines.values():  # every registered back-end is listed with its help line
        for name in names:
            assert any(line.split()[:1] == [name] for line in text.splitlines()), name


def test_weights_shows_local_and_missing(runner, models_dir):
    r = runner.invoke(main, ["weights"])
    assert r.exit_code == 0, r.output
    osnet = next(line for line in r.output.splitlines() if line.strip().startswith("osnet_x0_25_msmt17"))
    assert str(models_dir / "osnet_x0_25_msmt17.onnx") in osnet
    clip = next(line for line in r.output.splitlines() if line.strip().startswith("clip_vit_b16"))
    assert "MISSING (offline)" in clip


@pytest.mark.parametrize("text,seconds", [("90", 90.0), ("1:30", 90.0), ("0:01:30.5", 90.5), ("12.25", 12.25)])
def test_time_option_parsing(text, seconds):
    assert _seconds(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["1:xx", "-3", "1:2:3:4"])
def test_time_option_rejects_garbage(bad):
    with pytest.raises(click.BadParameter):
        _seconds(bad)


def test_errors_are_one_line_with_exit_codes(runner, tmp_path):
    r = runner.invoke(main, ["index", str(tmp_path / "none.mp4"), "--gallery", str(tmp_path / "g")])
    assert r.exit_code == 2 and r.output.strip().splitlines()[-1].startswith("error: cannot open video")
    r = runner.invoke(main, ["gallery", "info", "--gallery", str(tmp_path)])
    assert r.exit_code == 2 and "is not a csip-reid gallery" in r.output
    r = runner.invoke(main, ["eval", "--dataset", "minimars", "--data-root", str(tmp_path)])
    assert r.exit_code == 2 and "exactly one of --checkpoint or --embedder" in r.output
    r = runner.invoke(main, ["eval", "--checkpoint", str(tmp_path / "x.pt"), "--dataset", "minimars",
                             "--data-root", str(tmp_path)])
    assert r.exit_code == 2 and "not found" in r.output.strip().splitlines()[-1]
