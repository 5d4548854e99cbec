"""Who may talk to the server: loopback Hosts only; browsers only on MCP from the server's own
origin; never on the REST API or the attach WebSocket; no listening beyond loopback."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from conftest import Server, free_port
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


def _status(url: str, headers: dict[str, str], body: bytes | None = None) -> int:
    request = urllib.request.Request(url, data=body, headers=headers)
    if body is not None:
        request.add_header("content-type", "application/json")
        request.add_header("accept", "application/json, text/event-stream")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


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
