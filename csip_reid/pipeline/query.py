"""``reid query``: a clip, a photo or a folder of crops through the gallery's own pipeline, then search.

The source decides the route: a video clip is detected, tracked and embedded like an indexed
video; a photo (a full frame) is detected and its largest person (or ``box``) embedded; a folder
holds crops of one person (see :mod:`csip_reid.pipeline.query_sources`). The hits then go through
:mod:`csip_reid.pipeline.query_post`: wall-clock filters, optional expansion with the best
identity's members and k-reciprocal re-ranking, and grouping by person.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from csip_reid.core.errors import GalleryError, NoPersonError, VideoError
from csip_reid.core.tracklet import Tracklet
from csip_reid.core.weights import cache_dir
from csip_reid.pipeline.settings import PipelineSettings

if TYPE_CHECKING:
    from csip_reid.gallery.store import Gallery
    from csip_reid.pipeline.indexer import Pipeline

MODES = ("appearance", "skeleton", "fused")
#: A photo's query person is the largest detection at least this confident.
PHOTO_CONF = 0.3


@dataclass
class QueryResult:
    """One query tracklet, its ranked hits, the identity of each hit, and (grouped) the people.

    ``thumbnail`` is the query person's picture as JPEG bytes (None for a stored tracklet, whose
    picture is the gallery's file named in ``query["thumbnail"]``).
    """

    query: dict[str, Any]
    hits: list[Any] = field(default_factory=list)
    identities: dict[int, int | None] = field(default_factory=dict)
    people: list[dict[str, Any]] | None = None
    thumbnail: bytes | None = None

    def to_dict(self) -> dict[str, Any]:
        hits = [{**h.to_dict(), "identity": self.identities.get(h.tracklet_id)} for h in self.hits]
        out: dict[str, Any] = {"query": self.query, "hits": hits}
        if self.people is not None:
            out["people"] = self.people
        return out


def gallery_settings(gallery: Gallery, **overrides: Any) -> PipelineSettings:
    """The pipeline settings stored in a gallery manifest, with explicit overrides applied."""
    return recorded_settings(gallery.embedder, **overrides)


def recorded_settings(emb: dict[str, Any], **overrides: Any) -> PipelineSettings:
    """The pipeline settings of a gallery's embedder record (its manifest), non-None ``overrides`` applied."""
    stored = dict(emb.get("pipeline") or {})
    stored.setdefault("scan", "full")  # galleries from before adaptive scanning detected every frame
    stored["embedder"] = emb.get("spec", stored.get("embedder"))
    stored.update({k: v for k, v in overrides.items() if v is not None})
    return PipelineSettings.from_dict(stored)


def pick_queries(tracklets: list[Tracklet], track_id: int | None, all_tracks: bool) -> list[Tracklet]:
    """The longest tracklet by default, one by track id, or all of them."""
    if not tracklets:
        raise NoPersonError("no person found in the query clip (no track long enough)")
    if track_id is not None:
        chosen = [t for t in tracklets if t.track_id == track_id]
        if not chosen:
            ids = ", ".join(str(t.track_id) for t in tracklets)
            raise NoPersonError(f"track id {track_id} not found in the query clip; tracks: {ids}")
        return chosen
    if all_tracks:
        return sorted(tracklets, key=lambda t: t.start_frame)
    return [max(tracklets, key=lambda t: (len(t), t.mean_box_height))]


def query_pipeline(gallery: Gallery, **overrides: Any) -> Pipeline:
    """The gallery's own pipeline, built from its manifest (``overrides`` applied) and checked against it.

    Build it once and pass it to :func:`run_query` for every query of the same gallery (``reid serve``).

    Raises:
        GalleryError: The embedder it builds is not the one the gallery was indexed with.
    """
    from csip_reid.gallery.store import embedder_info
    from csip_reid.pipeline.indexer import Pipeline

    pipeline = Pipeline(gallery_settings(gallery, **overrides))
    pipeline.embedder.use_recorded_pooling(gallery.embedder)  # pool the queries as the gallery was pooled
    gallery.check_compatible(embedder_info(pipeline.embedder))
    return pipeline


