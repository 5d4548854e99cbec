"""Defaults and the environment variables that override them."""

from __future__ import annotations

import os

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8947
DEFAULT_COLUMNS = 200
DEFAULT_ROWS = 50
MCP_PATH = "/mcp"

PORT_ENV = "PERSISTPROC_PORT"
DATA_DIR_ENV = "PERSISTPROC_DATA_DIR"
# A bearer token the server requires on every route when set; clients send it by themselves.
TOKEN_ENV = "PERSISTPROC_TOKEN"
# Set in every child's environment: it lets the server find a run's stray descendants (those that left
# its process group and session) when it stops the run, and after a server crash.
RUN_MARKER_ENV = "PERSISTPROC_RUN_ID"


def port_from_env(environ: dict[str, str] | None = None) -> int:
    """The port from PERSISTPROC_PORT, or the default; a bad value is an error naming the variable."""
    value = (environ if environ is not None else os.environ).get(PORT_ENV, "").strip()
    if not value:
        return DEFAULT_PORT
    return parse_port(value, source=PORT_ENV)


def parse_port(value: str, source: str = "--port") -> int:
    try:
        port = int(value)
    except ValueError:
        raise ValueError(f"{source} must be a port number from 1 to 65535, got {value!r}") from None
    if not 0 < port < 65536:
        raise ValueError(f"{source} must be a port number from 1 to 65535, got {port}")
    return port
