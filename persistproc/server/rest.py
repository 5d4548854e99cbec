"""JSON HTTP routes under /api/ for the command line client.

Each handler parses its arguments, makes one supervisor call and returns its result as JSON.
A process is addressed by a target in the path: all digits is a pid, anything else a name (names
are never all digits, so the two cannot be confused).

Errors are `{"error": message}`: PersistprocError subclasses become 4xx with their message as it
is; anything else is logged here and answered with a 500 that carries no traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from persistproc.errors import Conflict, InvalidInput, NotFound, PersistprocError, SpawnFailed
from persistproc.supervisor import Supervisor

log = logging.getLogger("persistproc")

Handler = Callable[[Request], Awaitable[Any]]
Endpoint = Callable[[Request], Awaitable[Response]]

INTERNAL_ERROR = "internal error in persistproc; the server log has the details"


def _sigterm_self() -> None:
    # The same path as `kill <server pid>`: uvicorn's handler stops serving, then the lifespan
    # stops every process, so a shutdown asked over HTTP cannot differ from one asked by signal.
    os.kill(os.getpid(), signal.SIGTERM)


def status_of(error: PersistprocError) -> int:
    if isinstance(error, InvalidInput):
        return 400
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, SpawnFailed):
        return 422  # the request was well formed; the operating system refused the command
    if isinstance(error, Conflict):
        return 409
    return 409  # the rest are about the process's state (e.g. input to a process that ended)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _endpoint(handler: Handler) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        try:
            result = await handler(request)
        except PersistprocError as error:
            return _error(status_of(error), str(error))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s %s failed", request.method, request.url.path)
            return _error(500, INTERNAL_ERROR)
        if isinstance(result, Response):
            return result
        return JSONResponse(result)

    return endpoint


# ----- argument parsing --------------------------------------------------------------------------


def parse_target(raw: str) -> tuple[int | None, str | None]:
    """A path's process: all (ASCII) digits is a pid, anything else a name."""
    if raw.isascii() and raw.isdigit():
        return int(raw), None
    return None, raw


def _target(request: Request) -> tuple[int | None, str | None]:
    return parse_target(str(request.path_params["target"]))


def _query(request: Request, accepted: tuple[str, ...]) -> dict[str, str]:
    """The query parameters, refusing unknown ones so that a misspelt option is not ignored."""
    params = dict(request.query_params)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise InvalidInput(
            f"unknown query parameter {unknown[0]!r}; accepted: {', '.join(accepted) or 'none'}"
        )
    return params


def _bool_field(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise InvalidInput(f"{key} must be true or false, got {value!r}")
    return value


def _int_param(params: dict[str, str], key: str) -> int | None:
    value = params.get(key)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"{key} must be a whole number, got {value!r}") from None