def _save_thumbnail(data: bytes | None, folder: Path, name: str) -> str:
    """Write a query's JPEG into ``folder`` (what ``reid query`` prints and reports); its path, or ``""``."""
    if data is None:
        return ""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return str(path)


def search_tracklet(gallery: Gallery, t: Tracklet, top_k: int, mode: str, fuse_weight: float) -> list[Any]:
    """Search one embedded tracklet; fused/skeleton modes re-rank by skeleton similarity."""
    if mode == "appearance":
        return gallery.search(t.embedding[None], k=top_k)[0]
    skel = t.skeleton_embedding
    if skel is None:
        raise GalleryError(f"--mode {mode} needs a skeleton embedding of the query: index and query with "
                           "--pose and a skeleton-capable embedder")
    from csip_reid.gallery.fused import search_fused

    return search_fused(gallery, t.embedding, np.asarray(skel, np.float32), k=top_k, mode=mode, weight=fuse_weight)


def run_query(gallery: Gallery | str | Path, source: str | Path, top_k: int = 10, track_id: int | None = None,
              all_tracks: bool = False, mode: str = "appearance", fuse_weight: float = 0.5,
              progress: bool = False, start_s: float | None = None, end_s: float | None = None, *,
              box: str | tuple | None = None, group: str | None = None, since: str | None = None,
              until: str | None = None, expand: bool = False, rerank: bool = False, camera: str | None = None,
              pipeline: Pipeline | None = None, thumbs: str | Path | bool = True, **overrides: Any) -> list[QueryResult]:
    """Search the gallery for the person in ``source``: a clip (or its ``[start_s, end_s)`` part), a
    photo (largest person, or ``box``), or a folder of crops. ``group="person"`` adds ``people``.

    ``camera`` names a clip's camera (default: its file stem); the gallery's stored camera map
    turns it into the SIE camera index, as for the gallery's own videos. A clip is opened once.

    Args:
        gallery: A gallery folder (opened and closed here) or an open gallery.
        pipeline: The gallery's pipeline from :func:`query_pipeline`, built once for many queries;
            None: the models this query needs are built from the manifest (with ``overrides``).
        thumbs: Where the query thumbnails are written and named in ``query["thumbnail"]``: True,
            the cache's ``queries`` folder; a folder; False: not written (each result's
            ``thumbnail`` holds the JPEG bytes either way).
    """
    from csip_reid.core.walltime import parse_time
    from csip_reid.gallery.store import Gallery
    from csip_reid.gallery.thumbs import encode_jpeg
    from csip_reid.pipeline.query_sources import is_image, parse_box

    if mode not in MODES:
        raise GalleryError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if group not in (None, "person", "tracklet"):
        raise GalleryError(f"unknown --group {group!r}; choose person or tracklet")
    source = str(source)
    kind = "folder" if Path(source).is_dir() else "image" if is_image(source) else "clip"
    if kind != "clip" and mode != "appearance":
        raise NoPersonError(f"--mode {mode} needs a clip (a skeleton is made from motion); photos and crop "
                            "folders are searched by appearance")
    box_ = parse_box(box)
    for t in (since, until):
        if t is not None:
            parse_time(t)  # a bad time fails before any work
    if end_s is not None and end_s <= (start_s or 0.0):
        raise NoPersonError(f"empty time range {start_s}-{end_s} s")
    if not Path(source).exists():  # before any model is built (a clip is opened once, by the extraction)
        if kind == "clip":
            raise VideoError(f"cannot open video {source}: no such file")
        raise NoPersonError(f"query {source} does not exist")
    own = isinstance(gallery, str | Path)
    g = Gallery.open(gallery) if own else gallery
    try:
        if len(g) == 0:
            raise GalleryError(f"gallery {g.root} is empty: run `reid index` first")
        if kind == "clip":
            pipe = pipeline or query_pipeline(g, **overrides)
            span = None if start_s is None and end_s is None else (start_s, end_s)
            tracklets = list(pipe.tracklets(source, camera=camera, progress=progress, span_s=span))
            queries, extra = pick_queries(tracklets, track_id, all_tracks), {"kind": kind}
            pipe.complete(queries)
        else:
            queries, extra = _still_query(g, pipeline, kind, source, box_, overrides)
        folder = cache_dir() / "queries" if thumbs is True else Path(thumbs) if thumbs else None
        results = []
        for t in queries:
            jpeg = None if t.thumbnail is None else encode_jpeg(t.thumbnail, max_height=t.thumbnail.shape[0])
            q = {**t.summary(), **extra, "video": str(Path(source).resolve())}
            if folder is not None:
                q["thumbnail"] = _save_thumbnail(jpeg, folder, f"{Path(source).stem}_t{t.track_id}_{t.start_frame}.jpg")
            r = answer(g, t, q, top_k, mode=mode, fuse_weight=fuse_weight, group=group, since=since, until=until,
                       expand=expand, rerank=rerank)
            r.thumbnail = jpeg
            results.append(r)
    finally:
        if own:
            g.close()
    return results


