"""Refuse connections from other local users, once per connection, before any request is read.

On a shared machine every user can reach 127.0.0.1, and the server runs commands as its own user.
On Linux the kernel knows which uid owns the other end of a loopback TCP connection: the socket
whose local address is the peer's address and whose remote address is ours. Two ways to ask:
- sock_diag over netlink (what `ss` uses): one exact lookup, about 15 us;
- the tables in /proc/net/tcp and tcp6: reading them walks the kernel's whole connection hash
  (262144 buckets on a 24 GB machine), 8-30 ms a read, so it is only the fallback.
On the Unix socket the kernel hands over the peer's credentials (SO_PEERCRED).
Where none is available (macOS has no /proc nor sock_diag), no check is made; the docs say so.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("persistproc")

PROC_NET = Path("/proc/net")
_UID_COLUMN, _INODE_COLUMN = 7, 9

# linux/netlink.h, linux/sock_diag.h, linux/inet_diag.h
_NETLINK_SOCK_DIAG, _SOCK_DIAG_BY_FAMILY, _NLMSG_ERROR, _NLM_F_REQUEST = 4, 20, 2, 1
_ALL_STATES, _NO_COOKIE = 0xFFFFFFFF, 0xFFFFFFFF
_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port id
_DIAG_UID_INODE = struct.Struct("=II")  # in inet_diag_msg after family..id, expires, queues
_DIAG_UID_OFFSET = _HEADER.size + 4 + 48 + 12


def _diag_address(address: str, family: int) -> bytes:
    return socket.inet_pton(family, address.split("%", 1)[0]).ljust(16, b"\0")


def diag_peer_uid(peer: tuple[str, int], ours: tuple[str, int]) -> int | None:
    """The uid owning the peer's end of a local TCP connection, by one sock_diag lookup; None
    when no live socket has those addresses. OSError when sock_diag cannot be used."""
    family = socket.AF_INET6 if ":" in peer[0] else socket.AF_INET
    request = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, _ALL_STATES)
    request += struct.pack("!HH", peer[1], ours[1])  # the peer's socket: local = peer
    request += _diag_address(peer[0], family) + _diag_address(ours[0], family)
    request += struct.pack("=III", 0, _NO_COOKIE, _NO_COOKIE)  # any interface, any cookie
    header = _HEADER.pack(_HEADER.size + len(request), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST, 1, 0)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as netlink:
        netlink.sendto(header + request, (0, 0))
        reply = netlink.recv(8192)
    length, kind = struct.unpack_from("=IH", reply)
    if kind == _NLMSG_ERROR:
        code = -struct.unpack_from("=i", reply, _HEADER.size)[0]
        if code == errno.ENOENT:
            return None
        raise OSError(code, os.strerror(code))
    if kind != _SOCK_DIAG_BY_FAMILY or length < _DIAG_UID_OFFSET + _DIAG_UID_INODE.size:
        raise OSError(errno.EPROTO, "unexpected sock_diag reply")
    uid, inode = _DIAG_UID_INODE.unpack_from(reply, _DIAG_UID_OFFSET)
    # Inode 0: a closing (time-wait) socket whose owner let go of it; nobody to answer.
    return int(uid) if inode else None


def _hex_v4(address: str) -> str:
    # The kernel prints the address as one native-endian 32-bit word.
    return f"{struct.unpack('=I', socket.inet_aton(address))[0]:08X}"


def _hex_v6(address: str) -> str:
    words = struct.unpack("=4I", socket.inet_pton(socket.AF_INET6, address))
    return "".join(f"{word:08X}" for word in words)


def _endpoint(address: str, port: int, table: str) -> str:
    if table == "tcp":
        return f"{_hex_v4(address)}:{port:04X}"
    if "." in address and ":" not in address:  # an IPv4 peer on a dual-stack socket
        address = f"::ffff:{address}"
    return f"{_hex_v6(address.split('%', 1)[0])}:{port:04X}"


def tcp_peer_uid(peer: tuple[str, int], ours: tuple[str, int], root: Path = PROC_NET) -> int | None:
    """The uid owning the peer's end of a local TCP connection, from /proc/net/tcp{,6}, or None
    when no live socket has that row (gone already, or not on this machine)."""
    host = peer[0].split("%", 1)[0]
    tables = ["tcp", "tcp6"] if ipaddress.ip_address(host).version == 4 else ["tcp6"]
    for table in tables:
        row = f" {_endpoint(peer[0], peer[1], table)} {_endpoint(ours[0], ours[1], table)} "
        try:
            text = (root / table).read_bytes().decode("ascii", "replace")
        except OSError:
            continue
        at = text.find(row)
        if at < 0:
            continue
        end = text.find("\n", at)
        fields = text[text.rfind("\n", 0, at) + 1 : end if end >= 0 else len(text)].split()
        # Inode 0: an orphaned or closing socket whose owner let go of it; nobody to answer.
        if len(fields) > _INODE_COLUMN and fields[_INODE_COLUMN] != "0":
            return int(fields[_UID_COLUMN])
    return None


def unix_peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process at the other end of a Unix socket (Linux), else None."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    pid_uid_gid = sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    return int(struct.unpack("3i", pid_uid_gid)[1])


class PeerGuard:
    """The policy: the peer must be this server's uid. Logs each kind of refusal once at warning
    (a scan of the port must not fill the log), then at debug."""

    def __init__(self, uid: int | None = None, proc_net: Path = PROC_NET) -> None:
        self.uid = os.geteuid() if uid is None else uid
        self.proc_net = proc_net
        self.method = _tcp_method(proc_net)  # "sock_diag", "proc", or None: no TCP check
        self._logged: set[str] = set()

    def _tcp_uid(self, peer: tuple[str, int], ours: tuple[str, int]) -> int | None:
        if self.method == "sock_diag":
            try:
                return diag_peer_uid(peer, ours)
            except OSError:
                pass  # out of file descriptors, say: the tables still answer, slowly
        return tcp_peer_uid(peer, ours, self.proc_net)

    def refusal(self, sock: socket.socket | None) -> str | None:
        """Why this connection is refused, or None to serve it."""
        if sock is None:
            return None
        if sock.family == socket.AF_UNIX:
            uid = unix_peer_uid(sock)
            if uid is None or uid == self.uid:
                return None
            return self._refuse(f"uid {uid}", f"refused a Unix socket connection from uid {uid}")
        if sock.family not in (socket.AF_INET, socket.AF_INET6) or self.method is None:
            return None
        try:
            peer, ours = sock.getpeername(), sock.getsockname()
        except OSError:
            return "the connection is gone"
        uid = self._tcp_uid((peer[0], peer[1]), (ours[0], ours[1]))
        if uid == self.uid:
            return None
        if uid is None:
            return self._refuse(
                "unknown", "refused a connection whose owner the kernel does not know"
            )
        return self._refuse(f"uid {uid}", f"refused a connection from another user (uid {uid})")

    def _refuse(self, kind: str, message: str) -> str:
        if kind in self._logged:
            log.debug("%s", message)
        else:
            self._logged.add(kind)
            log.warning("%s (more of these are logged at debug level only)", message)
        return message


def _tcp_method(proc_net: Path) -> str | None:
    """sock_diag when it finds a real loopback connection of ours, else the /proc tables when
    they find it, else None: no check possible. (A kernel without the TCP diag module answers
    "no such socket" to every lookup, as it does for one that does not exist: only a lookup of
    a connection that does exist tells them apart.)"""
    try:
        with _loopback_pair() as (peer, ours):
            with contextlib.suppress(OSError, AttributeError):  # no AF_NETLINK: not Linux
                if diag_peer_uid(peer, ours) == os.geteuid():
                    return "sock_diag"
            if (proc_net / "tcp").exists() and tcp_peer_uid(peer, ours, proc_net) == os.geteuid():
                return "proc"
    except OSError:
        pass
    return None


@contextlib.contextmanager
def _loopback_pair() -> Iterator[tuple[tuple[str, int], tuple[str, int]]]:
    """A connected pair on 127.0.0.1: (the client end's address, the accepted end's address)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        with socket.create_connection(listener.getsockname(), timeout=2) as client:
            accepted, _ = listener.accept()
            with accepted:
                yield client.getsockname()[:2], accepted.getsockname()[:2]


def peer_checked_protocol(guard: PeerGuard) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol with the check in connection_made: one check per connection,
    before a byte of the request is read. WebSocket upgrades start on this protocol too."""

    class PeerCheckedProtocol(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if guard.refusal(transport.get_extra_info("socket")) is not None:
                transport.abort()

    return PeerCheckedProtocol
