"""Serving: bind the port, run uvicorn with the app, stop every process on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
import sys
from pathlib import Path

import uvicorn

from persistproc import paths
from persistproc.server.app import build_app
from persistproc.supervisor import Supervisor

log = logging.getLogger("persistproc")


class PortInUse(Exception):
    pass


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, made here so a taken port is a clear error and Nagle is off
    (with Nagle, every small reply waited for the client's delayed ACK: ~40 ms a call)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise PortInUse(
                f"port {port} on {host} is already in use (is persistproc already running?"
                " `persistproc --port N` picks another)"
            ) from None
        raise PortInUse(f"cannot listen on {host}:{port}: {error.strerror}") from None
    sock.listen(128)
    sock.set_inheritable(False)
    return sock


def setup_logging(data_dir: Path) -> None:
    handler = logging.FileHandler(paths.server_log(data_dir), encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("persistproc: %(message)s"))
    log.handlers[:] = [handler, console]
    log.setLevel(logging.INFO)
    log.propagate = False


def serve(host: str, port: int, data_dir: Path) -> int:
    """Run the server until SIGINT/SIGTERM; returns the exit status."""
    try:
        sock = bind(host, port)
    except PortInUse as error:
        print(f"persistproc: {error}", file=sys.stderr)
        return 1
    paths.ensure_private_dir(data_dir)
    setup_logging(data_dir)
    supervisor = Supervisor(data_dir)
    app = build_app(supervisor)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=3,
        ws="websockets-sansio",
    )
    server = uvicorn.Server(config)
    shown = f"[{host}]" if ":" in host else host
    log.info(
        "serving MCP at http://%s:%d/mcp/ (data in %s)", shown, sock.getsockname()[1], data_dir
    )
    # uvicorn stops gracefully on SIGINT/SIGTERM (our lifespan stops every process), then raises
    # the signal again for the handlers it found. Finding these no-ops, the exit is ours: status 0.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: None)
    asyncio.run(server.serve(sockets=[sock]))
    log.info("stopped")
    return 0
