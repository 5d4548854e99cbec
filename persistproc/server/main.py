"""Serving: bind the port and the Unix socket, write or remove the token file, run uvicorn with the
app behind the peer check, stop every process on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import signal
import socket
import sys
from pathlib import Path

import uvicorn

from persistproc import paths
from persistproc.config import TOKEN_ENV
from persistproc.server.app import build_app
from persistproc.server.peer import PeerGuard, peer_checked_protocol
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


def bind_unix(path: Path) -> socket.socket | None:
    """The CLI's Unix socket, in a directory only this user may enter; a stale socket left by a
    crashed server is replaced. None (TCP only, with a warning) when that cannot be done safely."""
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not directory.is_symlink() and directory.stat().st_uid == os.geteuid():
            directory.chmod(0o700)
    except OSError as error:
        log.warning("no Unix socket: cannot create %s: %s", directory, error.strerror)
        return None
    if not paths.is_private_dir(directory):
        log.warning("no Unix socket: %s is not a private directory of this user", directory)
        return None
    if path.exists() or path.is_symlink():
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(path))
            except OSError:
                try:
                    path.unlink()  # nobody answers: left by a server that did not stop cleanly
                except OSError as error:  # not a socket we can replace (a directory, say)
                    log.warning("no Unix socket: cannot replace %s: %s", path, error.strerror)
                    return None
            else:
                log.warning("no Unix socket: another server answers on %s", path)
                return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        path.chmod(0o600)
    except OSError as error:
        sock.close()
        log.warning("no Unix socket: cannot listen on %s: %s", path, error.strerror)
        return None
    sock.listen(128)
    sock.set_inheritable(False)
    return sock


def write_token_file(path: Path, token: str) -> None:
    """Atomically, and 0600 from the first byte: a reader sees the whole token or none."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(token + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


# Loggers of the libraries under the server: at INFO or DEBUG some of them write tool arguments
# (a client's environment) or replies (a process's output). Whatever their own settings say
# (FASTMCP_LOG_LEVEL=DEBUG, say), they are kept at WARNING.
QUIET_LOGGERS = ("fastmcp", "mcp", "uvicorn", "uvicorn.error", "uvicorn.access", "httpx", "docket")


def setup_logging(data_dir: Path) -> None:
    handler = logging.FileHandler(paths.server_log(data_dir), encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("persistproc: %(message)s"))
    log.handlers[:] = [handler, console]
    log.setLevel(logging.INFO)
    log.propagate = False
    for name in QUIET_LOGGERS:
        library = logging.getLogger(name)
        library.setLevel(max(library.getEffectiveLevel(), logging.WARNING))


def serve(
    host: str,
    port: int,
    data_dir: Path,
    token: str | None = None,
    max_log_bytes: int | None = None,
) -> int:
    """Run the server until SIGINT/SIGTERM; returns the exit status. With a token, every route
    requires it and it is written to the data directory for the CLI."""
    try:
        sock = bind(host, port)
    except PortInUse as error:
        print(f"persistproc: {error}", file=sys.stderr)
        return 1
    paths.ensure_private_dir(data_dir)
    try:
        lock = lock_data_dir(data_dir, sock.getsockname()[1])
    except DataDirInUse as error:
        sock.close()
        print(f"persistproc: {error}", file=sys.stderr)
        return 1
    setup_logging(data_dir)
    token_file = paths.token_file(data_dir)
    if token is not None:
        write_token_file(token_file, token)
    else:
        with contextlib.suppress(FileNotFoundError):
            token_file.unlink()  # a previous server's: clients would send a token nobody wants
    unix_path = paths.server_socket(data_dir, sock.getsockname()[1])
    unix = bind_unix(unix_path)
    unix_id = _file_id(unix_path) if unix is not None else None
    supervisor = Supervisor(data_dir, max_log_bytes=max_log_bytes)
    hint = f" in {token_file} (or from ${TOKEN_ENV})."
    app = build_app(supervisor, token=token, token_hint=hint)
    guard = PeerGuard()
    config = uvicorn.Config(
        app,
        http=peer_checked_protocol(guard),
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
    if unix is not None:
        log.info("serving the command line on %s", unix_path)
    if token is not None:
        log.info("every request must carry the bearer token (in %s)", token_file)
    if guard.method is None:
        log.info("no sock_diag nor /proc/net/tcp: TCP connections of other users are let in")
    # uvicorn stops gracefully on SIGINT/SIGTERM (our lifespan stops every process), then raises
    # the signal again for the handlers it found. Finding these no-ops, the exit is ours: status 0.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: None)
    try:
        asyncio.run(server.serve(sockets=[sock] if unix is None else [sock, unix]))
    finally:
        if unix is not None and _file_id(unix_path) == unix_id:
            with contextlib.suppress(OSError):
                unix_path.unlink()  # ours, not a newer server's
        if token is not None:
            with contextlib.suppress(OSError):
                if token_file.read_text(encoding="ascii").strip() == token:
                    token_file.unlink()  # ours, not a newer server's
    log.info("stopped")
    os.close(lock)  # last: a server waiting for this data directory may start now
    return 0


class DataDirInUse(Exception):
    pass


def lock_data_dir(data_dir: Path, port: int) -> int:
    """Hold the data directory for this server's life: two servers on one directory would each
    take the other's processes for leftovers of a crash and kill them, and share one token file.
    Returns the descriptor that holds the lock (closed at exit, or by the kernel at a crash)."""
    path = paths.lock_file(data_dir)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 200, 0).decode("ascii", "replace").split()
        os.close(fd)
        pid, other = [*holder, "?", "?"][:2]
        raise DataDirInUse(
            f"the data directory {data_dir} is in use by another persistproc server (pid {pid},"
            f" port {other}): stop it with `persistproc --port {other} shutdown`, or give this"
            " one its own --data-dir"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} {port}\n".encode(), 0)
    return fd


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        info = path.lstat()
    except OSError:
        return None
    return info.st_dev, info.st_ino
