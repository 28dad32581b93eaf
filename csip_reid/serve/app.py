"""The FastAPI application: JSON API, media by id, and the server-rendered pages.

Endpoints are plain ``def`` functions, so FastAPI runs them in its thread pool and each worker
thread reads the gallery through its own connection (:class:`~csip_reid.serve.state.GalleryState`).
"""

from __future__ import annotations

import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import Body, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.background import BackgroundTask

from csip_reid.core import __version__
from csip_reid.core.errors import GalleryError, ReidError
from csip_reid.serve import export, media, people
from csip_reid.serve.search import UploadSearch, decorate, query_tracklet, regroup
from csip_reid.serve.security import TokenMiddleware
from csip_reid.serve.state import GalleryState

PACKAGE = resources.files("csip_reid.serve")
DEFAULT_MAX_UPLOAD_MB = 200


def create_app(gallery_dir: str | Path, token: str | None = None, max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
               allowed_hosts: tuple[str, ...] | None = None, temp_root: str | Path | None = None) -> FastAPI:
    """The review app for one gallery.

    Args:
        gallery_dir: The gallery to serve (read-only, except feedback labels).
        token: If set, every request must carry it (see :mod:`csip_reid.serve.security`).
        max_upload_mb: Largest accepted upload.
        allowed_hosts: Without a token, the ``Host`` names accepted (None: any).
        temp_root: Where uploads and exports are staged (default: the system temp folder).

    Raises:
        GalleryError: ``gallery_dir`` is not a gallery.
    """
    state = GalleryState(gallery_dir)
    app = FastAPI(title="csip-reid review", version=__version__,
                  description="Search, review and export the people of a csip-reid gallery.",
                  docs_url=None, redoc_url=None)  # FastAPI's own docs load from a CDN: ours do not
    app.state.gallery = state
    app.state.uploads = UploadSearch(state)  # the gallery's models, built on the first upload
    app.add_middleware(TokenMiddleware, token=token, allowed_hosts=allowed_hosts)
    app.mount("/static", StaticFiles(directory=str(PACKAGE / "static")), name="static")
    temp = Path(temp_root) if temp_root else None
    _add_error_handlers(app, state)
    _add_pages(app, state, Jinja2Templates(directory=str(PACKAGE / "templates")))
    _add_gallery_api(app, state)
    _add_search_api(app, state, app.state.uploads, int(max_upload_mb * 1e6), temp)
    _add_media(app, state, media.CropCache())
    return app


def _add_error_handlers(app: FastAPI, state: GalleryState) -> None:
    """Our errors as JSON with a status (404 for a missing id, 413/415 for a refused upload); close at shutdown."""

    @app.exception_handler(ReidError)
    def _reid_error(request: Request, exc: ReidError) -> JSONResponse:
        status = 404 if isinstance(exc, GalleryError) and str(exc).startswith("no ") else 400
        if isinstance(exc, media.UploadError):
            status = 413 if "larger than" in str(exc) else 415
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.on_event("shutdown")
    def _close() -> None:
        state.close()


def _add_pages(app: FastAPI, state: GalleryState, templates: Jinja2Templates) -> None:
    """The server-rendered pages: overview, person, search, tracklet, video, API docs."""

    def page(request: Request, name: str, **context: Any) -> HTMLResponse:
        g = state.gallery()
        return templates.TemplateResponse(request, name, {"gallery_path": str(state.root),
                                                          "num_tracklets": len(g), **context})

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def overview(request: Request) -> HTMLResponse:
        videos = state.videos()
        return page(request, "overview.html", videos=videos, cameras=state.cameras(videos),
                    people=people.identities(state))

    @app.get("/person/{identity}", response_class=HTMLResponse, include_in_schema=False)
    def person_page(request: Request, identity: int) -> HTMLResponse:
        return page(request, "person.html", p=people.person(state, identity))

    @app.get("/search", response_class=HTMLResponse, include_in_schema=False)
    def search_page(request: Request, tracklet: int | None = None) -> HTMLResponse:
        return page(request, "search.html", tracklet=tracklet)

    @app.get("/tracklet/{tracklet_id}", response_class=HTMLResponse, include_in_schema=False)
    def tracklet_page(request: Request, tracklet_id: int) -> HTMLResponse:
        return page(request, "tracklet.html", t=state.tracklet(tracklet_id))

    @app.get("/video/{video_id}", response_class=HTMLResponse, include_in_schema=False)
    def video_page(request: Request, video_id: int) -> HTMLResponse:
        v = state.video(video_id)
        tracks = [state.tracklet(i) for i in state.tracklet_ids(video_id)]
        return page(request, "video.html", v=v, tracks=tracks)

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        return page(request, "docs.html", spec=app.openapi())


