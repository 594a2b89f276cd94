"""The engineers' Dagster UI (``make ui``), with the request checks the Dagster webserver lacks.

``dagster dev`` and ``dagster-webserver`` (1.13) accept GraphQL mutations by POST *and* by
``GET /graphql?query=mutation{...}``, from any ``Origin`` and any ``Host``: a page open in the
engineer's browser could launch runs or wipe asset history (CSRF), and a DNS-rebound name could drive
the whole API. Dagster has no setting for this (``dagster_webserver/cli.py`` offers ``--read-only``,
nothing about origins or hosts; ``GraphQLServer.graphql_http_endpoint`` in
``dagster_webserver/graphql.py`` executes whatever document a GET carries, and on a POST whose content
type is neither JSON nor GraphQL it executes the document of the *URL* query string).

This module builds the webserver's ASGI app the way ``dagster-webserver``'s CLI does
(``WorkspaceProcessContext`` over ``workspace.yaml``, then
``create_app_from_workspace_process_context``) and adds one middleware that refuses, with 403 and a
short JSON reason:

* a ``Host`` other than ``127.0.0.1:<port>`` or ``localhost:<port>`` (DNS rebinding), on every request;
* a foreign ``Origin`` (or, without one, a ``Sec-Fetch-Site`` other than ``same-origin``/``none``) on
  every state-changing method, on every ``/graphql`` request and on every WebSocket;
* a GraphQL document that is not only queries unless it comes by POST, and any ``/graphql`` POST it
  cannot read the way Dagster will (content type other than JSON or GraphQL, batched lists, bad JSON,
  a document graphql-core cannot parse).

Clients without ``Origin`` and ``Sec-Fetch-Site`` (curl, scripts, the Dagster GraphQL client) are not
browsers and keep working. Served by uvicorn on 127.0.0.1; the daemon runs separately
(``dagster-daemon run``), see the Makefile's ``ui`` target and ``docs/security.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import AsyncIterator, Iterable, Sequence

import dagster as dg

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3000
GRAPHQL_PATH = "/graphql"
# The UI's largest documents are tens of kB; a cap keeps buffering a body bounded.
MAX_GRAPHQL_BODY_BYTES = 4 * 1024 * 1024
# Same poll rate and database settings as dagster-webserver's CLI defaults (cli.py).
LIVE_DATA_POLL_RATE_MS = 2000
DB_STATEMENT_TIMEOUT_MS = 15000
DB_POOL_RECYCLE_S = 3600
DB_POOL_MAX_OVERFLOW = 20
# Open WebSockets (the UI's subscriptions) would otherwise hold a graceful stop forever.
GRACEFUL_SHUTDOWN_S = 5

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# "none": typed URL or bookmark; "same-site" is refused because other local ports (MLflow UI, the
# publication server serving third-party HTML) are the same site as this one but not the same origin.
ACCEPTED_FETCH_SITES = frozenset({"same-origin", "none"})

# Named explicitly: under `python -m` __name__ is "__main__".
logger = logging.getLogger("mlcomops_assets.ui_server")


class Refusal(Exception):
    """A request the guard does not pass on; ``reason`` is sent to the client."""

    def __init__(self, reason: str, status: int = 403):
        super().__init__(reason)
        self.reason = reason
        self.status = status


def _shown(value: str, limit: int = 80) -> str:
    """A header value as it appears in a refusal (JSON-encoded, bounded)."""
    return value if len(value) <= limit else value[:limit] + "..."


def loopback_hosts(port: int) -> frozenset[str]:
    """The ``Host`` values a browser sends for this server on the loopback interface."""
    return frozenset({f"127.0.0.1:{port}", f"localhost:{port}"})


def graphql_operations(document: str) -> set[str]:
    """The operation types (``query``, ``mutation``, ``subscription``) of a GraphQL document.

    Parsed with graphql-core, the parser Dagster itself uses, so both read the same document.
    """
    from graphql import GraphQLError, OperationDefinitionNode, parse

    try:
        ast = parse(document)
    except (GraphQLError, TypeError) as error:
        raise Refusal("GraphQL document could not be parsed") from error
    return {
        definition.operation.value for definition in ast.definitions if isinstance(definition, OperationDefinitionNode)
    }


def graphql_documents(method: str, query_string: bytes, content_type: str, body: bytes | None) -> list[str]:
    """Every document Dagster's ``graphql_http_endpoint`` could execute for this request.

    Mirrors its branches: GET reads the URL's ``query``; POST reads a JSON body when the content type
    *contains* ``application/json``, the raw body when it contains ``application/graphql``, else the
    URL again. POSTs are accepted only when that substring test and the real media type agree on JSON
    or GraphQL: form and multipart bodies (which a cross-site HTML form can send) are refused.
    """
    from starlette.datastructures import QueryParams

    if method != "POST":
        # Starlette keeps the last of repeated parameters; every one is checked.
        return QueryParams(query_string.decode("latin-1")).getlist("query")
    essence = content_type.split(";", 1)[0].strip().lower()
    if "application/json" in content_type and essence == "application/json":
        try:
            data = json.loads(body or b"")
        except (ValueError, UnicodeDecodeError) as error:
            raise Refusal("GraphQL request body is not valid JSON") from error
        if isinstance(data, list):
            raise Refusal("batched GraphQL requests are not supported")
        if not isinstance(data, dict) or not isinstance(data.get("query"), str):
            raise Refusal("GraphQL request body has no query string")
        return [data["query"]]
    graphql_branch = "application/graphql" in content_type and "application/json" not in content_type
    if graphql_branch and essence == "application/graphql":
        try:
            return [(body or b"").decode()]
        except UnicodeDecodeError as error:
            raise Refusal("GraphQL request body is not UTF-8") from error
    raise Refusal("GraphQL POST bodies must be application/json or application/graphql")


def check_graphql(method: str, query_string: bytes, content_type: str, body: bytes | None) -> None:
    """Refuse a ``/graphql`` request that carries anything but queries unless it is a POST."""
    if method not in ("GET", "POST"):
        return  # Dagster answers 405 and executes nothing
    documents = graphql_documents(method, query_string, content_type, body)
    for document in documents:
        operations = graphql_operations(document)
        if method == "GET" and operations - {"query"}:
            raise Refusal("mutations are only accepted by POST")


class RequestGuard:
    """ASGI middleware in front of the Dagster webserver: Host, Origin and GraphQL-method checks.

    ``allowed_hosts`` are ``host:port`` values; the accepted origins are ``http://`` plus the request's
    own (allowed) Host, and ``extra_origins`` (e.g. a TLS reverse proxy's ``https://dagster.example``).
    """

    def __init__(
        self,
        app,
        allowed_hosts: Iterable[str],
        extra_origins: Iterable[str] = (),
        graphql_path: str = GRAPHQL_PATH,
        max_body_bytes: int = MAX_GRAPHQL_BODY_BYTES,
    ):
        self.app = app
        self.allowed_hosts = frozenset(host.lower() for host in allowed_hosts)
        self.extra_origins = frozenset(origin.lower().rstrip("/") for origin in extra_origins)
        self.graphql_path = graphql_path
        self.max_body_bytes = max_body_bytes

    def _is_graphql(self, path: str) -> bool:
        # Also a prefixed mount (/prefix/graphql); a trailing slash is tolerated.
        return path.rstrip("/").endswith(self.graphql_path)

    def check_headers(self, scope) -> None:
        """Host always; Origin / Sec-Fetch-Site for state-changing methods, /graphql and WebSockets."""
        from starlette.datastructures import Headers

        headers = Headers(scope=scope)
        host = headers.get("host", "").lower()
        if host not in self.allowed_hosts:
            raise Refusal(f"Host {_shown(host)!r} is not served here")
        method = scope.get("method", "GET")
        if scope["type"] == "http" and method in SAFE_METHODS and not self._is_graphql(scope["path"]):
            return
        origin = headers.get("origin")
        if origin is not None:
            origin = origin.lower().rstrip("/")
            if origin != f"http://{host}" and origin not in self.extra_origins:
                raise Refusal(f"cross-origin request refused: Origin {_shown(origin)!r}")
            return
        fetch_site = headers.get("sec-fetch-site")
        if fetch_site is not None and fetch_site.lower() not in ACCEPTED_FETCH_SITES:
            raise Refusal(f"cross-site request refused: Sec-Fetch-Site {_shown(fetch_site)!r}")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)  # lifespan
            return
        try:
            self.check_headers(scope)
            if scope["type"] == "http" and self._is_graphql(scope["path"]):
                receive = await self._check_graphql_request(scope, receive)
        except Refusal as refusal:
            await self._refuse(scope, receive, send, refusal)
            return
        await self.app(scope, receive, send)

    async def _check_graphql_request(self, scope, receive):
        """Read the body if Dagster will, check it, and hand the same bytes on."""
        from starlette.datastructures import Headers

        method = scope["method"]
        body = None
        if method == "POST":
            body = await self._read_body(receive)
            receive = _replay(body, receive)
        content_type = Headers(scope=scope).get("content-type", "")
        check_graphql(method, scope.get("query_string", b""), content_type, body)
        return receive

    async def _read_body(self, receive) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise Refusal("client disconnected", status=400)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise Refusal("GraphQL request body too large", status=413)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _refuse(self, scope, receive, send, refusal: Refusal) -> None:
        from starlette.datastructures import Headers
        from starlette.responses import JSONResponse

        headers = Headers(scope=scope)
        logger.warning(
            "refused %s %s (Host %r, Origin %r): %s",
            scope.get("method", "WEBSOCKET"),
            scope["path"],
            headers.get("host"),
            headers.get("origin"),
            refusal.reason,
        )
        if scope["type"] == "websocket":
            # Closing before accepting makes uvicorn answer the handshake with HTTP 403.
            await send({"type": "websocket.close", "code": 1008})
            return
        response = JSONResponse(
            {"error": "forbidden" if refusal.status == 403 else "refused", "reason": refusal.reason},
            status_code=refusal.status,
            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"},
        )
        await response(scope, receive, send)


def _replay(body: bytes, receive):
    """A ``receive`` that yields the already-read body once, then defers to the real one."""
    delivered = False

    async def replayed():
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


@contextlib.asynccontextmanager
async def _lifespan(_app) -> AsyncIterator[None]:
    # As dagster-webserver's CLI: a cancelled lifespan is the normal end of Ctrl-C.
    with contextlib.suppress(asyncio.CancelledError):
        yield


def build_app(
    workspace_process_context,
    port: int,
    extra_hosts: Sequence[str] = (),
    extra_origins: Sequence[str] = (),
):
    """Dagster's webserver app for a ``WorkspaceProcessContext``, behind a :class:`RequestGuard`."""
    from dagster_webserver.app import create_app_from_workspace_process_context

    app = create_app_from_workspace_process_context(
        workspace_process_context, "", LIVE_DATA_POLL_RATE_MS, lifespan=_lifespan
    )
    # Outermost of the app's own middleware: nothing reaches a route before the checks.
    app.add_middleware(
        RequestGuard,
        allowed_hosts=loopback_hosts(port) | set(extra_hosts),
        extra_origins=extra_origins,
    )
    return app


def serve(
    workspace: str = "workspace.yaml",
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    extra_hosts: Sequence[str] = (),
    extra_origins: Sequence[str] = (),
) -> None:
    """Serve the guarded UI until SIGINT/SIGTERM; needs ``DAGSTER_HOME`` (the persistent instance)."""
    import uvicorn
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget
    from dagster_webserver.version import __version__

    # DagsterInstance.get() fails without DAGSTER_HOME instead of using a throw-away instance.
    with dg.DagsterInstance.get() as instance:
        instance.optimize_for_webserver(DB_STATEMENT_TIMEOUT_MS, DB_POOL_RECYCLE_S, DB_POOL_MAX_OVERFLOW)
        with WorkspaceProcessContext(
            instance,
            version=__version__,
            read_only=False,
            workspace_load_target=WorkspaceFileTarget(paths=[workspace]),
        ) as context:
            app = build_app(context, port, extra_hosts, extra_origins)
            print(f"Dagster UI (guarded) on http://{host}:{port}", flush=True)
            uvicorn.run(
                app,
                host=host,
                port=port,
                log_level="warning",
                # No proxy in front by default: X-Forwarded-* from a local process are not trusted.
                proxy_headers=False,
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
            )


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``python -m mlcomops_assets.ui_server [-w workspace.yaml] [--host H] [--port P]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("-w", "--workspace", default="workspace.yaml")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--allowed-host", action="append", default=[], help="extra Host value (host:port) to serve, e.g. behind a proxy"
    )
    parser.add_argument(
        "--allowed-origin", action="append", default=[], help="extra trusted Origin, e.g. https://dagster.example"
    )
    args = parser.parse_args(argv)
    # Warnings and up: refusals are logged as warnings; INFO would add every Alembic migration line.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # uvicorn stops gracefully on SIGINT/SIGTERM, then re-raises the signal under the previous handler:
    # make that a KeyboardInterrupt for SIGTERM too (even when SIGINT was inherited as ignored), so the
    # workspace context still shuts its code server down instead of the process dying on the spot.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is the normal way to stop `make ui`
        serve(args.workspace, args.host, args.port, args.allowed_host, args.allowed_origin)


if __name__ == "__main__":
    main()
