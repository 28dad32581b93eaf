"""Evidence export: a zip with the clips of chosen appearances, thumbnails, a report and a manifest.

The manifest (``manifest.json``) lists, for every appearance, its camera, video, times and tracklet
id, the SHA-256 of the source video it was cut from, and the SHA-256 and size of every other file
in the zip, so a recipient can check that nothing was altered: ``sha256sum`` of each extracted file
must match, and the source hashes must match the originals kept on the case's storage.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import zipfile
from pathlib import Path
from typing import Any

from csip_reid.core import __version__
from csip_reid.core.errors import ReidError
from csip_reid.core.video import cut_clip
from csip_reid.core.walltime import now_iso
from csip_reid.gallery.report import render_report
from csip_reid.serve.media import safe_file
from csip_reid.serve.state import GalleryState

MAX_APPEARANCES = 200
#: Seconds of context kept before and after an appearance in its clip.
PAD_S = 1.0


class ExportError(ReidError):
    """An export names no tracklet, too many, or one the gallery does not hold."""


_hash_cache: dict[tuple[str, int, int], str] = {}
_hash_lock = threading.Lock()


def sha256_file(path: Path, block: int = 4 << 20) -> str:
    """SHA-256 of a file (source videos cached by path, size and modification time)."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _hash_lock:
        if key in _hash_cache:
            return _hash_cache[key]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    digest = h.hexdigest()
    with _hash_lock:
        _hash_cache[key] = digest
    return digest


def parse_ids(text: str) -> list[int]:
    """``"3,5,9"`` → ``[3, 5, 9]`` (duplicates dropped, order kept).

    Raises:
        ExportError: Empty, not integers, or more than :data:`MAX_APPEARANCES`.
    """
    try:
        ids = list(dict.fromkeys(int(x) for x in text.split(",") if x.strip()))
    except ValueError:
        raise ExportError(f"tracklets must be comma-separated ids, got {text[:40]!r}") from None
    if not ids:
        raise ExportError("choose at least one appearance to export")
    if len(ids) > MAX_APPEARANCES:
        raise ExportError(f"at most {MAX_APPEARANCES} appearances per export, got {len(ids)}")
    return ids


def build_export(state: GalleryState, ids: list[int], work: Path, extra: dict[str, Any] | None = None) -> Path:
    """Write ``work/evidence.zip`` for the given tracklets and return its path.

    Args:
        state: The served gallery.
        ids: Tracklet ids, in the order they are listed.
        work: An empty folder for the clips and the zip (the caller deletes it).
        extra: More facts for the manifest (who/what asked: query, identity...).

    Raises:
        ExportError: An unknown tracklet id, or a source video that is no longer on disk.
    """
    staged: list[tuple[str, Path]] = []
    appearances, sources = [], {}
    hits = []
    for n, tid in enumerate(ids, 1):
        t = state.tracklet(tid)  # GalleryError "no tracklet N" (a 404) for an unknown id
        src = safe_file(t["video"])
        if src is None:
            raise ExportError(f"tracklet {tid}: its source video {t['video']} is no longer on disk")
        fps = t["fps"] or 25.0
        f0 = max(0, t["start_frame"] - int(PAD_S * fps))
        f1 = t["end_frame"] + 1 + int(PAD_S * fps)
        clip_name = f"clips/{n:03d}_t{tid}_{Path(t['video_name']).stem}_{f0}-{f1}.mp4"
        clip = work / clip_name
        cut_clip(src, clip, f0, f1)
        staged.append((clip_name, clip))
        thumb = safe_file(state.thumb_path(tid), inside=state.root / "thumbs")
        thumb_name = None
        if thumb is not None:
            thumb_name = f"thumbs/{n:03d}_t{tid}.jpg"
            staged.append((thumb_name, thumb))
        if t["video"] not in sources:
            sources[t["video"]] = {"path": t["video"], "name": t["video_name"], "camera": t["camera"],
                                   "sha256": sha256_file(src), "size": src.stat().st_size}
        appearances.append({
            "tracklet_id": tid, "camera": t["camera"], "video": t["video"], "video_id": t["video_id"],
            "track_id": t["track_id"], "start_frame": t["start_frame"], "end_frame": t["end_frame"],
            "start_s": t["start_s"], "end_s": t["end_s"], "start_time": t.get("start_time"),
            "end_time": t.get("end_time"), "clip": clip_name, "clip_frames": [f0, f1],
            "thumbnail": thumb_name, "source_sha256": sources[t["video"]]["sha256"],
        })
        hits.append({"rank": n, "score": 1.0, "video": t["video"], "camera": t["camera"],
                     "track_id": t["track_id"], "start_frame": t["start_frame"], "end_frame": t["end_frame"],
                     "start_s": t["start_s"], "end_s": t["end_s"], "thumbnail": str(thumb) if thumb else None,
                     "tracklet_id": tid})
    report = work / "report.html"
    report.write_text(render_report({"appearances": len(ids), "gallery": str(state.root)}, hits,
                                    title="csip-reid evidence export"), encoding="utf-8")
    staged.append(("report.html", report))
    files = {name: {"sha256": sha256_file(p), "size": p.stat().st_size} for name, p in staged}
    manifest = {
        "format": "csip-reid/evidence", "version": 1, "generator": f"csip-reid {__version__}",
        "created": now_iso(), "gallery": str(state.root),
        "appearances": appearances, "sources": list(sources.values()), "files": files, **(extra or {}),
    }
    out = work / "evidence.zip"
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, p in staged:
            z.write(p, name, compress_type=zipfile.ZIP_STORED if name.endswith((".mp4", ".jpg")) else None)
        z.writestr("manifest.json", json.dumps(manifest, indent=2))
    return out


def remove_tree(folder: Path) -> None:
    """Delete an export's work folder (run after the response is sent)."""
    shutil.rmtree(folder, ignore_errors=True)