def _still_query(gallery: Gallery, pipeline: Pipeline | None, kind: str, source: str, box: tuple | None,
                 overrides: dict[str, Any]) -> tuple[list[Tracklet], dict[str, Any]]:
    """The embedded query of a folder of crops or a photo, and facts for its record.

    Without a ``pipeline`` only the models this query needs are built (the embedder, and the
    detector for a photo without a box).
    """
    from csip_reid.pipeline.query_sources import folder_tracklet, photo_tracklet

    extra: dict[str, Any] = {"kind": kind}
    settings = gallery_settings(gallery, **overrides) if pipeline is None else pipeline.settings
    if pipeline is not None:
        embedder = pipeline.embedder
    else:
        from csip_reid.gallery.store import embedder_info
        from csip_reid.pipeline.embed import create_embedder

        embedder = create_embedder(settings.embedder, device=settings.device)
        embedder.use_recorded_pooling(gallery.embedder)  # pool the query as the gallery was pooled
        gallery.check_compatible(embedder_info(embedder))
    if kind == "folder":
        t = folder_tracklet(source)
    else:
        detector = None
        if box is None and pipeline is not None:
            detector = pipeline.detector
        elif box is None:
            from csip_reid.pipeline.detect import create_detector

            detector = create_detector(settings.detector, device=settings.device,
                                       conf=max(settings.detector_conf, PHOTO_CONF))
        t, facts = photo_tracklet(source, detector, box, min_conf=PHOTO_CONF)
        extra.update(facts)
    embedder.embed_tracklets([t])
    return [t], extra


def answer(gallery: Gallery, t: Tracklet, q: dict[str, Any], top_k: int, mode: str = "appearance",
           fuse_weight: float = 0.5, group: str | None = None, since: str | None = None, until: str | None = None,
           expand: bool = False, rerank: bool = False, exclude: int | None = None) -> QueryResult:
    """Search one embedded query tracklet and post-process its hits (see the module docstring)."""
    from csip_reid.pipeline import query_post as post

    wide = since is not None or until is not None or group == "person" or rerank or exclude is not None
    k = min(len(gallery), max(top_k * 10, 100)) if wide else top_k
    hits = search_tracklet(gallery, t, k + (exclude is not None), mode, fuse_weight)
    vec = np.asarray(t.embedding, np.float32)
    if expand:
        found = post.expansion(gallery, vec, [h for h in hits if h.tracklet_id != exclude])
        if found is not None:
            vec, q["expanded_with"] = found
            hits = gallery.search(vec[None], k=k + (exclude is not None))[0]
    if exclude is not None:
        hits = [replace(h, rank=i) for i, h in enumerate((h for h in hits if h.tracklet_id != exclude), start=1)]
    hits = post.within(hits, since, until)
    if rerank:
        hits = post.rerank(gallery, vec, hits[: max(top_k, 100)])
    if group == "person":
        identities, people = post.group_people(gallery, hits, top_k)
        return QueryResult(q, hits[:top_k], identities, people)
    from csip_reid.identity import identity_of

    return QueryResult(q, hits[:top_k], identity_of(gallery, [h.tracklet_id for h in hits[:top_k]]))


