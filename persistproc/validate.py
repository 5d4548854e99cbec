"""Checks of client-supplied arguments: each failure says what was wrong and what is accepted."""

from __future__ import annotations

import os

from persistproc.errors import InvalidInput
from persistproc.model import STREAMS


def check_directory(directory: str) -> str:
    if not isinstance(directory, str) or not directory:
        raise InvalidInput("working_directory must be an absolute path")
    expanded = os.path.expanduser(directory)
    if not os.path.isabs(expanded):
        raise InvalidInput(f"working_directory must be an absolute path, got {directory!r}")
    if not os.path.isdir(expanded):
        what = "is not a directory" if os.path.exists(expanded) else "does not exist"
        raise InvalidInput(f"working_directory {directory!r} {what}")
    return os.path.normpath(expanded)


def check_environment(environment: object) -> dict[str, str]:
    if environment is None:
        return {}
    if not isinstance(environment, dict):
        raise InvalidInput("environment must be an object of string names to string values")
    for key, value in environment.items():
        if not isinstance(key, str) or not key or "=" in key or "\x00" in key:
            raise InvalidInput(f"invalid environment variable name {key!r}")
        if not isinstance(value, str):
            raise InvalidInput(
                f"environment value for {key!r} must be a string, got {type(value).__name__}"
            )
        if "\x00" in value:
            raise InvalidInput(f"environment value for {key!r} contains a NUL character")
    return dict(environment)


def check_stream(stream: str) -> None:
    if stream not in STREAMS:
        raise InvalidInput(f"stream must be one of {', '.join(STREAMS)}, got {stream!r}")


def check_timeout(value: float, what: str, limit: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= limit:
        raise InvalidInput(f"{what} must be a number of seconds from 0 to {limit:g}, got {value!r}")
    return float(value)


def check_since(since: object) -> None:
    if since is not None and (isinstance(since, bool) or not isinstance(since, int) or since < 0):
        raise InvalidInput(f"since must be a line number of 0 or more, got {since!r}")


def check_size(columns: object, rows: object) -> tuple[int, int] | None:
    """A terminal size given as both columns and rows (1 to 1000 each), or neither."""
    if columns is None and rows is None:
        return None
    for value, what in ((columns, "columns"), (rows, "rows")):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
            raise InvalidInput(f"{what} must be a whole number from 1 to 1000, got {value!r}")
    assert isinstance(columns, int) and isinstance(rows, int)
    return columns, rows
