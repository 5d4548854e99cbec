"""Servers for the security tests: extra `--serve` options, a chosen environment, stderr captured,
and a readiness probe that sends the token the server wrote (a token server answers 401 without).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from conftest import SESSION, SESSION_ENV, STARTUP_TIMEOUT, Server, free_port, kill_leftovers

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
# The variables a developer's shell may hold that would change what these servers do.
CLEARED = ("PERSISTPROC_TOKEN", "PERSISTPROC_PORT", "PERSISTPROC_DATA_DIR", "FASTMCP_LOG_LEVEL")


def clean_environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    return {**env, SESSION_ENV: SESSION, **extra}


def token_of(data_dir: Path) -> str | None:
    try:
        return (data_dir / "token").read_text().strip() or None
    except OSError:
        return None


def auth(data_dir: Path) -> dict[str, str]:
    token = token_of(data_dir)
    return {"Authorization": f"Bearer {token}"} if token else {}


def _healthy(server: Server) -> bool:
    request = urllib.request.Request(f"{server.base}/health", headers=auth(server.data_dir))
    try:
        with _DIRECT.open(request, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class Starter(Protocol):
    def __call__(
        self,
        *options: str,
        env: dict[str, str] | None = None,
        data_dir: Path | None = None,
        port: int | None = None,
    ) -> Server: ...


@contextmanager
def server_starter(tmp_path: Path) -> Iterator[Starter]:
    """start(*options, env=..., data_dir=..., port=...) runs `persistproc --serve --port P --data-dir D
    *options` with stderr in D.parent/stderr-P; all are stopped and checked for leftovers."""
    started: list[Server] = []
    files = []

    def start(
        *options: str,
        env: dict[str, str] | None = None,
        data_dir: Path | None = None,
        port: int | None = None,
    ) -> Server:
        data_dir = data_dir or tmp_path / "data"
        port = port or free_port()
        stderr = open(tmp_path / f"stderr-{port}", "wb")  # noqa: SIM115 - closed at teardown
        files.append(stderr)
        command = [sys.executable, "-m", "persistproc", "--serve", "--port", str(port)]
        proc = subprocess.Popen(
            [*command, "--data-dir", str(data_dir), *options],
            stdin=subprocess.DEVNULL,
            stderr=stderr,
            env=env if env is not None else clean_environment(),
        )
        server = Server(port, data_dir, proc)
        started.append(server)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not _healthy(server):
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with {proc.returncode} before it was ready")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not answer within {STARTUP_TIMEOUT:g} s")
            time.sleep(0.05)  # readiness probe interval
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()
        for file in files:
            file.close()
        leaked = kill_leftovers()
        assert not leaked, f"processes outlived the server: {leaked}"


def stderr_of(tmp_path: Path, server: Server) -> str:
    return (tmp_path / f"stderr-{server.port}").read_text(errors="replace")


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m persistproc ARGS` in a clean environment plus `env`."""
    return subprocess.run(
        [sys.executable, "-m", "persistproc", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_environment(**env),
    )