def _add_gallery_api(app: FastAPI, state: GalleryState) -> None:
    """The read API (gallery, videos, tracklets, people) and the feedback labels."""

    @app.get("/api/gallery", tags=["gallery"])
    def api_gallery() -> dict[str, Any]:
        """Counts, embedder, index and the cameras of the gallery."""
        info = state.gallery().info()
        info["cameras"] = state.cameras()
        return info

    @app.get("/api/videos", tags=["gallery"])
    def api_videos() -> list[dict[str, Any]]:
        """Every video: camera, frames, fps, duration, status (indexed/failed), error, tracklet count."""
        return state.videos()

    @app.get("/api/videos/{video_id}", tags=["gallery"])
    def api_video(video_id: int) -> dict[str, Any]:
        """One video and the ids of its tracklets."""
        return {**state.video(video_id), "tracklet_ids": state.tracklet_ids(video_id)}

    @app.get("/api/tracklets/{tracklet_id}", tags=["gallery"])
    def api_tracklet(tracklet_id: int) -> dict[str, Any]:
        """One tracklet with its boxes per frame, sampled frames, video facts and identity."""
        t = state.tracklet(tracklet_id)
        t["identity"] = people.identity_of(state.gallery(), [tracklet_id]).get(tracklet_id)
        return t

    @app.get("/api/identities", tags=["people"])
    def api_identities() -> list[dict[str, Any]]:
        """Every person, as ``reid identities list --json`` prints it (most appearances first)."""
        return people.identities(state)

    @app.get("/api/identities/{identity}", tags=["people"])
    def api_identity(identity: int) -> dict[str, Any]:
        """One person: appearances with video ids, and a timeline with one lane per camera."""
        return people.person(state, identity)

    @app.post("/api/feedback", tags=["people"])
    def api_feedback(tracklet_id: int = Body(..., embed=True), same_as: int | None = Body(None, embed=True),
                     not_same: int | None = Body(None, embed=True),
                     name: str | None = Body(None, embed=True, max_length=200)) -> dict[str, Any]:
        """Label a tracklet "same person" as another, "not the same" as another, or name its person.

        Stored as identity labels (those ``reid identities label`` writes); returns the label and
        the identities of both tracklets now.
        """
        out = people.feedback(state, tracklet_id, same_as=same_as, not_same=not_same, name=name)
        state.reset()
        return out

    @app.get("/api/labels", tags=["people"])
    def api_labels() -> list[dict[str, Any]]:
        """Every stored label, oldest first."""
        return people.all_labels(state)


