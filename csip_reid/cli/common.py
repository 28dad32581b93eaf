"""What the ``reid`` command modules share: registry choices, the device default, the options that
several commands spell the same way, and opening a gallery."""

from __future__ import annotations

from typing import Any

import click


class RegistryChoice(click.Choice):
    """A :class:`click.Choice` whose choices are the names registered for a back-end kind.

    The registry is read on first use, so building the CLI (``reid --help``) imports no back-end.
    Plugins registered through entry points appear here like the built-in back-ends.

    Args:
        kind: Registry kind (``tracker``, ``dataset``, ...; see :mod:`csip_reid.pipeline.backends`).
        extra: Names accepted besides the registered ones (e.g. ``none``).
    """

    def __init__(self, kind: str, extra: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.extra = extra
        self._choices: list[str] | None = None
        self.case_sensitive = False

    @property  # type: ignore[override]
    def choices(self) -> list[str]:
        if self._choices is None:
            from csip_reid.pipeline.backends import names

            self._choices = [*self.extra, *names(self.kind)]
        return self._choices

    @choices.setter
    def choices(self, value: Any) -> None:
        self._choices = list(value)


def default_device() -> str:
    """``cuda`` when torch sees a GPU, else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


DATASET_CHOICES = RegistryChoice("dataset")


def echo_err(msg: str) -> None:
    """Print a line on stderr (messages stay off stdout, which carries a command's result)."""
    click.echo(msg, err=True)


def open_gallery(gallery_dir: str) -> Any:
    """Open the gallery at ``gallery_dir`` (a context manager); the gallery package is imported only here."""
    from csip_reid.gallery.store import Gallery

    return Gallery.open(gallery_dir)


# The options that many commands spell the same way (only their help differs from command to command).
def gallery_option(help: str | None = None) -> Any:
    """``--gallery DIR`` (required), passed to the command as ``gallery_dir``."""
    return click.option("--gallery", "gallery_dir", required=True, type=click.Path(file_okay=False), help=help)


def json_option(help: str | None = None) -> Any:
    """``--json``: print the result as JSON on stdout, passed as ``as_json``."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def quiet_option(help: str = "No progress bars.") -> Any:
    """``-q/--quiet``: no progress bars."""
    return click.option("-q", "--quiet", is_flag=True, help=help)


def device_option(help: str | None = None) -> Any:
    """``--device``: cpu, cuda or cuda:N (``None`` when not given)."""
    return click.option("--device", default=None, help=help)
