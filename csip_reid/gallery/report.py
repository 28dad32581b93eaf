"""A self-contained HTML report of one search: the query and its ranked hits.

Thumbnails are embedded as base64 JPEG data URIs and the CSS is inline, so the single file can be
mailed or archived with a case. Every piece of text (file names included) is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from csip_reid.core import __version__
from csip_reid.core.walltime import now_iso
from csip_reid.gallery.schema import Hit
from csip_reid.gallery.thumbs import encode_jpeg

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; margin-bottom: 0.2em; }
.meta { color: #666; font-size: 0.85em; margin-bottom: 1.5em; }
.query { display: flex; gap: 1.5em; align-items: flex-start; margin-bottom: 2em; }
table { border-collapse: collapse; }
th, td { border-bottom: 1px solid #ddd; padding: 0.35em 0.8em; text-align: left; vertical-align: middle; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img.thumb { max-height: 128px; max-width: 96px; border-radius: 3px; }
.kv th { background: none; font-weight: 600; padding-left: 0; }
.missing { color: #999; font-style: italic; }
"""


def _e(value: Any) -> str:
    """HTML-escape any value's text (quotes included)."""
    return html.escape("" if value is None else str(value), quote=True)


def clock(seconds: float) -> str:
    """``mm:ss`` (``h:mm:ss`` from one hour on) of a time in seconds."""
    total = max(0, int(round(float(seconds))))
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _data_uri(image: str | Path | np.ndarray | None) -> str | None:
    """A ``data:image/jpeg;base64,...`` URI for an image file or BGR array; None if unavailable."""
    if image is None:
        return None
    if isinstance(image, np.ndarray):
        data = encode_jpeg(image)
    else:
        path = Path(image)
        if not path.is_file():
            return None
        if path.suffix.lower() in (".jpg", ".jpeg"):
            data = path.read_bytes()
        else:
            img = cv2.imread(str(path), cv2.IMREAD_COLOR)
            data = None if img is None else encode_jpeg(img)
    if not data:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")


def _img(image: str | Path | np.ndarray | None, alt: str) -> str:
    uri = _data_uri(image)
    if uri is None:
        return '<span class="missing">no image</span>'
    return f'<img class="thumb" src="{uri}" alt="{_e(alt)}">'


def _hit_dict(hit: Hit | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(hit, Hit):
        return {**hit.to_dict(), "video_name": hit.video_name}
    d = dict(hit)
    d.setdefault("video_name", Path(str(d.get("video", ""))).name)
    return d


def _hit_row(d: dict[str, Any]) -> str:
    span = f"{clock(d.get('start_s', 0))}–{clock(d.get('end_s', 0))}"
    if d.get("start_time"):  # wall-clock times when the video's start is known
        span += f" ({d['start_time']} – {d.get('end_time')})"
    frames = f"{d.get('start_frame', '')}–{d.get('end_frame', '')}"
    alt = f"rank {d.get('rank')} {d.get('video_name')} track {d.get('track_id')}"
    return (
        "<tr>"
        f'<td class="num">{_e(d.get("rank"))}</td>'
        f'<td class="num">{float(d.get("score", 0.0)):.3f}</td>'
        f'<td title="{_e(d.get("video"))}">{_e(d.get("video_name"))}</td>'
        f"<td>{_e(d.get('camera'))}</td>"
        f'<td class="num">{_e(d.get("track_id"))}</td>'
        f'<td class="num">{_e(span)}</td>'
        f'<td class="num">{_e(frames)}</td>'
        f"<td>{_img(d.get('thumbnail'), alt)}</td>"
        "</tr>"
    )


def _kv_table(items: Mapping[str, Any]) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in items.items())
    return f'<table class="kv">{rows}</table>'


def render_report(query: Mapping[str, Any], hits: Sequence[Hit | Mapping[str, Any]],
                  title: str = "csip-reid search results", context: Mapping[str, Any] | None = None) -> str:
    """The report as an HTML string (see :func:`write_report`)."""
    q = dict(query)
    q_image = q.pop("thumbnail", None)
    generated = now_iso()
    meta = f"generated {generated} by csip-reid {__version__}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<div class="meta">{_e(meta)}</div>',
    ]
    if context:
        parts.append(_kv_table(context))
    parts += [
        "<h2>Query</h2>",
        f'<div class="query" id="query">{_img(q_image, "query")}{_kv_table(q)}</div>',
        f"<h2>{len(hits)} result{'s' if len(hits) != 1 else ''}</h2>",
        "<table><thead><tr><th>rank</th><th>score</th><th>video</th><th>camera</th><th>track</th>"
        "<th>time</th><th>frames</th><th>thumbnail</th></tr></thead><tbody>",
        *(_hit_row(_hit_dict(h)) for h in hits),
        "</tbody></table></body></html>",
    ]
    return "\n".join(parts) + "\n"


def write_report(path: str | Path, query: Mapping[str, Any], hits: Sequence[Hit | Mapping[str, Any]],
                 title: str = "csip-reid search results", context: Mapping[str, Any] | None = None) -> Path:
    """Write a self-contained HTML report of one search.

    Args:
        path: Output ``.html`` file.
        query: Query summary (e.g. ``Tracklet.summary()``); its ``thumbnail`` entry, an image path
            or a BGR array, is embedded, the other entries are listed.
        hits: The ranked results (:class:`Hit` objects or their ``to_dict()``).
        title: Page title.
        context: Extra facts listed under the title (gallery path, embedder, k...).

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(render_report(query, hits, title, context), encoding="utf-8")
    os.replace(tmp, path)
    return path
