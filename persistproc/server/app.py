"""The HTTP application: MCP at /mcp (and /mcp/), JSON routes for the CLI at /api/, a health route;
Host and Origin checks on all, and the bearer token on all when the server requires one."""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastmcp import FastMCP
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from persistproc import __version__
from persistproc.config import MCP_PATH
from persistproc.hostcheck import is_allowed_origin, is_loopback_host
from persistproc.server.attach import make_endpoint as make_attach_endpoint
from persistproc.server.rest import build_rest_app
from persistproc.server.tools import build_mcp
from persistproc.supervisor import Supervisor


class GuardMiddleware:
    """Refuse foreign Host (421) and Origin (403) on every HTTP request and WebSocket upgrade, and
    a missing or wrong bearer token (401) when a token is required; serve /mcp and /mcp/ alike
    (some clients do not follow a redirect)."""

    def __init__(self, app: ASGIApp, token: str | None = None, token_hint: str = "") -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode() if token else None
        self.token_refusal = (
            "this server requires a bearer token: send the header 'Authorization: Bearer <token>'."
            f" The persistproc command finds the token by itself{token_hint}"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = None
        if not is_loopback_host(headers.get("host")):
            refusal = (421, "Host header must name this machine's loopback interface")
        elif not is_allowed_origin(
            headers.get("origin"),
            (scope.get("server") or (None, None))[1],
            browser_allowed=scope["path"].rstrip("/") == MCP_PATH and scope["type"] == "http",
        ):
            refusal = (403, "requests from web pages of other origins are refused")
        elif self.expected is not None and not hmac.compare_digest(
            headers.get("authorization", "").encode("latin-1"), self.expected
        ):
            refusal = (401, self.token_refusal)
        if refusal is not None:
            await _refuse(scope, receive, send, *refusal)
            return
        if scope["path"] == MCP_PATH:
            scope = {**scope, "path": MCP_PATH + "/", "raw_path": (MCP_PATH + "/").encode()}
        await self.app(scope, receive, send)


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="persistproc"'))
    prefix = "http"
    if scope["type"] == "websocket":
        await receive()  # the connect event
        if "websocket.http.response" not in scope.get("extensions", {}):
            # 1008 before the handshake completes: the server answers the upgrade with 403.
            await send({"type": "websocket.close", "code": 1008, "reason": message})
            return
        prefix = "websocket.http"
    await send({"type": f"{prefix}.response.start", "status": status, "headers": headers})
    await send({"type": f"{prefix}.response.body", "body": body})


def build_app(
    supervisor: Supervisor,
    request_shutdown: Callable[[], None] | None = None,
    token: str | None = None,
    token_hint: str = "",
) -> Starlette:
    """The server's application. request_shutdown is what POST /api/shutdown does once it has
    answered (default: SIGTERM to this process); tests that serve in-process replace it. With a
    token, every route requires it; token_hint ends the refusal by saying where clients find it."""
    mcp = build_mcp(supervisor)
    mcp_app = mcp.http_app(path="/", host_origin_protection=False)

    async def health(_: Request) -> JSONResponse:
        return JSONResponse(
            {"name": "persistproc", "version": __version__, "processes": len(supervisor.list())}
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with mcp_app.lifespan(app):
            await serve_input_schemas(mcp)
            await supervisor.load()
            try:
                yield
            finally:
                await supervisor.shutdown()

    routes: list[Any] = [
        Route("/health", health),
        WebSocketRoute("/api/processes/{target}/attach", make_attach_endpoint(supervisor)),
        Mount("/api", app=build_rest_app(supervisor, request_shutdown)),
        Mount(MCP_PATH, app=mcp_app),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(GuardMiddleware, token=token, token_hint=token_hint)
    return app


async def serve_input_schemas(mcp: FastMCP) -> None:
    """Give the MCP transport each tool's input schema up front. Without it, the transport
    checks a call's arguments against a schema it gets by running a whole tools/list through
    the server on every tools/call: about 1 ms a call, more than the call itself."""
    schemas = {tool.name: tool.to_mcp_tool().input_schema for tool in await mcp.list_tools()}
    mcp._mcp_server.get_tool_input_schema = schemas.get
