"""Other users of the same machine: a TCP connection whose other end belongs to another uid is
refused before a byte is read (Linux: /proc/net/tcp), the Unix socket checks SO_PEERCRED, and the
command line talks over a Unix socket in a directory only its user may enter."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import Server, free_port
from secure_server import Starter, cli, server_starter

from persistproc import paths
from persistproc.client.api import Client, ClientError
from persistproc.client.attach import _open
from persistproc.server.peer import PeerGuard, diag_peer_uid, tcp_peer_uid

LINUX_TABLES = Path("/proc/net/tcp").exists()
needs_tables = pytest.mark.skipif(not LINUX_TABLES, reason="no /proc/net/tcp: no peer uid check")
needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="connecting as another uid needs root (to drop to that uid)"
)


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Starter]:
    with server_starter(tmp_path) as starter:
        yield starter


# ----- peer uid ---------------------------------------------------------------------------------


@pytest.fixture
def other_user() -> Iterator[tuple[int, int]]:
    """(uid, gid) of a user that is not us: `nobody`, else a system user made for the test."""
    try:
        entry = pwd.getpwnam("nobody")
        yield entry.pw_uid, entry.pw_gid
        return
    except KeyError:
        pass
    name = f"pp-test-{os.getpid()}"
    subprocess.run(["useradd", "--system", "--no-create-home", name], check=True, timeout=30)
    try:
        entry = pwd.getpwnam(name)
        yield entry.pw_uid, entry.pw_gid
    finally:
        subprocess.run(["userdel", name], check=False, timeout=30)


def _python_for_anyone() -> str:
    """An interpreter another user can run (this one may live under a private home)."""
    found = [sys.executable, shutil.which("python3"), "/usr/bin/python3", "/usr/local/bin/python3"]
    for candidate in found:
        if not candidate or not os.path.exists(candidate):
            continue
        real = Path(os.path.realpath(candidate))
        if all(os.stat(p).st_mode & stat.S_IXOTH for p in [real, *real.parents]):
            return str(real)
    pytest.skip("no Python interpreter that another user may run")


# Connects, sends one request, prints the start of the answer (b'' when the server hung up at once).
CONNECT = """
import socket, sys
sock = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=15)
sock.sendall(sys.argv[3].encode().replace(b"|", b"\\r\\n"))
data = b""
try:
    while len(data) < 12 and (chunk := sock.recv(65536)):
        data += chunk
except ConnectionResetError:
    pass
