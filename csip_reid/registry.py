"""Small named registries for pluggable back-ends.

A back-end (detector, tracker, pose estimator, embedder, gallery index) registers a factory under
a short name. Users pick one with a *spec* string ``KIND`` or ``KIND:ARG`` (e.g.
``yolox:models/yolox_nano.onnx``, ``onnx:osnet_x0_25_msmt17``, ``bytetrack``). The factory receives
``ARG`` (or ``None``) plus keyword options and returns a ready object.

Example:
    >>> DETECTORS = Registry("detector")
    >>> @DETECTORS.register("dummy")
    ... def _make(arg, **kw):
    ...     return ("dummy", arg)
    >>> DETECTORS.create("dummy:x")
    ('dummy', 'x')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from csip_reid.errors import ConfigError

T = TypeVar("T")


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
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
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

    def create(self, spec: str, **options: Any) -> T:
        """Build the back-end named by ``spec`` (``KIND`` or ``KIND:ARG``)."""
        kind, arg = split_spec(spec)
        return self.entry(kind).factory(arg, **options)
