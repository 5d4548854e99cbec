"""The attach WebSocket: binary frames carry terminal bytes both ways; text frames carry JSON.

Client to server: `{"type": "resize", "columns": C, "rows": R}`. Server to client: first
`{"type": "attached", "process": info, "read_only": bool}`, at the end
`{"type": "exit", "process": info}` (the process ended) before the server closes the socket.
The Host/Origin guard runs before this handler: a web page cannot open this socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import MutableMapping
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from persistproc.errors import PersistprocError
from persistproc.server.rest import parse_target
from persistproc.supervisor import Supervisor
from persistproc.terminal import AttachedTerminal

REFUSED = 4409


def _size(params: Any, key: str, default: int) -> int:
    try:
        return max(1, min(int(params.get(key, default)), 1000))
    except ValueError:
        return default


def make_endpoint(supervisor: Supervisor) -> Any:
    async def attach(websocket: WebSocket) -> None:
        params = websocket.query_params
        read_only = params.get("read_only", "0") in {"1", "true", "yes"}
        pid, name = parse_target(str(websocket.path_params["target"]))
        try:
            process, terminal = supervisor.attach(
                pid, name, read_only, _size(params, "columns", 80), _size(params, "rows", 24)
            )
        except PersistprocError as error:
            # accept first: a close before the handshake reaches the client as a bare HTTP 403
            await websocket.accept()
            await websocket.close(code=REFUSED, reason=str(error)[:120])
            return
        await websocket.accept()
        await websocket.send_text(
            json.dumps({"type": "attached", "process": process.info(), "read_only": read_only})
        )
        sender = asyncio.create_task(_send_output(websocket, terminal))
        try:
            await _receive_input(websocket, terminal, sender)
        finally:
            terminal.close()
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender
        if terminal.run.ended.is_set():
            with contextlib.suppress(Exception):
                await websocket.send_text(json.dumps({"type": "exit", "process": process.info()}))
                await websocket.close()

    return attach


async def _send_output(websocket: WebSocket, terminal: AttachedTerminal) -> None:
    async for data in terminal.output():
        await websocket.send_bytes(data)


async def _receive_input(
    websocket: WebSocket, terminal: AttachedTerminal, sender: asyncio.Task[None]
) -> None:
    receive: asyncio.Future[MutableMapping[str, Any]] | None = None
    try:
        while True:
            receive = asyncio.ensure_future(websocket.receive())
            done, _ = await asyncio.wait({receive, sender}, return_when=asyncio.FIRST_COMPLETED)
            if receive not in done:
                return  # output ended: the process exited
            message = receive.result()
            receive = None
            if message["type"] == "websocket.disconnect":
                return
            try:
                if message.get("bytes") is not None:
                    terminal.write(message["bytes"])
                elif message.get("text") is not None:
                    _control(terminal, message["text"])
            except PersistprocError as error:
                await websocket.send_text(json.dumps({"type": "error", "message": str(error)}))
    except WebSocketDisconnect:
        return
    finally:
        if receive is not None:
            receive.cancel()


def _control(terminal: AttachedTerminal, text: str) -> None:
    try:
        message = json.loads(text)
    except ValueError:
        raise PersistprocError("control messages are JSON objects") from None
    if not isinstance(message, dict) or message.get("type") != "resize":
        raise PersistprocError('unknown control message: expected {"type": "resize", ...}')
    columns, rows = message.get("columns"), message.get("rows")
    if not isinstance(columns, int) or not isinstance(rows, int):
        raise PersistprocError("resize needs whole-number columns and rows")
    terminal.resize(columns, rows)
