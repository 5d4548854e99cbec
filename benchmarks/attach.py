"""Keystroke echo through `persistproc attach` in a tmux pane, against `cat` run directly in a pane.

The probe is a tmux control-mode client: it types with `send-keys` and sees the pane's output as
`%output` notifications on the same pipe, so no process is started per keystroke and the time is
taken when tmux itself has read the echo from the pane.
"""

from __future__ import annotations

import asyncio
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from string import ascii_lowercase

from mcp import Client

from benchmarks.common import Row, Server, call

COMMAND = "echo program-started; exec cat"
SIZE = ("-x", "120", "-y", "40")


class Pane:
    """A detached tmux session running `command`, driven by a control-mode client."""

    def __init__(self, command: str) -> None:
        self.socket = f"bench-attach-{os.getpid()}-{time.monotonic_ns()}"
        tmux = ["tmux", "-L", self.socket]
        subprocess.run(
            [*tmux, "-f", "/dev/null", "new-session", "-d", "-s", "b", *SIZE, command],
            check=True,
        )
        self.control = subprocess.Popen(
            [*tmux, "-C", "attach", "-t", "b"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            bufsize=0,
        )
        assert self.control.stdout is not None and self.control.stdin is not None
        self._out = self.control.stdout.fileno()
        self._in = self.control.stdin
        self._buffer = b""

    def type(self, key: str) -> None:
        self._in.write(f"send-keys -t b -l {key}\n".encode())

    def enter(self) -> None:
        self._in.write(b"send-keys -t b Enter\n")

    def _lines(self, timeout: float) -> list[bytes]:
        ready, _, _ = select.select([self._out], [], [], timeout)
        if not ready:
            return []
        chunk = os.read(self._out, 65536)
        if not chunk:
            raise AssertionError("the tmux control client ended")
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        return lines

    def wait_output(self, text: str, timeout: float = 10) -> None:
        """Until a `%output` notification carries `text` (letters reach it unescaped)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self._lines(deadline - time.monotonic()):
                if line.startswith(b"%output ") and text.encode() in line.split(b" ", 2)[-1]:
                    return
        raise AssertionError(f"{text!r} never showed in the pane")

    def wait_screen(self, text: str, timeout: float = 30) -> None:
        """Until the pane shows `text`: for what was printed before the control client came."""
        deadline = time.monotonic() + timeout
        while text not in self.capture():
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never showed in the pane: {self.capture()!r}")
            time.sleep(0.02)  # polling the pane's content; setup only, not measured

    def capture(self) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, "capture-pane", "-p", "-t", "b"],
            capture_output=True,
            text=True,
            check=False,
        )
        return done.stdout

    def drain(self, quiet: float = 0.1) -> None:
        """Read until the pane has said nothing for `quiet` seconds (after a line is entered)."""
        while self._lines(quiet):
            pass

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], check=False)
        self.control.wait(timeout=10)
        socket_path = (
            Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}" / self.socket
        )
        socket_path.unlink(missing_ok=True)  # tmux leaves the socket file behind


def _echo_times(pane: Pane, keys: int) -> list[float]:
    # The marker shows once the program runs (for attach: once the repaint came through, so
    # the client is connected), then a first line goes all the way through.
    pane.wait_screen("program-started")
    pane.drain()
    pane.type("ready")
    pane.enter()
    pane.wait_output("ready")
    pane.drain()
    samples = []
    for i in range(keys):
        key = ascii_lowercase[i % 26]
        started = time.perf_counter()
        pane.type(key)
        pane.wait_output(key)
        samples.append((time.perf_counter() - started) * 1000)
        if i % 50 == 49:  # keep the terminal's line buffer short
            pane.enter()
            pane.drain()
    return samples


async def _run(server: Server, quick: bool) -> list[Row]:
    keys = 10 if quick else 200
    direct_pane = Pane(COMMAND)
    try:
        direct = _echo_times(direct_pane, keys)
    finally:
        direct_pane.close()
    async with Client(server.url) as client:
        arguments = {"command": COMMAND, "working_directory": "/tmp", "name": "echo-cat"}
        await call(client, "start_process", arguments)
        attach = (
            f"{sys.executable} -m persistproc --port {server.port} --data-dir {server.data_dir}"
            " attach echo-cat"
        )
        pane = Pane(attach)
        try:
            ours = _echo_times(pane, keys)
        finally:
            pane.close()
            await call(client, "remove_process", {"name": "echo-cat"})
    row = Row("keystroke echo, attach vs cat in a pane", ours, direct, "ms", "<= +5 ms")
    row.met = row.value - row.reference_value <= 5
    return [row]


def run(server: Server, quick: bool) -> list[Row]:
    if not shutil.which("tmux"):
        print("tmux not found: attach echo skipped")
        return []
    return asyncio.run(_run(server, quick))
