"""Small named registries for pluggable back-ends, and the one spec grammar they all read.

A back-end (detector, tracker, pose estimator, embedder, dataset, model) registers a factory under
a short name. Users pick one with a *spec*, the same grammar for every kind::

    KIND[:ARG]

``KIND`` is a registered name (case-insensitive; ``reid backends`` lists them). ``ARG`` is
optional and, for every kind, names what the back-end loads: a weights name (``reid weights``)
or file, a settings YAML (trackers), or the word ``random`` for untrained weights (tests,
benchmarks). Examples: ``yolox:yolox_nano``, ``ultralytics:yolo11n.pt``, ``bytetrack``,
``botsort:my.yaml``, ``movenet``, ``rtmpose-s:random``, ``onnx:osnet_x0_25_msmt17``,
``csip:runs/mars/best.pt``. The factory receives ``ARG`` (or ``None``) plus keyword options.

Two older spellings, which galleries written by csip-reid 0.1 store in their manifests, are still
read and rewritten to this grammar with a warning: ``NAME@ARG`` (``rtmpose-s@random``) and, where a
registry has a ``legacy`` rule, a bare ``ARG`` (a detector's weights file alone).

Example:
    >>> DETECTORS = Registry("detector")
    >>> @DETECTORS.register("dummy")
    ... def _make(arg, **kw):
    ...     return ("dummy", arg)
    >>> DETECTORS.create("dummy:x")
    ('dummy', 'x')
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from csip_reid.core.errors import ConfigError

T = TypeVar("T")
logger = logging.getLogger(__name__)


def split_spec(spec: str) -> tuple[str, str | None]:
    """Split ``KIND:ARG`` into ``(KIND, ARG)``; a bare ``KIND`` gives ``(KIND, None)``.

    Windows drive letters (``C:\\x``) are not split. Only the first ``:`` separates.
    """
    spec = spec.strip()
    if ":" in spec:
        kind, arg = spec.split(":", 1)
        if len(kind) > 1:
            return kind.strip().lower(), (arg.strip() or None)
    return spec.lower(), None


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered factory."""

    name: str
    factory: Callable[..., T]
    help: str = ""


class Registry(Generic[T]):
    """A name → factory table with helpful errors.

    Args:
        kind: What the registry holds, used in error messages ("detector", "embedder", ...).
        legacy: Optional rule turning a spec without a registered ``KIND`` into ``KIND:ARG``
            (or ``None`` when it cannot); used for old spellings only.
    """

    def __init__(self, kind: str, legacy: Callable[[str], str | None] | None = None) -> None:
        self.kind = kind
        self.legacy = legacy
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, help: str = "") -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator registering ``factory(arg, **options)`` under ``name``."""

        def deco(factory: Callable[..., T]) -> Callable[..., T]:
            key = name.lower()
            if key in self._entries and self._entries[key].factory is not factory:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            doc = help or (factory.__doc__ or "").strip().splitlines()[0:1]
            self._entries[key] = Entry(key, factory, doc if isinstance(doc, str) else "".join(doc))
            return factory

        return deco

    def names(self) -> list[str]:
        """Sorted registered names."""
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._entries

    def entry(self, name: str) -> Entry[T]:
        """The entry for ``name`` or a :class:`ConfigError` that lists the choices."""
        try:
            return self._entries[name.lower()]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}"
            ) from None

    def parse(self, spec: str) -> tuple[str, str | None]:
        """``(KIND, ARG)`` of a spec in the grammar of the module docstring.

        Raises:
            ConfigError: No registered back-end of this name (the message lists the choices).
        """
        spec = spec.strip()
        kind, arg = split_spec(spec)
        if kind in self:
            return kind, arg
        head, at, tail = spec.partition("@")
        if at and ":" not in head and head.lower() in self:
            logger.warning("%s spec %r uses the old NAME@ARG form; write %s:%s", self.kind, spec, head, tail)
            return head.lower(), tail or None
        if self.legacy is not None and (rewritten := self.legacy(spec)) is not None:
            logger.info("%s spec %r read as %r", self.kind, spec, rewritten)
            kind, arg = split_spec(rewritten)
        return self.entry(kind).name, arg

    def normalize(self, spec: str) -> str:
        """The spec in the current grammar (``KIND`` or ``KIND:ARG``)."""
        kind, arg = self.parse(spec)
        return f"{kind}:{arg}" if arg else kind

    def create(self, spec: str, **options: Any) -> T:
        """Build the back-end named by ``spec`` (``KIND`` or ``KIND:ARG``)."""
        kind, arg = self.parse(spec)
        return self.entry(kind).factory(arg, **options)

    def help_lines(self) -> list[str]:
        """``name  help`` lines, one per back-end (for ``reid backends``)."""
        return [f"{e.name:<14} {e.help}" for e in (self._entries[n] for n in self.names())]
