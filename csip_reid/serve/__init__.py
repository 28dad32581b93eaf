"""``reid serve``: a local review app over a gallery (FastAPI, server-rendered pages, plain JS).

Everything the pages need ships in this package (templates, scripts, styles): no CDN, no build
step. Only files the gallery knows are served, by id (see :mod:`csip_reid.serve.media`).
"""

from csip_reid.serve.app import create_app

__all__ = ["create_app"]
