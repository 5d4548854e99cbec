"""Defaults and the environment variables that override them."""

from __future__ import annotations

import os
import re
import secrets

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


# `--token generate` makes a random token; any other value is the token itself.
GENERATE_TOKEN = "generate"
TOKEN_MIN_LENGTH = 16
_TOKEN_SHAPE = re.compile(r"[\x21-\x7e]+")  # visible ASCII: it travels in an HTTP header


def is_token_shaped(value: str) -> bool:
    """Visible ASCII only: a token travels in an HTTP header."""
    return bool(_TOKEN_SHAPE.fullmatch(value))


def server_token(option: str | None, environ: dict[str, str] | None = None) -> str | None:
    """The bearer token the server requires: --token's value (`generate`: a new random one), else
    $PERSISTPROC_TOKEN, else None (no token required). A malformed token is a ValueError naming
    where it came from and what is accepted (it never repeats the value: it may be a secret)."""
    if option is not None:
        value, source = option.strip(), "--token"
        if value == GENERATE_TOKEN:
            return secrets.token_urlsafe(32)
    else:
        value = (environ if environ is not None else os.environ).get(TOKEN_ENV, "").strip()
        source = TOKEN_ENV
        if not value:
            return None
    if len(value) < TOKEN_MIN_LENGTH or not _TOKEN_SHAPE.fullmatch(value):
        raise ValueError(
            f"{source} must be at least {TOKEN_MIN_LENGTH} visible ASCII characters (letters, digits,"
            f" punctuation; no spaces), or {GENERATE_TOKEN!r} for a random one"
            if source == "--token"
            else f"{source} must be at least {TOKEN_MIN_LENGTH} visible ASCII characters (letters,"
            " digits, punctuation; no spaces)"
        )
    return value


MAX_LOG_SIZE_ENV = "PERSISTPROC_MAX_LOG_SIZE"
DEFAULT_MAX_LOG_SIZE = "2G"
MIN_LOG_SIZE = 64 * 1024
_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)


def parse_size(value: str, source: str = "--max-log-size") -> int:
    """A size such as 2G, 500M, 64k or a plain number of bytes (powers of 1024)."""
    match = _SIZE.match(value)
    if not match:
        raise ValueError(f"{source} must be a size such as 2G, 500M or 65536, got {value!r}")
    size: int = int(match.group(1)) * 1024 ** "_kmgt".index(match.group(2).lower() or "_")
    if size < MIN_LOG_SIZE:
        raise ValueError(f"{source} must be at least 64k, got {value!r}")
    return size


def max_log_size_from_env(environ: dict[str, str] | None = None) -> int:
    """The cap of each log file of a run: $PERSISTPROC_MAX_LOG_SIZE, or 2G."""
    value = (environ if environ is not None else os.environ).get(MAX_LOG_SIZE_ENV, "").strip()
    return parse_size(value or DEFAULT_MAX_LOG_SIZE, source=MAX_LOG_SIZE_ENV)
