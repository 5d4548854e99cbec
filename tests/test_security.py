"""Who may talk to the server: loopback Hosts only; browsers only on MCP from the server's own
origin; never on the REST API or the attach WebSocket; no listening beyond loopback; the bearer
token on every route when one is required; and what the server's own log never holds.

Other local users (peer uid checks) and the Unix socket: test_security_local.py."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Server, free_port
from fastmcp import Client as McpClient
from secure_server import Starter, clean_environment, cli, server_starter, stderr_of
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

INITIALIZE = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"},
        },
    }
).encode()


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy


def _answer(
    url: str, headers: dict[str, str], body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, headers=headers)
    if body is not None:
        request.add_header("content-type", "application/json")
        request.add_header("accept", "application/json, text/event-stream")
    try:
        with _DIRECT.open(request, timeout=10) as response:
            return int(response.status), _lower(response.headers.items()), response.read()
    except urllib.error.HTTPError as error:
        return error.code, _lower(error.headers.items()), error.read()


def _lower(items: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in items}


def _status(url: str, headers: dict[str, str], body: bytes | None = None) -> int:
    return _answer(url, headers, body)[0]


def test_rest_api_refuses_any_browser_origin(server: Server) -> None:
    url = f"{server.base}/api/processes"
    assert _status(url, {}) == 200
    for origin in ("http://localhost:3000", f"http://127.0.0.1:{server.port}", "null"):
        assert _status(url, {"Origin": origin}) == 403, origin


def test_mcp_accepts_only_its_own_origin(server: Server) -> None:
    own = f"http://127.0.0.1:{server.port}"
    assert _status(server.url, {"Origin": own}, INITIALIZE) == 200
    assert _status(server.url, {"Origin": "http://localhost:5173"}, INITIALIZE) == 403
    assert _status(server.url, {"Host": "attacker.example"}, INITIALIZE) == 421


def _ws_url(server: Server, target: str) -> str:
    return f"ws://127.0.0.1:{server.port}/api/processes/{target}/attach"


async def test_attach_socket_refuses_a_web_page(server: Server) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(_ws_url(server, "x"), origin="http://localhost:5173"):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 403


@pytest.mark.parametrize("target", ["nosuch", "%C2%B2"])  # "²" is a digit to str.isdigit
async def test_attach_to_unknown_process_says_why(server: Server, target: str) -> None:
    async with connect(_ws_url(server, target)) as websocket:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(websocket.recv(), 10)
    assert closed.value.rcvd is not None and "no process named" in closed.value.rcvd.reason


def test_serve_refuses_a_non_loopback_host() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "persistproc",
            "--serve",
            "--host",
            "0.0.0.0",
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "loopback only" in result.stderr and "Traceback" not in result.stderr


# ----- DNS rebinding and foreign origins, on every kind of route --------------------------------

REBOUND_HOSTS = ("attacker.example", "localhost.attacker.example", "127.0.0.1.nip.io")


@pytest.mark.parametrize("path", ["/health", "/api/processes", "/mcp", "/mcp/"])
def test_http_refuses_a_rebound_host(server: Server, path: str) -> None:
    body = INITIALIZE if path.startswith("/mcp") else None
    for host in REBOUND_HOSTS:
        assert _status(server.base + path, {"Host": f"{host}:{server.port}"}, body) == 421, host
    assert _status(server.base + path, {"Host": f"localhost:{server.port}"}, body) == 200


def test_mcp_refuses_a_null_or_other_port_origin(server: Server) -> None:
    for origin in ("null", f"http://127.0.0.1:{server.port + 1}", f"file://{server.port}"):
        assert _status(server.url, {"Origin": origin}, INITIALIZE) == 403, origin


async def test_attach_socket_refuses_a_rebound_host(server: Server) -> None:
    for host in REBOUND_HOSTS:
        # websockets names the Host after the URI; the TCP connection goes to 127.0.0.1.
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"ws://{host}:{server.port}/api/processes/x/attach", sock=sock):
                pass
        sock.close()
        assert refused.value.response.status_code == 421, host


async def test_attach_socket_refuses_even_its_own_origin(server: Server) -> None:
    """A page the server itself serves has no business attaching: only terminals do."""
    for origin in (f"http://127.0.0.1:{server.port}", "null"):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(_ws_url(server, "x"), origin=origin):  # type: ignore[arg-type]
                pass
        assert refused.value.response.status_code == 403


# ----- the bearer token --------------------------------------------------------------------------

TOKEN = "test-token-0123456789abcdef"


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Starter]:
    with server_starter(tmp_path) as starter:
        yield starter


WRONG_AUTHORIZATIONS: list[dict[str, str]] = [
    {},
    {"Authorization": "Bearer wrong-token-0123456789abcdef"},
    {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": TOKEN},
    {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": f"bearer  {TOKEN}"},
]


@pytest.mark.parametrize("path", ["/health", "/api/processes", "/mcp", "/mcp/"])
def test_every_http_route_requires_the_token(start: Starter, path: str) -> None:
    server = start(env=clean_environment(PERSISTPROC_TOKEN=TOKEN))
    url, body = server.base + path, INITIALIZE if path.startswith("/mcp") else None
    for headers in WRONG_AUTHORIZATIONS:
        status, answer_headers, data = _answer(url, headers, body)
        assert status == 401, headers
        assert answer_headers["www-authenticate"].startswith("Bearer")
        message = json.loads(data)["error"]
        assert "requires a bearer token" in message and str(server.data_dir / "token") in message
        assert TOKEN not in data.decode()
    assert _status(url, {"Authorization": f"Bearer {TOKEN}"}, body) == 200


async def test_the_attach_socket_requires_the_token(start: Starter) -> None:
    server = start("--token", TOKEN)
    for headers in WRONG_AUTHORIZATIONS:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(_ws_url(server, "nosuch"), additional_headers=headers):
                pass
        assert refused.value.response.status_code == 401
        assert b"requires a bearer token" in refused.value.response.body
    # With the token, the upgrade goes through: the refusal is about the process, not the caller.
    right = {"Authorization": f"Bearer {TOKEN}"}
    async with connect(_ws_url(server, "nosuch"), additional_headers=right) as websocket:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(websocket.recv(), 10)
    assert closed.value.rcvd is not None and "no process named" in closed.value.rcvd.reason


async def test_mcp_clients_work_with_the_token(start: Starter) -> None:
    server = start("--token", TOKEN)
    async with McpClient(server.url, auth=TOKEN) as client:
        listed = await client.call_tool("list_processes", {})
    assert listed.structured_content is not None


def test_a_generated_token_is_written_0600_and_a_stale_one_removed(start: Starter) -> None:
    server = start("--token", "generate")
    token_file = server.data_dir / "token"
    info = token_file.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == os.geteuid()
    token = token_file.read_text().strip()
    assert len(token) >= 40
    assert _status(f"{server.base}/health", {}) == 401
    assert _status(f"{server.base}/health", {"Authorization": f"Bearer {token}"}) == 200
    assert server.stop() == 0
    assert not token_file.exists()  # the server took its token with it
    token_file.write_text("left-by-a-crashed-server-0123456789\n")
    tokenless = start()
    assert not token_file.exists()
    assert _status(f"{tokenless.base}/health", {}) == 200


def test_the_cli_finds_the_token_by_itself(start: Starter, tmp_path: Path) -> None:
    server = start("--token", "generate")
    data = {"PERSISTPROC_DATA_DIR": str(server.data_dir)}
    # Over the Unix socket (no address given), and over TCP (--port given).
    started = cli(
        "run",
        "--detach",
        "--name",
        "tok",
        "--",
        "echo",
        "hi",
        **data,
        PERSISTPROC_PORT=str(server.port),
    )
    assert started.returncode == 0, started.stderr
    listed = cli("--port", str(server.port), "list", "--json", **data)
    assert listed.returncode == 0, listed.stderr
    assert [p["name"] for p in json.loads(listed.stdout)] == ["tok"]
    # Another data directory holds no token: the refusal says what is missing and where to look.
    other = cli("--port", str(server.port), "list", PERSISTPROC_DATA_DIR=str(tmp_path / "other"))
    assert other.returncode == 1 and "Traceback" not in other.stderr
    assert (
        "requires a bearer token" in other.stderr and str(server.data_dir / "token") in other.stderr
    )
    # $PERSISTPROC_TOKEN wins over the file.
    told = cli("--port", str(server.port), "list", PERSISTPROC_TOKEN=token_or_fail(server))
    assert told.returncode == 0, told.stderr
    # A wrong one: the refusal says which token was refused.
    wrong = cli("--port", str(server.port), "list", PERSISTPROC_TOKEN="w" * 20, **data)
    assert wrong.returncode == 1 and "it refused the token from $PERSISTPROC_TOKEN" in wrong.stderr


def token_or_fail(server: Server) -> str:
    return (server.data_dir / "token").read_text().strip()


@pytest.mark.parametrize(
    ("options", "env", "expected"),
    [
        (["--token", "short"], {}, "--token must be at least 16"),
        (["--token", "has a space in the middle"], {}, "no spaces"),
        ([], {"PERSISTPROC_TOKEN": "short-secret"}, "PERSISTPROC_TOKEN must be at least 16"),
    ],
)
def test_a_bad_token_is_refused_before_serving(
    options: list[str], env: dict[str, str], expected: str, tmp_path: Path
) -> None:
    result = cli(
        "--serve", "--port", str(free_port()), "--data-dir", str(tmp_path), *options, **env
    )
    assert result.returncode == 2 and expected in result.stderr
    assert "Traceback" not in result.stderr and "short-secret" not in result.stderr


def test_token_goes_with_serve_only() -> None:
    result = cli("--token", TOKEN, "list")
    assert result.returncode == 2 and "--token goes with --serve" in result.stderr


# ----- what the server's own log never holds -----------------------------------------------------

SECRET = "s3cret-" + os.urandom(8).hex()


async def test_the_server_log_holds_no_environment_output_or_token(
    start: Starter, tmp_path: Path
) -> None:
    """With its libraries asked for DEBUG logs, the server still writes none of: the environment a
    client sent, what a process printed, tool replies, bad arguments, the token."""
    token = "log-token-" + os.urandom(8).hex()
    server = start(env=clean_environment(PERSISTPROC_TOKEN=token, FASTMCP_LOG_LEVEL="DEBUG"))
    command = 'echo "out:$SECRET_VALUE"; echo "err:$SECRET_VALUE" >&2; sleep 30'
    calls: list[tuple[str, dict[str, Any]]] = [
        (
            "start_process",
            {
                "command": command,
                "name": "leaky",
                "wait_for": "err:s3cret",
                "environment": {"SECRET_VALUE": SECRET},
            },
        ),
        ("get_process_output", {"name": "leaky"}),
        ("get_process_output", {"name": "leaky", "stream": "stderr", "grep": SECRET[:10]}),
        ("get_process_screen", {"name": "leaky"}),
        ("wait_for_output", {"name": "leaky", "pattern": "out:", "since": 0, "timeout": 5}),
        ("get_process_status", {"name": "leaky"}),
        ("list_processes", {}),
        # Bad arguments that carry the secret: the refusals go to the client, not to the log.
        ("start_process", {"command": "true", "environment": {"SECRET_VALUE": [SECRET]}}),
        ("start_process", {"command": "true", "environment": SECRET}),
        ("start_process", {"command": "true", "working_directory": f"/nonexistent/{SECRET}"}),
        ("start_process", {"command": "true", "name": f"{SECRET}/\x00"}),
        ("get_process_output", {"name": "leaky", "grep": f"({SECRET}"}),
        ("send_input", {"name": "leaky", "keys": [SECRET]}),
        ("stop_process", {"name": SECRET}),
        ("no_such_tool", {"argument": SECRET}),
        ("stop_process", {"name": "leaky"}),
    ]
    async with McpClient(server.url, auth=token) as client:
        replies = [
            str((await client.call_tool(name, arguments, raise_on_error=False)).content)
            for name, arguments in calls
        ]
    assert SECRET in replies[1] and SECRET in replies[2]  # the secret did go through
    rest = {"Authorization": f"Bearer {token}"}
    body = json.dumps(
        {
            "command": "echo $X",
            "working_directory": str(tmp_path),
            "environment": {"X": SECRET, "Y": 1},
        }
    ).encode()
    assert _status(f"{server.base}/api/processes", rest, body) == 400
    assert _status(f"{server.base}/api/processes/{SECRET}/output", rest) == 404
    assert server.stop() == 0
    log = (server.data_dir / "server.log").read_text()
    stderr = stderr_of(tmp_path, server)
    assert "started leaky" in log  # the log is written, just not with secrets
    for text in (log, stderr):
        assert SECRET not in text and SECRET[7:] not in text
        assert token not in text


# ----- the client's side of the token ------------------------------------------------------------


def test_the_client_sends_the_token_to_loopback_only(tmp_path: Path) -> None:
    from persistproc import paths
    from persistproc.client.api import Client

    paths.ensure_private_dir(tmp_path)
    paths.token_file(tmp_path).write_text("a-token-of-twenty-chars\n")
    local = Client("127.0.0.1", 1, data_dir=tmp_path)
    remote = Client("192.0.2.1", 1, data_dir=tmp_path)
    assert local.headers() == {"Authorization": "Bearer a-token-of-twenty-chars"}
    assert remote.headers() == {}  # never handed to another machine


def test_an_unusable_client_token_is_a_clear_error_without_the_value(tmp_path: Path) -> None:
    secret = "tok\u20acn-with-a-euro-sign"
    env = {
        **clean_environment(),
        "PERSISTPROC_TOKEN": secret,
        "PERSISTPROC_DATA_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-m", "persistproc", "list"],
        env=env,
        capture_output=True,
        timeout=30,
        check=False,
    )
    message = result.stderr.decode()
    assert result.returncode == 1 and "Traceback" not in message
    assert "the token in $PERSISTPROC_TOKEN is not usable" in message and secret not in message


def test_a_data_directory_made_by_hand_is_made_private(tmp_path: Path) -> None:
    from persistproc import paths

    directory = tmp_path / "data"
    directory.mkdir(mode=0o755)
    paths.ensure_private_dir(directory)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
