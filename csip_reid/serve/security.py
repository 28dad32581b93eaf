"""Access control: a token for every request when the app listens beyond this machine.

The token may come as ``Authorization: Bearer T``, as the ``reid_token`` cookie, or once as
``?token=T`` in a page URL (the link ``reid serve`` prints); that last form sets the cookie and
redirects to the same URL without the token, so it does not stay in the address bar or history.
Without a token the app answers only requests whose ``Host`` is a loopback name, which stops a
web page elsewhere from reaching it through DNS rebinding.
"""

from __future__ import annotations

import ipaddress
import secrets

from starlette.datastructures import URL
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

COOKIE = "reid_token"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    """A random URL-safe token (32 bytes)."""
    return secrets.token_urlsafe(32)


def _host_name(host_header: str) -> str:
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class TokenMiddleware(BaseHTTPMiddleware):
    """401 for every request without the token (when one is set); Host check when none is.

    Args:
        app: The ASGI app.
        token: The required token, or None.
        allowed_hosts: Host names accepted without a token (None: any).
    """

    def __init__(self, app, token: str | None, allowed_hosts: tuple[str, ...] | None = None) -> None:
        super().__init__(app)
        self.token = token
        self.allowed_hosts = allowed_hosts

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if self.token is None:
            if self.allowed_hosts is not None and _host_name(request.headers.get("host", "")) not in self.allowed_hosts:
                return JSONResponse({"detail": "unexpected Host header"}, status_code=400)
            return await call_next(request)
        given = request.headers.get("authorization", "")
        bearer = given[7:] if given.lower().startswith("bearer ") else ""
        if bearer and secrets.compare_digest(bearer, self.token):
            return await call_next(request)
        cookie = request.cookies.get(COOKIE, "")
        if cookie and secrets.compare_digest(cookie, self.token):
            return await call_next(request)
        in_url = request.query_params.get("token", "")
        if in_url and secrets.compare_digest(in_url, self.token):
            clean = URL(str(request.url)).remove_query_params("token")
            target = clean.path + (f"?{clean.query}" if clean.query else "")
            response = RedirectResponse(target or "/", status_code=303)
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict")
            return response
        return JSONResponse({"detail": "a token is required: open the link `reid serve` printed, or send "
                             "Authorization: Bearer TOKEN"}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})