print(repr(data[:12]))
"""

GET = "GET /health HTTP/1.1|Host: 127.0.0.1|Connection: close||"
UPGRADE = (
    "GET /api/processes/x/attach HTTP/1.1|Host: 127.0.0.1|Upgrade: websocket|Connection: Upgrade|"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==|Sec-WebSocket-Version: 13||"
)


def _connect_as(user: tuple[int, int] | None, port: int, request: str) -> str:
    """What a client of `user` (None: us) receives for `request` on the server's TCP port."""
    result = subprocess.run(
        [_python_for_anyone(), "-I", "-c", CONNECT, "127.0.0.1", str(port), request],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
        user=None if user is None else user[0],
        group=None if user is None else user[1],
        extra_groups=None if user is None else [],
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@needs_root
@needs_tables
def test_another_uid_is_refused_on_tcp(start: Starter, other_user: tuple[int, int]) -> None:
    server = start()
    assert _connect_as(None, server.port, GET) == repr(b"HTTP/1.1 200")
    assert _connect_as(None, server.port, UPGRADE) == repr(b"HTTP/1.1 101")
    for _ in range(3):
        assert _connect_as(other_user, server.port, GET) == repr(b"")
    assert _connect_as(other_user, server.port, UPGRADE) == repr(b"")
    assert _connect_as(None, server.port, GET) == repr(b"HTTP/1.1 200")  # still serving
    server.stop()
    log = (server.data_dir / "server.log").read_text()
    assert log.count(f"refused a connection from another user (uid {other_user[0]})") == 1


@needs_root
def test_another_uid_is_refused_on_a_unix_socket(other_user: tuple[int, int]) -> None:
    """SO_PEERCRED: the server's own socket lives in a 0700 directory, so the check is tried
    here on a socket another user may reach."""
    directory = Path(tempfile.mkdtemp())
    try:
        directory.chmod(0o711)
        path = directory / "s"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(str(path))
            path.chmod(0o666)
            listener.listen(1)
            code = "import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])"
            subprocess.run(
                [_python_for_anyone(), "-I", "-c", code, str(path)],
                check=True,
                timeout=60,
                cwd="/",
                user=other_user[0],
                group=other_user[1],
                extra_groups=[],
            )
            connection, _ = listener.accept()
            with connection:
                refusal = PeerGuard().refusal(connection)
        assert refusal is not None and f"uid {other_user[0]}" in refusal
        mine, theirs = socket.socketpair()
        with mine, theirs:
            assert PeerGuard().refusal(mine) is None
    finally:
        shutil.rmtree(directory)


@needs_tables
@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_the_kernel_names_the_owner_of_a_live_connection(address: str) -> None:
    """Both ways of asking (sock_diag, the /proc tables) agree; a closed peer has no owner."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as listener:
        try:
            listener.bind((address, 0))
        except OSError:
            pytest.skip(f"no {address} on this machine")
        listener.listen(1)
        client = socket.create_connection(listener.getsockname()[:2], timeout=10)
        connection, _ = listener.accept()
        with connection:
            peer, ours = connection.getpeername()[:2], connection.getsockname()[:2]
            by_tables = PeerGuard()
            by_tables.method = "proc"
            assert tcp_peer_uid(peer, ours) == os.geteuid()
            assert PeerGuard().refusal(connection) is None
            assert by_tables.refusal(connection) is None
            if PeerGuard().method == "sock_diag":
                assert diag_peer_uid(peer, ours) == os.geteuid()
            client.close()  # an orphaned, closing socket has no owner any more
            assert tcp_peer_uid(peer, ours) is None
            assert PeerGuard().refusal(connection) is not None
            assert by_tables.refusal(connection) is not None


# ----- the Unix socket --------------------------------------------------------------------------


@contextmanager
def _only_on_the_socket(server: Server) -> Iterator[int]:
    """Move the server's socket to the name of a port nobody listens on: a client asking for that
    port can only reach the server through the socket. Yields that port; moves it back after."""
    port = free_port()
    socket_path = paths.server_socket(server.data_dir, server.port)
    moved = paths.server_socket(server.data_dir, port)
    socket_path.rename(moved)
    try:
        yield port
    finally:
        moved.rename(socket_path)  # for the server to remove when it stops


def _assert_private(socket_path: Path) -> None:
    directory = socket_path.parent.stat()
    assert stat.S_IMODE(directory.st_mode) == 0o700 and directory.st_uid == os.geteuid()
    assert stat.S_ISSOCK(socket_path.stat().st_mode)


@pytest.mark.parametrize("long_path", [False, True])
def test_the_cli_talks_over_the_unix_socket(
    start: Starter, tmp_path: Path, long_path: bool
) -> None:
    data_dir = tmp_path / ("d" * 90 if long_path else "data")
    server = start(data_dir=data_dir)
    socket_path = paths.server_socket(data_dir, server.port)
    # A data directory too deep for a socket address gets a short socket elsewhere.
    assert (socket_path.parent.parent == data_dir) != long_path
    assert len(os.fsencode(socket_path)) <= paths.SOCKET_PATH_LIMIT
    _assert_private(socket_path)
    data = {"PERSISTPROC_DATA_DIR": str(data_dir)}
    with _only_on_the_socket(server) as port:
        listed = cli("list", "--json", PERSISTPROC_PORT=str(port), **data)
        assert listed.returncode == 0 and json.loads(listed.stdout) == [], listed.stderr
        # An address on the command line means TCP to that address, never the socket.
        explicit = cli("--port", str(port), "list", **data)
        assert explicit.returncode == 1 and "no persistproc server" in explicit.stderr
    server.stop()
    assert not socket_path.exists()


def test_a_stale_socket_is_replaced(start: Starter, tmp_path: Path) -> None:
    port, data_dir = free_port(), tmp_path / "data"
    stale = paths.server_socket(data_dir, port)
    stale.parent.mkdir(parents=True, mode=0o700)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as crashed:
        crashed.bind(str(stale))  # closed without unlinking, as a killed server leaves it
    server = start(data_dir=data_dir, port=port)
    assert Client(port=port, data_dir=data_dir, unix_socket=True).health()["name"] == "persistproc"
    server.stop()
    assert not stale.exists()


def test_a_socket_in_a_shared_directory_is_not_used(tmp_path: Path) -> None:
    """Someone else could have put it there: the client goes to TCP instead."""
    data_dir = tmp_path / "data"
    planted = paths.server_socket(data_dir, 1)
    planted.parent.mkdir(parents=True, mode=0o755)
    planted.parent.chmod(0o755)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(planted))
        listener.listen(1)
        client = Client(port=1, data_dir=data_dir, unix_socket=True)
        assert client.socket_path() is None
        with pytest.raises(ClientError):
            client.health()


async def test_attach_over_the_unix_socket_with_a_token(start: Starter, tmp_path: Path) -> None:
    server = start("--token", "generate")
    with _only_on_the_socket(server) as port:
        client = Client(port=port, data_dir=server.data_dir, unix_socket=True)
        started = client.start("echo attached; sleep 60", str(tmp_path), name="sleeper")
        query = "columns=80&rows=24&read_only=1"
        websocket = await _open(client, f"/api/processes/sleeper/attach?{query}")
        async with websocket:
            hello = json.loads(await websocket.recv())
        assert hello["process"]["pid"] == started["pid"]
        client.stop("sleeper", force=True)
