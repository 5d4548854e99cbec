"""A small synchronous JSON client for the server's /api/ routes, over http.client.

It talks over the server's Unix socket in the data directory when it may (no address was given on
the command line) and the socket is there in a private directory; else, or when nobody answers on
the socket, over TCP. It sends the server's bearer token when it finds one.

Every failure is a ClientError whose message is meant to be shown as it is: no server, the server's
own error message, or what went wrong on the way.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import quote, urlencode

from persistproc import paths
from persistproc.config import DEFAULT_HOST, DEFAULT_PORT, TOKEN_ENV, is_token_shaped
from persistproc.hostcheck import is_loopback_host

DEFAULT_TIMEOUT = 30.0
# Extra seconds on top of a wait the server does on our behalf, so the reply arrives before the
# socket gives up on it.
MARGIN = 15.0

Target: TypeAlias = "str | int"  # a pid, or a name


def find_token(data_dir: Path, environ: dict[str, str] | None = None) -> str | None:
    """The bearer token to send: $PERSISTPROC_TOKEN, else the one the server wrote to its data
    directory, else None (the server requires none)."""
    value = (environ if environ is not None else os.environ).get(TOKEN_ENV, "").strip()
    if value:
        return _usable(value, f"${TOKEN_ENV}")
    path = paths.token_file(data_dir)
    try:
        value = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    return _usable(value, str(path)) if value else None


def _usable(token: str, source: str) -> str:
    """A token goes into an HTTP header: one that cannot is an error naming where it came from
    (never the value: it is a secret)."""
    if not is_token_shaped(token):
        raise ClientError(
            f"the token in {source} is not usable: a token is visible ASCII characters (letters,"
            " digits, punctuation), with no spaces or line breaks"
        )
    return token


class ClientError(Exception):
    """A failure with a message for the person at the terminal."""


class ServerUnavailable(ClientError):
    """Nothing listens on the address."""


class ApiError(ClientError):
    """The server answered with an error; the message is the server's."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a Unix socket; the Host header says localhost, which the server accepts."""

    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self.path))
        except OSError:
            sock.close()
            raise
        self.sock = sock


