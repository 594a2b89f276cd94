"""The publication server: the aggregate evidence of ``data/published/`` on 127.0.0.1, nothing else.

Browsers do not open ``file://`` links from an ``http://`` page, so ``make ui`` (port 3001) and
``make audit`` (port 3101) serve the reports, Data Docs, selection report and plots linked from Dagster.
What can be reached is decided by what is published: the server's root *is* the publication folder,
and the data layers (raw, validated, prepared, production batches, predictions, quarantine) and the
Dagster and MLflow stores live outside it, so no URL names them. Serving is Starlette's ``StaticFiles``
under uvicorn: the path is percent-decoded once by uvicorn before anything is decided, normalized, and
resolved with symlinks followed to their target, which must still lie inside the folder; there are no
directory listings. Two rules are added on top: hidden names (``.``-prefixed, e.g. the temporary files
of an atomic write) are never served, and every response says ``nosniff`` so a browser shows each file
as its declared type only.
"""

from __future__ import annotations

import argparse
import mimetypes
from pathlib import Path

from mlcomops_assets.settings import ProjectPaths, default_home

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3001

# Markdown sources are published beside their rendered HTML; a browser shows text/plain as text.
mimetypes.add_type("text/plain", ".md")

_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]


def _refuse(status: int, reason: str):
    from starlette.responses import PlainTextResponse

    return PlainTextResponse(reason, status_code=status, headers={"x-content-type-options": "nosniff"})


class _PublicationGuard:
    """ASGI middleware: only GET/HEAD, no hidden path segments, security headers on every answer."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":  # websockets: nothing is served that way
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _refuse(405, "only GET and HEAD")(scope, receive, send)
            return
        # scope["path"] is already percent-decoded by the server: decide on what will be opened.
        segments = scope["path"].replace("\\", "/").split("/")
        if any(s.startswith(".") or "\x00" in s for s in segments):
            await _refuse(404, "not found")(scope, receive, send)
            return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *_SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def build_app(published_dir: Path):
    """The ASGI app serving ``published_dir`` (created if missing, so a fresh project starts)."""
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    published_dir.mkdir(parents=True, exist_ok=True)
    # html=False: a directory is a 404, never a listing; follow_symlink=False: Starlette resolves the
    # real path and refuses it unless it lies inside the folder.
    static = StaticFiles(directory=str(published_dir), html=False, follow_symlink=False)
    # Starlette's app turns StaticFiles' HTTP exceptions into plain 404/405 answers.
    return _PublicationGuard(Starlette(routes=[Mount("/", app=static)]))


def serve(port: int = DEFAULT_PORT, host: str = DEFAULT_HOST, home: Path | None = None) -> None:
    """Serve the publication folder of ``home`` (default: the project home) until interrupted."""
    import uvicorn

    published = ProjectPaths(home or default_home()).published_dir
    print(f"serving the publication folder {published} on http://{host}:{port}", flush=True)
    uvicorn.run(
        build_app(published),
        host=host,
        port=port,
        log_level="warning",
        server_header=False,
        lifespan="off",
        proxy_headers=False,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=DEFAULT_HOST, help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args()
    serve(args.port, args.host)


if __name__ == "__main__":
    main()
