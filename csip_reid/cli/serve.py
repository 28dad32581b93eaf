"""``reid serve``: the local review app over a gallery."""

from __future__ import annotations

import socket

import click

from csip_reid.cli.common import gallery_option
from csip_reid.core.errors import ReidError


class ServeError(ReidError):
    """The review app cannot start (missing extra, bad option)."""


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (``0``: any free port), handed to uvicorn.

    Binding here lets the command print the port it really got, and turns a port in use into
    one line.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as e:
        reason = (e.strerror or str(e)).split(" (while attempting to bind")[0]  # create_server adds the address
        raise ServeError(f"cannot listen on {host}:{port}: {reason}") from None


@click.command()
@gallery_option("Gallery folder to review.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Any other than this machine's loopback requires a token.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
@click.option("--token", envvar="REID_SERVE_TOKEN",
              help="Token every request must carry (default: none on loopback, a new random one otherwise).")
@click.option("--max-upload-mb", default=200.0, show_default=True, type=click.FloatRange(0.1),
              help="Largest clip or photo accepted for a search.")
def serve(gallery_dir: str, host: str, port: int, token: str | None, max_upload_mb: float) -> None:
    """Open a web page to search, play, label and export the people of a gallery."""
    try:
        import uvicorn

        from csip_reid.serve import create_app
        from csip_reid.serve.security import LOOPBACK_NAMES, is_loopback, new_token
    except ImportError as e:
        raise ServeError(f"reid serve needs the [serve] extra: pip install 'csip-reid[serve]' ({e.name} missing)") from None

    loopback = is_loopback(host)
    if not loopback and not token:
        token = new_token()
    allowed = None if token else LOOPBACK_NAMES
    app = create_app(gallery_dir, token=token, max_upload_mb=max_upload_mb, allowed_hosts=allowed)
    sock = _listen(host, port)
    port = sock.getsockname()[1]  # the port the system gave for --port 0
    shown = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::"):
        shown = "THIS-MACHINE"
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    click.echo(f"serving {app.state.gallery.root} on http://{host}:{port}/ (Ctrl-C stops)", err=True)
    click.echo(f"open: {url}", err=True)
    if token and not loopback:
        click.echo("every request must carry the token (the link sets a cookie); keep it private", err=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
