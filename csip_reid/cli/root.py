"""The ``reid`` command group: error handling for every command, and every command group added.

Every user error is a :class:`~csip_reid.core.errors.ReidError`: printed as one line on stderr with a
non-zero exit status (``--verbose`` adds the traceback). Heavy libraries are imported inside the
commands so ``reid --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

import click

from csip_reid.cli import data, export, gallery, identities, index, query, serve, train, weights
from csip_reid.cli.common import echo_err
from csip_reid.core import __version__
from csip_reid.core.errors import ReidError

#: Every command and command group of ``reid``, in one place (``reid --help`` lists them sorted).
COMMANDS: tuple[click.Command, ...] = (
    index.index, query.query, gallery.gallery, identities.identities, train.train, train.evaluate,
    data.export_dataset, data.skeletons, weights.weights, weights.backends, export.export_onnx, serve.serve,
)


def _setup_env() -> None:
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_VERBOSE", "false")


class _Group(click.Group):
    """Turns exceptions into one-line errors and exit codes."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # `--verbose` may come anywhere (`reid index x --verbose`), not only before the command.
        # Kept per invocation (ctx.meta), so in-process calls do not inherit an earlier one's.
        verbose = "--verbose" in args or args[:1] == ["-v"]
        args = [a for a in args if a != "--verbose"]
        if args[:1] == ["-v"]:
            args = args[1:]
        ctx.meta["reid.verbose"] = verbose
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        verbose = ctx.meta.get("reid.verbose", False)
        try:
            return super().invoke(ctx)
        except ReidError as e:
            if verbose:
                traceback.print_exc()
            echo_err(f"error: {e}")
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            echo_err("interrupted")
            sys.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception as e:  # an unexpected bug: still one line unless --verbose
            if verbose:
                traceback.print_exc()
            echo_err(f"error: unexpected {type(e).__name__}: {e} (rerun with --verbose for details)")
            sys.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reid")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks on errors (accepted anywhere on the line).")
def main(verbose: bool) -> None:
    """Video person re-identification: index videos into a gallery, query it, train and evaluate CSIP-ReID."""
    _setup_env()


for _command in COMMANDS:
    main.add_command(_command)
