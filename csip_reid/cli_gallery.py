"""``reid gallery reindex``: choose a gallery's index policy (compressed kind, on-disk lists, limits)."""

from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from csip_reid.core.errors import ConfigError
from csip_reid.gallery.kinds import compressed_help


def _count(option: str, text: str | None) -> int | None | str:
    """A vector count option: an integer >= 0, ``auto`` (the default for the dimension), or not given."""
    if text is None:
        return "keep"
    if text.strip().lower() == "auto":
        return None
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise ConfigError(f"{option} must be a number of vectors (or auto), not {text!r}") from None
    if value < 0:
        raise ConfigError(f"{option} must be >= 0, not {value}")
    return value


def policy_changes(compressed: str | None, compressed_above: str | None, exact_below: str | None,
                   on_disk: bool | None, nlist_factor: float | None = None) -> dict[str, Any]:
    """The :class:`~csip_reid.gallery.index.IndexPolicy` fields the options change (others keep their value).

    Raises:
        ConfigError: A value that is not a compressed kind or a vector count.
    """
    from csip_reid.gallery.kinds import COMPRESSED_KINDS

    changes: dict[str, Any] = {}
    if compressed is not None:
        if compressed.lower() not in COMPRESSED_KINDS:
            raise ConfigError(f"--compressed must be one of {', '.join(COMPRESSED_KINDS)}, not {compressed!r}")
        changes["compressed"] = compressed.lower()
    for field, option, text in (("compressed_max", "--compressed-above", compressed_above),
                                ("exact_max", "--exact-below", exact_below)):
        value = _count(option, text)
        if value != "keep":
            changes[field] = value
    if on_disk is not None:
        changes["on_disk"] = on_disk
    if nlist_factor is not None:
        if not 0 < nlist_factor <= 256:
            raise ConfigError(f"--nlist-factor must be in (0, 256], not {nlist_factor}")
        changes["nlist_factor"] = float(nlist_factor)
    return changes


@contextmanager
def _native_stdout_to_stderr() -> Iterator[None]:
    """Send what native code prints on stdout (FAISS's on-disk list resizes) to stderr meanwhile.

    Keeps stdout for the command's result (``--json`` stays parseable).
    """
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        try:
            ctypes.CDLL(None).fflush(None)
        except (OSError, AttributeError):
            pass
        os.dup2(saved, 1)
        os.close(saved)


def _line(d: dict[str, Any]) -> str:
    recall = "-" if d.get("tuned_recall") is None else f"{d['tuned_recall']:.3f}"
    if d.get("lists_file"):
        lists = f"lists on disk: {d['lists_file']}"
    elif d.get("on_disk"):
        lists = f"lists in memory (on disk once compressed, above {d['compressed_max']} vectors)"
    else:
        lists = "lists in memory"
    return (f"index: {d['kind']}  vectors: {d['ntotal']}  nlist: {d['nlist']}  nprobe: {d['nprobe']}  "
            f"recall@10: {recall}  bytes/vector: {d['bytes_per_vector']}  {lists}")


@click.command("reindex")
@click.option("--gallery", "gallery_dir", required=True, type=click.Path(file_okay=False))
@click.option("--compressed", help=f"Compressed index kind above --compressed-above: {compressed_help()}.")
@click.option("--compressed-above", help="Compress the index above this many vectors (auto: 2,000,000 at 512-d, "
              "scaled by 512/dim).")
@click.option("--exact-below", help="Search exactly below this many vectors (auto: 50,000 at 512-d, scaled by "
              "512/dim).")
@click.option("--on-disk/--in-memory", "on_disk", default=None, help="Keep a compressed index's inverted lists "
              "in a memory-mapped file beside the index, or in memory.")
@click.option("--nlist-factor", type=float, help="IVF lists per sqrt(N) (default 2). More lists partition "
              "weakly clustered galleries better at 10M+ (bench/README.md), at a longer training.")
@click.option("--json", "as_json", is_flag=True, help="Print the index description as JSON.")
def reindex(gallery_dir: str, compressed: str | None, compressed_above: str | None, exact_below: str | None,
            on_disk: bool | None, nlist_factor: float | None, as_json: bool) -> None:
    """Store a new index policy in the gallery and rebuild its index under it (bounded memory).

    Options not given keep the stored value; later `reid index` runs keep the policy.
    """
    from csip_reid.gallery.store import Gallery

    changes = policy_changes(compressed, compressed_above, exact_below, on_disk, nlist_factor)
    with _native_stdout_to_stderr(), Gallery.open(gallery_dir) as g:
        d = {**g.reindex(dataclasses.replace(g.policy, **changes)), "policy": g.policy.to_dict()}
    click.echo(json.dumps(d, indent=2) if as_json else _line(d))


def register(group: click.Group) -> None:
    """Attach ``reid gallery reindex`` to the ``gallery`` group."""
    gallery = group.commands.get("gallery")
    if isinstance(gallery, click.Group):
        gallery.add_command(reindex)
