"""Pieces shared by the ``reid`` command modules: choices read from the back-end registries."""

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
