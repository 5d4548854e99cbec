"""The interactive terminal: attach this terminal to a process through the server's WebSocket.

Raw mode on stdin; every byte goes to the process (so Ctrl-C reaches it as SIGINT through its
terminal) except the detach key; output is written back verbatim; SIGWINCH sends the new size.
The terminal is restored in `finally`, with the modes a program may have switched on turned off.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import termios
import tty
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from websockets.asyncio.client import ClientConnection, connect, unix_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from persistproc.client.api import Client, ClientError
from persistproc.detach import DOUBLE_PRESS_SECONDS, HOLD_SECONDS, DetachMatcher

# Modes a full-screen program may leave on: alternate screen, mouse reports, bracketed paste,
# application cursor keys, kitty keyboard flags; then show the cursor and reset colors.
RESET_MODES = (
    b"\x1b[?1049l\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?2004l\x1b[?1l\x1b>"
    b"\x1b[<u\x1b[?25h\x1b[0m"
)


@dataclass
class Outcome:
    detached: bool
    process: dict[str, Any]


def terminal_size(fd: int) -> tuple[int, int]:
    try:
        size = os.get_terminal_size(fd)
        return size.columns, size.lines
    except OSError:
        return 80, 24


async def _open(client: Client, path: str) -> ClientConnection:
    """The attach WebSocket: over the client's Unix socket when it answers, else over TCP; with
    the bearer token when there is one."""
    options: dict[str, Any] = {
        "max_size": None,
        "compression": None,
        "open_timeout": 10,
        "additional_headers": client.headers(),
    }
    socket_path = client.socket_path()
    if socket_path is not None:
        with contextlib.suppress(OSError):
            return await unix_connect(str(socket_path), f"ws://localhost{path}", **options)
    return await connect(f"ws://{client.address}{path}", **options)


async def attach(client: Client, target: str, read_only: bool, detach_key: int) -> Outcome:
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    columns, rows = terminal_size(stdout)
    query = urlencode({"columns": columns, "rows": rows, "read_only": int(read_only)})
    try:
        websocket = await _open(client, f"/api/processes/{quote(target, safe='')}/attach?{query}")
    except (OSError, asyncio.TimeoutError):
        raise ClientError(
            f"no persistproc server on {client.address} (start one with 'persistproc --serve')"
        ) from None
    except InvalidStatus as error:
        response = error.response
        try:
            reason = str(json.loads(response.body or b"")["error"])
        except (ValueError, KeyError, TypeError):
            reason = f"HTTP {response.status_code}"
        raise ClientError(f"the server refused to attach: {reason}") from None
    except InvalidHandshake as error:  # closed mid-handshake: a server stopping, or not ours
        raise ClientError(f"could not attach through {client.address}: {error}") from None
    async with websocket:
        try:
            hello = json.loads(await websocket.recv())
        except ConnectionClosed as closed:
            raise ClientError(closed.rcvd.reason if closed.rcvd else "attach refused") from None
        session = _Session(websocket, stdin, stdout, read_only, DetachMatcher(detach_key))
        session.process = hello.get("process", {})
        saved = termios.tcgetattr(stdin) if os.isatty(stdin) else None
        try:
            if saved is not None:
                tty.setraw(stdin, termios.TCSANOW)  # keep keys typed before the attach
            return await session.run()
        finally:
            if saved is not None:
                termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
            with contextlib.suppress(OSError):
                os.write(stdout, RESET_MODES + b"\r\n")


class _Session:
    def __init__(
        self,
        websocket: ClientConnection,
        stdin: int,
        stdout: int,
        read_only: bool,
        matcher: DetachMatcher,
    ) -> None:
        self.websocket, self.stdin, self.stdout = websocket, stdin, stdout
        self.read_only, self.matcher = read_only, matcher
        self.process: dict[str, Any] = {}
        self.done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._timer: asyncio.TimerHandle | None = None
        self._sends: set[asyncio.Task[None]] = set()

    async def run(self) -> Outcome:
        loop = asyncio.get_running_loop()
        loop.add_reader(self.stdin, self._on_input)
        loop.add_signal_handler(signal.SIGWINCH, self._on_resize)
        loop.add_signal_handler(signal.SIGHUP, self._finish, True)  # the terminal went away
        receiver = asyncio.create_task(self._receive())
        try:
            detached = await self.done
        finally:
            loop.remove_reader(self.stdin)
            loop.remove_signal_handler(signal.SIGWINCH)
            loop.remove_signal_handler(signal.SIGHUP)
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await receiver
        return Outcome(detached, self.process)

    def _finish(self, detached: bool) -> None:
        if not self.done.done():
            self.done.set_result(detached)

    async def _receive(self) -> None:
        try:
            async for message in self.websocket:
                if isinstance(message, bytes):
                    _write_all(self.stdout, message)
                    continue
                event = json.loads(message)
                if event.get("type") == "exit":
                    self.process = event.get("process", self.process)
                    self._finish(False)
                    return
        except ConnectionClosed:
            pass
        self._finish(False)

    def _send(self, message: bytes | str) -> None:
        task = asyncio.create_task(self._deliver(message))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _deliver(self, message: bytes | str) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.websocket.send(message)

    def _on_input(self) -> None:
        try:
            data = os.read(self.stdin, 65536)
        except OSError:
            data = b""
        if not data:
            self._finish(True)  # stdin closed: leave the process running
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        scan = self.matcher.feed(data)
        if scan.forward and not self.read_only:
            self._send(scan.forward)
        if scan.detach:
            self._finish(True)
        elif scan.armed or self.matcher.holding:
            delay = DOUBLE_PRESS_SECONDS if scan.armed else HOLD_SECONDS
            self._timer = asyncio.get_running_loop().call_later(delay, self._on_pause)

    def _on_pause(self) -> None:
        scan = self.matcher.flush()
        if scan.forward and not self.read_only:
            self._send(scan.forward)
        if scan.detach:
            self._finish(True)

    def _on_resize(self) -> None:
        if self.read_only:
            return
        columns, rows = terminal_size(self.stdout)
        self._send(json.dumps({"type": "resize", "columns": columns, "rows": rows}))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            continue
        view = view[written:]
