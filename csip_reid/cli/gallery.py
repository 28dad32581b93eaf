"""``reid gallery info|merge|remove|reindex|set-time``: inspect or edit a gallery."""

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

from csip_reid.cli.common import gallery_option, json_option, open_gallery, quiet_option
from csip_reid.core.errors import ConfigError
from csip_reid.gallery.kinds import compressed_help


@click.group()
def gallery() -> None:
    """Inspect or edit a gallery."""


@gallery.command("info")
@gallery_option()
@json_option()
def gallery_info(gallery_dir: str, as_json: bool) -> None:
    """Counts, embedder, index type and videos of a gallery."""
    with open_gallery(gallery_dir) as g:
        info = g.info()
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    emb = info.get("embedder", {})
    idx = info.get("index", {})
    click.echo(f"gallery: {info['path']}  ({info.get('size_bytes', 0) / 1e6:.1f} MB)")
    click.echo(f"embedder: {emb.get('spec')} (dim {info.get('dim')}, fingerprint {info.get('fingerprint')})")
    click.echo(f"skeleton format: {info.get('skeleton_format') or 'none'}")
    click.echo(f"index: {idx.get('kind')} ({idx.get('ntotal')} vectors; exact up to {idx.get('exact_max')})")
    click.echo(f"index policy: {idx.get('compressed')} above {idx.get('compressed_max')} vectors, lists "
               f"{'on disk' if idx.get('on_disk') else 'in memory'} (change with `reid gallery reindex`)")
    click.echo(f"videos: {info.get('num_videos')}  tracklets: {info.get('num_tracklets')}  "
               f"failed: {info.get('num_failed')}")
    for v in info.get("videos", []):
        click.echo(f"  {v.get('tracklets', 0):>5} tracklets  {v.get('camera', '')!s:<16} {v.get('path')}")
    for v in info.get("partial", []):
        done = v.get("indexed_to_s")
        click.echo(f"  {v.get('tracklets', 0):>5} tracklets  {v.get('camera', '')!s:<16} {v.get('path')}  "
                   f"(partly indexed{f', up to {done:.0f} s' if done is not None else ''}: `reid index` resumes it)")
    for v in info.get("failed", []):
        click.echo(f"  failed: {v.get('path')}: {v.get('error')}")


@gallery.command("merge")
@click.argument("sources", nargs=-1, required=True, type=click.Path(file_okay=False))
@gallery_option("Destination gallery (created if missing).")
@quiet_option()
def gallery_merge(sources: tuple[str, ...], gallery_dir: str, quiet: bool) -> None:
    """Merge galleries indexed elsewhere (same embedder) into GALLERY; reruns skip what is there."""
    from csip_reid.gallery.merge import merge_galleries

    s = merge_galleries(gallery_dir, list(sources), progress=not quiet)
    click.echo(f"merged {s['videos_added']} videos ({s['tracklets_added']} tracklets); "
               f"{s['videos_skipped']} already present")
    for path in s["conflicts"]:
        click.echo(f"  conflict, not merged: {path} is in the gallery with other content", err=True)


@gallery.command("remove")
@click.argument("video")
@gallery_option()
def gallery_remove(video: str, gallery_dir: str) -> None:
    """Remove VIDEO (path, file name or id) and its tracklets from the gallery."""
    with open_gallery(gallery_dir) as g:
        n = g.remove_video(video)
    click.echo(f"removed {video}: {n} tracklets")


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


@gallery.command("reindex")
@gallery_option()
@click.option("--compressed", help=f"Compressed index kind above --compressed-above: {compressed_help()}.")
@click.option("--compressed-above", help="Compress the index above this many vectors (auto: 2,000,000 at 512-d, "
              "scaled by 512/dim).")
@click.option("--exact-below", help="Search exactly below this many vectors (auto: 50,000 at 512-d, scaled by "
              "512/dim).")
@click.option("--on-disk/--in-memory", "on_disk", default=None, help="Keep a compressed index's inverted lists "
              "in a memory-mapped file beside the index, or in memory.")
@click.option("--nlist-factor", type=float, help="IVF lists per sqrt(N) (default 2). More lists partition "
              "weakly clustered galleries better at 10M+ (bench/README.md), at a longer training.")
@json_option("Print the index description as JSON.")
def reindex(gallery_dir: str, compressed: str | None, compressed_above: str | None, exact_below: str | None,
            on_disk: bool | None, nlist_factor: float | None, as_json: bool) -> None:
    """Store a new index policy in the gallery and rebuild its index under it (bounded memory).

    Options not given keep the stored value; later `reid index` runs keep the policy.
    """
    changes = policy_changes(compressed, compressed_above, exact_below, on_disk, nlist_factor)
    with _native_stdout_to_stderr(), open_gallery(gallery_dir) as g:
        d = {**g.reindex(dataclasses.replace(g.policy, **changes)), "policy": g.policy.to_dict()}
    click.echo(json.dumps(d, indent=2) if as_json else _line(d))


@gallery.command("set-time")
@click.argument("video")
@click.argument("start_time")
@gallery_option()
def set_time(video: str, start_time: str, gallery_dir: str) -> None:
    """Set the wall-clock START_TIME (ISO 8601, e.g. 2024-05-01T08:00:00+02:00; 'none' clears) of VIDEO."""
    with open_gallery(gallery_dir) as g:
        vid = g.set_video_time(video, None if start_time.lower() == "none" else start_time)
        row = g.video(vid)
    click.echo(f"{row.path}: start time {row.start_time or 'unknown'}")
