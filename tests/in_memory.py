"""A supervisor served to fastmcp's in-memory client, for tool tests: its data in the test's
directory, and its children tagged, so that whatever outlives its shutdown is found and killed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client
from survivors import kill_tagged

from persistproc.server.tools import build_mcp
from persistproc.supervisor import Supervisor


@asynccontextmanager
async def serve(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, token_env: str
) -> AsyncIterator[tuple[Client[Any], Supervisor, str]]:
    """The connected client, the supervisor, and the value of `token_env` in its children (set in
    this process's environment, so the scan for leftovers finds this test's children only)."""
    token = uuid.uuid4().hex
    monkeypatch.setenv(token_env, token)
    supervisor = Supervisor(data_dir)
    await supervisor.load()
    try:
        async with Client(build_mcp(supervisor)) as client:
            yield client, supervisor, token
    finally:
        try:
            await supervisor.shutdown()
        finally:
            leftovers = kill_tagged(token, token_env)
    assert not leftovers, f"processes outlived Supervisor.shutdown(): {leftovers}"