def run_query_tracklet(gallery: Gallery | str | Path, tracklet_id: int, top_k: int = 10, group: str | None = None,
                       since: str | None = None, until: str | None = None, expand: bool = False,
                       rerank: bool = False, mode: str = "appearance") -> QueryResult:
    """"Find this person": search with a stored tracklet's vectors; the tracklet itself is not a hit.

    Used by ``reid query`` callers and ``reid serve``. ``gallery`` is a gallery folder (opened and
    closed here) or an open gallery.

    Raises:
        GalleryError: No such tracklet (``no tracklet ...``).
    """
    from csip_reid.gallery.store import Gallery

    own = isinstance(gallery, str | Path)
    g = Gallery.open(gallery) if own else gallery
    try:
        rec = g.get_tracklet(int(tracklet_id))
        t = rec.to_tracklet()
        q = {**t.summary(), "kind": "tracklet", "tracklet_id": rec.id, "thumbnail": rec.thumbnail or "",
             "start_time": rec.start_time, "end_time": rec.end_time}
        return answer(g, t, q, top_k, mode=mode, group=group, since=since, until=until, expand=expand,
                      rerank=rerank, exclude=rec.id)
    finally:
        if own:
            g.close()


def format_table(result: QueryResult) -> str:
    """Plain-text ranked table for the terminal (people first when grouped)."""
    q = result.query
    kind = q.get("kind", "clip")
    if kind == "clip":
        head = (f"query: {Path(q['video']).name} track {q['track_id']} frames {q['start_frame']}-{q['end_frame']} "
                f"({_mmss(q['start_s'])}-{_mmss(q['end_s'])})")
    elif kind == "image":
        head = f"query: photo {Path(q['video']).name} box {q.get('box')}"
    elif kind == "folder":
        head = f"query: {q['num_samples']} crops in {q['video']}"
    else:
        head = f"query: tracklet {q.get('tracklet_id')} of {Path(q['video']).name}"
    if q.get("expanded_with"):
        e = q["expanded_with"]
        head += f"; expanded with identity {e['identity']} ({len(e['tracklets'])} tracklets)"
    lines = [head]
    if result.people is not None:
        lines.append(f"{'person':>6}  {'score':>6}  {'seen':>4}  {'cameras':<24} {'first seen':<26} last seen")
        for p in result.people:
            who = "-" if p["identity"] is None else str(p["identity"])
            cams = ", ".join(p["cameras"])
            lines.append(f"{who:>6}  {p['score']:>6.3f}  {p['appearances']:>4}  {cams[:24]:<24} "
                         f"{p['first_seen'] or '?':<26} {p['last_seen'] or '?'}"
                         + (f"  ({p['name']})" if p.get("name") else ""))
        lines.append("")
    lines.append(f"{'rank':>4}  {'score':>6}  {'video':<32} {'camera':<14} {'track':>5}  {'person':>6}  "
                 f"{'time':<13} wall-clock")
    for h in result.hits:
        name = Path(h.video).name
        name = name if len(name) <= 32 else "…" + name[-31:]
        who = result.identities.get(h.tracklet_id)
        lines.append(
            f"{h.rank:>4}  {h.score:>6.3f}  {name:<32} {str(h.camera)[:14]:<14} {h.track_id:>5}  "
            f"{'-' if who is None else who:>6}  {f'{_mmss(h.start_s)}-{_mmss(h.end_s)}':<13} {h.start_time or ''}"
        )
    if not result.hits:
        lines.append("  (no hits)")
    return "\n".join(lines)


def _mmss(s: float) -> str:
    s = max(0.0, float(s))
    return f"{int(s // 60):02d}:{s % 60:04.1f}"