class Client:
    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        data_dir: Path | None = None,
        unix_socket: bool = False,
    ) -> None:
        """data_dir: where to find the token (and the Unix socket); without it, only
        $PERSISTPROC_TOKEN is sent. unix_socket: try the data directory's socket first."""
        self.host, self.port, self.timeout = host, port, timeout
        self.data_dir = data_dir
        self.unix_socket = unix_socket and data_dir is not None

    def socket_path(self) -> Path | None:
        """The server's Unix socket to try, if this client may use one and it is there in a
        directory that only this user can have put it in."""
        if not self.unix_socket or self.data_dir is None:
            return None
        path = paths.server_socket(self.data_dir, self.port)
        if not paths.is_private_dir(path.parent) or not path.exists():
            return None
        return path

    def headers(self) -> dict[str, str]:
        """The Authorization header when there is a token to send (read each time: a server
        started meanwhile may have written one)."""
        if not is_loopback_host(self.host):
            return {}  # a token is for this machine's server only, never sent elsewhere
        if self.data_dir is not None:
            token = find_token(self.data_dir)
        else:
            value = os.environ.get(TOKEN_ENV, "").strip()
            token = _usable(value, f"${TOKEN_ENV}") if value else None
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        """A connected connection: the Unix socket when it answers, else TCP (not yet connected:
        http.client connects on the first request)."""
        path = self.socket_path()
        if path is not None:
            unix = UnixHTTPConnection(path, timeout)
            try:
                unix.connect()
                return unix
            except OSError:
                unix.close()  # a socket file nobody serves: the server is gone or on TCP only
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    # ----- transport ----------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """One request; returns the decoded JSON answer or raises ClientError."""
        if query:
            kept = {k: v for k, v in query.items() if v is not None}
            if kept:
                path += "?" + urlencode(kept)
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json", **self.headers()}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        connection = self._connect(self.timeout if timeout is None else timeout)
        try:
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            status, reason, data = response.status, response.reason, response.read()
        except ConnectionRefusedError:
            raise ServerUnavailable(
                f"no persistproc server on {self.address} (start one with 'persistproc --serve')"
            ) from None
        except TimeoutError:
            raise ClientError(
                f"the server on {self.address} did not answer within {connection.timeout:g} s"
            ) from None
        except (http.client.HTTPException, ConnectionError) as error:
            raise ClientError(
                f"the server on {self.address} closed the connection ({type(error).__name__})"
            ) from None
        except OSError as error:
            raise ClientError(
                f"cannot reach persistproc on {self.address}: {error.strerror or error}"
            ) from None
        finally:
            connection.close()
        try:
            return _decode(status, reason, data, self.address)
        except ApiError as error:
            if error.status != 401 or "Authorization" not in headers:
                raise
            # the server says where tokens come from; add which one it refused
            source = f"${TOKEN_ENV}" if os.environ.get(TOKEN_ENV, "").strip() else "the token file"
            raise ApiError(401, f"{error} (it refused the token from {source})") from None

    # ----- one method per route -----------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/health", timeout=5)
        return result

    def list_processes(self, working_directory: str | None = None) -> list[dict[str, Any]]:
        answer = self.request(
            "GET", "/api/processes", query={"working_directory": working_directory}
        )
        processes: list[dict[str, Any]] = answer["processes"]
        return processes

    def start(
        self,
        command: str,
        working_directory: str,
        *,
        wait_for: str | None = None,
        wait_timeout: float = 30,
        **options: Any,
    ) -> dict[str, Any]:
        body = {"command": command, "working_directory": working_directory, **options}
        if wait_for is not None:
            body.update(wait_for=wait_for, wait_timeout=wait_timeout)
        return self._object("POST", "/api/processes", body=body, timeout=wait_timeout + MARGIN)

    def status(self, target: Target) -> dict[str, Any]:
        return self._object("GET", _path(target))

    def output(
        self,
        target: Target,
        *,
        stream: str = "combined",
        lines: int = 100,
        since: int | None = None,
        grep: str | None = None,
        run: int | None = None,
    ) -> dict[str, Any]:
        query = {"stream": stream, "lines": lines, "since": since, "grep": grep, "run": run}
        return self._object("GET", _path(target, "output"), query=query)

    def screen(self, target: Target) -> dict[str, Any]:
        return self._object("GET", _path(target, "screen"))

    def stop(self, target: Target, *, force: bool = False, timeout: float = 10) -> dict[str, Any]:
        body = {"force": force, "timeout": timeout}
        # The server waits `timeout` for SIGTERM, then for SIGKILL to take effect.
        return self._object("POST", _path(target, "stop"), body=body, timeout=timeout + MARGIN)

    def restart(
        self, target: Target, *, wait_for: str | None = None, wait_timeout: float = 30
    ) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if wait_for is not None:
            body.update(wait_for=wait_for, wait_timeout=wait_timeout)
        # The server first stops the old run (up to 10 s), then waits for wait_for.
        timeout = 10 + (wait_timeout if wait_for is not None else 0) + MARGIN
        return self._object("POST", _path(target, "restart"), body=body, timeout=timeout)

    def send(
        self, target: Target, text: str | None = None, keys: list[str] | None = None
    ) -> dict[str, Any]:
        return self._object("POST", _path(target, "input"), body={"text": text, "keys": keys})

    def wait(
        self,
        target: Target,
        pattern: str,
        *,
        timeout: float = 30,
        since: int | None = None,
        stream: str = "combined",
    ) -> dict[str, Any]:
        body = {"pattern": pattern, "timeout": timeout, "since": since, "stream": stream}
        return self._object("POST", _path(target, "wait"), body=body, timeout=timeout + MARGIN)

    def remove(self, target: Target) -> dict[str, Any]:
        return self._object("DELETE", _path(target), timeout=10 + MARGIN)

    def shutdown(self) -> dict[str, Any]:
        return self._object("POST", "/api/shutdown", body={})

    def _object(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        answer = self.request(method, path, **options)
        if not isinstance(answer, dict):
            raise ClientError(f"unexpected answer from the server on {self.address}: {answer!r}")
        return answer


def _path(target: Target, action: str | None = None) -> str:
    path = "/api/processes/" + quote(str(target), safe="")
    return f"{path}/{action}" if action else path


def _decode(status: int, reason: str, data: bytes, address: str) -> Any:
    try:
        answer = json.loads(data) if data else None
    except ValueError:
        answer = None
    if status >= 400:
        if isinstance(answer, dict) and isinstance(answer.get("error"), str):
            raise ApiError(status, answer["error"])
        raise ApiError(status, f"the server on {address} answered HTTP {status} {reason}")
    if answer is None:
        raise ClientError(f"the server on {address} sent an answer that is not JSON")
    return answer