async def _body(request: Request, accepted: tuple[str, ...]) -> dict[str, Any]:
    """The JSON object in the request body ({} when empty), refusing unknown fields."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidInput(f"the request body is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be a JSON object")
    unknown = sorted(set(data) - set(accepted))
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}; accepted: {', '.join(accepted)}")
    return data


# ----- routes ------------------------------------------------------------------------------------

START_FIELDS = (
    "command",
    "working_directory",
    "environment",
    "name",
    "merge_stderr",
    "replace",
    "wait_for",
    "wait_timeout",
    "columns",
    "rows",
)


def build_rest_app(
    supervisor: Supervisor, request_shutdown: Callable[[], None] | None = None
) -> Starlette:
    """The /api/ application, to be mounted at /api. request_shutdown runs after /api/shutdown
    has answered; by default it sends this process SIGTERM."""
    shutdown_action = request_shutdown or _sigterm_self

    async def list_processes(request: Request) -> Any:
        params = _query(request, ("working_directory",))
        return {"processes": supervisor.list(params.get("working_directory") or None)}

    async def start(request: Request) -> Any:
        body = await _body(request, START_FIELDS)
        if "command" not in body:
            raise InvalidInput("command is required: a shell command line such as 'npm run dev'")
        if "working_directory" not in body:
            raise InvalidInput("working_directory is required: an absolute directory to run in")
        return await supervisor.start_and_wait(
            body.get("wait_for"),
            body.get("wait_timeout", 30),
            command=body["command"],
            working_directory=body["working_directory"],
            environment=body.get("environment"),
            name=body.get("name"),
            merge_stderr=_bool_field(body, "merge_stderr"),
            replace=_bool_field(body, "replace"),
            columns=body.get("columns"),
            rows=body.get("rows"),
        )

    async def status(request: Request) -> Any:
        _query(request, ())
        return await supervisor.status(*_target(request))

    async def output(request: Request) -> Any:
        params = _query(request, ("stream", "lines", "since", "grep", "run"))
        lines = _int_param(params, "lines")
        return await supervisor.output(
            *_target(request),
            stream=params.get("stream") or "combined",
            lines=100 if lines is None else lines,
            since=_int_param(params, "since"),
            grep=params.get("grep") or None,
            run_number=_int_param(params, "run"),
        )

    async def screen(request: Request) -> Any:
        _query(request, ())
        return await supervisor.screen(*_target(request))

    async def stop(request: Request) -> Any:
        body = await _body(request, ("force", "timeout"))
        return await supervisor.stop(
            *_target(request), force=_bool_field(body, "force"), timeout=body.get("timeout", 10)
        )

    async def restart(request: Request) -> Any:
        body = await _body(request, ("wait_for", "wait_timeout"))
        return await supervisor.restart_and_wait(
            *_target(request), body.get("wait_for"), body.get("wait_timeout", 30)
        )

    async def send(request: Request) -> Any:
        body = await _body(request, ("text", "keys"))
        return await supervisor.send(*_target(request), body.get("text"), body.get("keys"))

    async def wait(request: Request) -> Any:
        body = await _body(request, ("pattern", "timeout", "since", "stream"))
        if "pattern" not in body:
            raise InvalidInput("pattern is required: a regular expression a line must match")
        return await supervisor.wait(
            *_target(request),
            body["pattern"],
            timeout=body.get("timeout", 30),
            since=body.get("since"),
            stream=body.get("stream", "combined"),
        )

    async def remove(request: Request) -> Any:
        _query(request, ())
        return await supervisor.remove(*_target(request))

    async def shutdown(request: Request) -> Any:
        await _body(request, ())
        log.info("shutdown requested over HTTP")
        # A background task runs once the answer is sent, so the client hears back before the
        # server starts to stop.
        # the pid lets the client wait for the whole exit (every process stopped), not only
        # for the port to close, which comes first
        return JSONResponse(
            {"shutting_down": True, "pid": os.getpid()}, background=BackgroundTask(shutdown_action)
        )

    routes = [
        Route("/processes", _endpoint(list_processes), methods=["GET"]),
        Route("/processes", _endpoint(start), methods=["POST"]),
        Route("/processes/{target}", _endpoint(status), methods=["GET"]),
        Route("/processes/{target}", _endpoint(remove), methods=["DELETE"]),
        Route("/processes/{target}/output", _endpoint(output), methods=["GET"]),
        Route("/processes/{target}/screen", _endpoint(screen), methods=["GET"]),
        Route("/processes/{target}/stop", _endpoint(stop), methods=["POST"]),
        Route("/processes/{target}/restart", _endpoint(restart), methods=["POST"]),
        Route("/processes/{target}/input", _endpoint(send), methods=["POST"]),
        Route("/processes/{target}/wait", _endpoint(wait), methods=["POST"]),
        Route("/shutdown", _endpoint(shutdown), methods=["POST"]),
    ]

    async def http_error(request: Request, error: Exception) -> Response:
        # Unknown routes and wrong methods answer in the same JSON shape as every other error.
        assert isinstance(error, HTTPException)
        message = f"{error.detail}: {request.method} {request.url.path}"
        return JSONResponse(
            {"error": message}, status_code=error.status_code, headers=error.headers
        )

    # Its own small application, so that 404 and 405 under /api/ are JSON without changing how the
    # rest of the server (MCP) answers them.
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})
