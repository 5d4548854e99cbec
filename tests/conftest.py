"""Shared test fixtures: a real persistproc server on a free port, and fixture command lines."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from survivors import kill_tagged, tagged

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
RUN_MARKER_ENV = "PERSISTPROC_RUN_ID"  # set by the server in every child's environment
# Set in the servers' environment (children inherit it), so that the leak check only looks at
# processes of this test session and never at those of another persistproc on the machine.
SESSION_ENV = "PERSISTPROC_TEST_SESSION"
SESSION = uuid.uuid4().hex
STARTUP_TIMEOUT = 20.0
SHUTDOWN_TIMEOUT = 20.0
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy


def fixture_cmd(name: str, *args: str) -> str:
    """A shell command line that runs fixtures/<name>.py with this interpreter."""
    return shlex.join([sys.executable, str(FIXTURES / f"{name}.py"), *args])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    port: int
    data_dir: Path
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp/"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, timeout: float = SHUTDOWN_TIMEOUT) -> int:
        """SIGTERM, then SIGKILL if it does not exit in time; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        return self.proc.returncode


def _healthy(base: str) -> bool:
    try:
        with _DIRECT.open(f"{base}/health", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start_server(
    data_dir: Path,
    port: int | None = None,
    env: dict[str, str] | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> Server:
    """Start `persistproc --serve` and return once /health answers. env: added to ours;
    preexec_fn: run in the server's process before it starts (resource limits)."""
    port = port or free_port()
    command = [sys.executable, "-m", "persistproc", "--serve", "--port", str(port)]
    proc = subprocess.Popen(
        [*command, "--data-dir", str(data_dir)],
        stdin=subprocess.DEVNULL,
        # a token in the developer's shell would make the server require one the probe lacks
        env={**_without_token(os.environ), **(env or {}), SESSION_ENV: SESSION},
        preexec_fn=preexec_fn,
    )
    server = Server(port, data_dir, proc)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not _healthy(server.base):
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before it was ready")
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"the server did not answer /health within {STARTUP_TIMEOUT:g} s")
        time.sleep(0.05)  # readiness probe interval
    return server


def _without_token(environ: os._Environ[str]) -> dict[str, str]:
    return {key: value for key, value in environ.items() if key != "PERSISTPROC_TOKEN"}


def leftover_processes() -> list[psutil.Process]:
    """Live processes (not zombies) that a server of this test session started."""
    return tagged(SESSION, SESSION_ENV)


def kill_leftovers() -> list[str]:
    """Kill every leftover child of a server; describe what was found."""
    return kill_tagged(SESSION, SESSION_ENV)


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start servers on demand (start(data_dir=None)); all are stopped and checked at teardown."""
    started: list[Server] = []

    def start(data_dir: Path | None = None, **options: Any) -> Server:
        server = start_server(data_dir or tmp_path / "data", **options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
    leaked = kill_leftovers()
    assert not leaked, f"processes outlived the server: {leaked}"


@pytest.fixture
def server(server_factory: Callable[..., Server]) -> Server:
    """A running server with its own data directory."""
    return server_factory()
