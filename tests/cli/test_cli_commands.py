"""Every command and option of the ``reid`` CLI as it stood before it became a package (0.2.0) is
still there, every command defined in ``csip_reid/cli/`` is reachable from the root, and the entry
points (``csip_reid.cli:main``, ``python -m csip_reid.cli``) answer."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points

import click
import pytest
from click.testing import CliRunner

import csip_reid.cli
from csip_reid.cli import main

#: command path -> its arguments and long options in csip-reid 0.2.0 (``reid`` = ""). New commands
#: and options may be added; none of these may go.
OLD_CLI: dict[str, str] = {
    "": "--version --verbose",
    "backends": "--json",
    "eval": "--checkpoint --embedder --dataset --data-root --sampling --seq-len --frame-stride --split --chunks --device --json",
    "export-dataset": "--gallery --out --labels",
    "export-onnx": "--checkpoint --out --dynamic-batch --opset --json",
    "gallery": "",
    "gallery info": "--gallery --json",
    "gallery merge": "SOURCES --gallery --quiet",
    "gallery reindex": "--gallery --compressed --compressed-above --exact-below --in-memory --on-disk --nlist-factor --json",
    "gallery remove": "VIDEO --gallery",
    "gallery set-time": "VIDEO START_TIME --gallery",
    "identities": "",
    "identities build": "--gallery --threshold --false-merge-rate --cameras --min-transition --neighbours --skeleton-weight --rebuild --json",
    "identities label": "TRACKLET --gallery --same-as --not --name --json",
    "identities list": "--gallery --identity --min-size --json",
    "index": "PATHS --gallery --camera --camera-from --camera-map --config --detector --tracker --embedder --pose --stride --scan --device --decoder --start-time --time-from-name --force --json --quiet --executor --ray-address --workers --gpus-per-worker --cpus-per-worker",
    "query": "SOURCE --gallery --top-k --json --report --track-id --all-tracks --mode --fuse-weight --start --end --box --group --since --until --expand --rerank --detector --camera --device --quiet",
    "serve": "--gallery --host --port --token --max-upload-mb",
    "skeletons": "--dataset --data-root --pose --device --limit --out --quiet",
    "train": "--config --data-root --dataset --stage --output --resume --device --epochs --max-steps --split --skeletons",
    "weights": "",
}


def _walk(cmd: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, click.Command]]:
    yield " ".join(path), cmd
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            yield from _walk(sub, (*path, name))


def _flags(cmd: click.Command) -> set[str]:
    out: set[str] = set()
    for p in cmd.params:
        if isinstance(p, click.Argument):
            out.add(p.human_readable_name)
        else:
            out.update(o for o in (*p.opts, *p.secondary_opts) if o.startswith("--"))
    return out


COMMANDS = dict(_walk(main))


@pytest.mark.parametrize("path", sorted(OLD_CLI), ids=lambda p: p or "reid")
def test_old_command_and_its_options_are_still_there(path: str) -> None:
    assert path in COMMANDS, f"`reid {path}` is gone"
    missing = set(OLD_CLI[path].split()) - _flags(COMMANDS[path])
    assert not missing, f"`reid {path}` lost {sorted(missing)}"
    res = CliRunner().invoke(main, [*path.split(), "--help"], prog_name="reid")
    assert res.exit_code == 0, res.output
    assert res.output.startswith(f"Usage: reid {path}".rstrip() + " "), res.output


def test_every_command_of_the_package_is_reachable_from_reid() -> None:
    reachable = {id(c) for c in COMMANDS.values()}
    defined = []
    for info in pkgutil.iter_modules(csip_reid.cli.__path__):
        if info.name == "__main__":
            continue
        mod = importlib.import_module(f"csip_reid.cli.{info.name}")
        defined += [(mod.__name__, name) for name, obj in vars(mod).items()
                    if isinstance(obj, click.Command) and obj.callback is not None
                    and obj.callback.__module__ == mod.__name__ and id(obj) not in reachable]
    assert not defined, f"commands defined but not added to `reid`: {defined}"


def test_console_script_is_csip_reid_cli_main() -> None:
    scripts = {e.name: e for e in entry_points(group="console_scripts") if e.name == "reid"}
    if "reid" not in scripts:
        pytest.skip("csip-reid is not installed (no `reid` console script)")
    assert scripts["reid"].value == "csip_reid.cli:main"
    assert scripts["reid"].load() is main


def test_python_m_csip_reid_cli_runs_the_same_group() -> None:
    """The process boundary matters here: ``python -m`` must find ``csip_reid/cli/__main__.py``."""
    p = subprocess.run([sys.executable, "-m", "csip_reid.cli", "gallery", "--help"], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("Usage: python -m csip_reid.cli gallery [OPTIONS] COMMAND")
    for name in ("info", "merge", "remove", "reindex", "set-time"):
        assert f"\n  {name} " in p.stdout
    bad = subprocess.run([sys.executable, "-m", "csip_reid.cli", "no-such-command"], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and "No such command 'no-such-command'" in bad.stderr


def test_verbose_is_per_call_and_accepted_anywhere(tmp_path) -> None:
    """``--verbose`` after the command adds the traceback to the one-line error; the next call in the
    same process, without it, gets the line alone (the flag is not kept between calls)."""
    args = ["gallery", "info", "--gallery", str(tmp_path / "nowhere")]
    loud = CliRunner().invoke(main, [*args, "--verbose"])
    quiet = CliRunner().invoke(main, args)
    assert loud.exit_code == quiet.exit_code == 2
    assert "Traceback" in loud.stderr and loud.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in quiet.stderr and len(quiet.stderr.strip().splitlines()) == 1
    assert quiet.stderr.startswith("error: ")