def _add_search_api(app: FastAPI, state: GalleryState, uploads: UploadSearch, max_bytes: int,
                    temp: Path | None) -> None:
    """Search by upload or tracklet, regrouping, and the evidence export (staged under ``temp``)."""

    @app.post("/api/regroup", tags=["search"])
    def api_regroup(result: dict[str, Any] = Body(...)) -> dict[str, Any]:
        """Group the hits of an earlier ``/api/query`` answer by the identities stored now."""
        if not isinstance(result.get("hits"), list) or not isinstance(result.get("query"), dict):
            raise HTTPException(422, "send a /api/query answer: {query, hits}")
        return decorate(state, regroup(state, result))

    @app.post("/api/query", tags=["search"])
    def api_query(file: UploadFile | None = File(None, description="A clip or a photo of the person."),
                  tracklet_id: int | None = Form(None, description="Or: a tracklet of the gallery."),
                  top_k: int = Form(10), mode: str = Form("appearance"),
                  start_s: float | None = Form(None, description="Only this part of the clip: start (s)."),
                  end_s: float | None = Form(None, description="End (s)."),
                  since: str | None = Form(None, description="Only hits after this wall-clock time (ISO 8601)."),
                  until: str | None = Form(None, description="Only hits before this time.")) -> dict[str, Any]:
        """Search the gallery; returns what ``reid query --json --group person`` prints, plus media URLs."""
        if (file is None) == (tracklet_id is None):
            raise HTTPException(422, "send either a file or a tracklet_id")
        since, until = since or None, until or None
        if tracklet_id is not None:
            return decorate(state, query_tracklet(state, tracklet_id, top_k, mode, since, until))
        up = media.save_upload(file.file, file.filename, max_bytes, temp)
        try:
            return decorate(state, uploads(up.path, top_k, mode, start_s, end_s, since, until))
        finally:
            up.cleanup()

    @app.get("/api/export", tags=["evidence"])
    def api_export(tracklets: str = Query(..., description="Comma-separated tracklet ids.")) -> FileResponse:
        """A zip: clips cut from the sources, thumbnails, report.html and a manifest with SHA-256s."""
        ids = export.parse_ids(tracklets)
        work = Path(tempfile.mkdtemp(prefix="reid-export-", dir=temp))
        try:
            path = export.build_export(state, ids, work)
        except BaseException:
            export.remove_tree(work)
            raise
        return FileResponse(path, media_type="application/zip", filename="evidence.zip",
                            background=BackgroundTask(export.remove_tree, work))


def _add_media(app: FastAPI, state: GalleryState, crops: media.CropCache) -> None:
    """Media by gallery id: source videos, decoded frames, thumbnails, crop strips."""

    @app.get("/media/video/{video_id}", tags=["media"])
    def media_video(video_id: int) -> FileResponse:
        """The source video of an indexed video id (byte ranges: 206 with ``Range``)."""
        path = media.safe_file(state.video_path(video_id))
        if path is None:
            raise HTTPException(404, f"no video file for video {video_id}")
        return FileResponse(path, media_type=media.media_type(path))

    @app.get("/media/frame/{video_id}", tags=["media"])
    def media_frame(video_id: int, frame: int = Query(..., ge=0, description="Frame index.")) -> Response:
        """One decoded frame as JPEG: the player's fallback for codecs the browser cannot play."""
        path = media.safe_file(state.video_path(video_id))
        data = None if path is None else media.frame_jpeg(path, frame)
        if data is None:
            raise HTTPException(404, f"no frame {frame} in video {video_id}")
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    @app.get("/media/thumb/{tracklet_id}", tags=["media"])
    def media_thumb(tracklet_id: int) -> FileResponse:
        """The stored thumbnail JPEG of a tracklet."""
        path = media.safe_file(state.thumb_path(tracklet_id), inside=state.root / "thumbs")
        if path is None:
            raise HTTPException(404, f"no thumbnail for tracklet {tracklet_id}")
        return FileResponse(path, media_type="image/jpeg")

    @app.get("/media/crops/{tracklet_id}", tags=["media"])
    def media_crops(tracklet_id: int) -> Response:
        """A strip of the tracklet's sampled crops, cut from its source video (JPEG)."""
        t = state.tracklet(tracklet_id)
        path = media.safe_file(state.video_path(t["video_id"]))
        boxes = {b[0]: b[2:] for b in t["boxes"]}
        data = None if path is None else crops.strip((tracklet_id, t["video_id"]), path, t["sample_frames"], boxes)
        if data is None:
            raise HTTPException(404, f"no crops for tracklet {tracklet_id}")
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})
