"""Tool latency over HTTP with the official MCP SDK client, against the cheapest call the same
server answers (list_processes while nothing runs)."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from mcp import Client

from benchmarks.common import Row, Server, spread

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


async def _timed(client: Client, tool: str, arguments: dict[str, object], calls: int) -> float:
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        result = await client.call_tool(tool, arguments)
        samples.append((time.perf_counter() - started) * 1000)
        if result.is_error:
            raise AssertionError(f"{tool} failed: {result.content}")
    return spread(samples)[0]


async def _run(server: Server, quick: bool) -> list[Row]:
    calls = 20 if quick else 200
    idle = 5 if quick else 50
    lines = 2_000 if quick else 200_000
    async with Client(server.url) as client:
        reference = await _timed(client, "list_processes", {}, calls)
        names = []
        for i in range(idle):
            result = await client.call_tool(
                "start_process",
                {"command": "sleep 600", "working_directory": "/tmp", "name": f"idle-{i}"},
            )
            names.append(result.structured_content["name"])
        flood = f"{sys.executable} {FIXTURES / 'flood.py'} {lines} --stdout-only"
        result = await client.call_tool(
            "start_process",
            {
                "command": flood,
                "working_directory": "/tmp",
                "name": "flood",
                "wait_for": "ValueError: boom",
                "wait_timeout": 600,
            },
        )
        rows = [
            Row(
                f"list_processes, {idle} running",
                await _timed(client, "list_processes", {}, calls),
                reference,
                "ms",
                "<= 1.5x",
            ),
            Row(
                f"get_process_output(lines=100), {lines} lines",
                await _timed(client, "get_process_output", {"name": "flood", "lines": 100}, calls),
                reference,
                "ms",
                "<= 1.5x",
            ),
            Row(
                "get_process_screen",
                await _timed(client, "get_process_screen", {"name": "flood"}, calls),
                reference,
                "ms",
                "<= 1.5x",
            ),
        ]
        for name in [*names, "flood"]:
            await client.call_tool("remove_process", {"name": name})
        return rows


def run(server: Server, quick: bool) -> list[Row]:
    return asyncio.run(_run(server, quick))
