"""Tool latency over HTTP with the official MCP SDK client (one session, 200 calls each), against
the cheapest call the same server answers: list_processes while nothing runs."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from mcp import Client

from benchmarks.common import Row, Server, call, percentile
from benchmarks.ingest import info
from benchmarks.memory import BigLogs

# A line every 5 ms, for reads of what is new since a cursor and the screen of a running process.
TICKER = (
    f"{sys.executable} -u -c 'import time\n"
    'for i in range(10**7):\n print("tick", i, "\\x1b[32mok\\x1b[0m"); time.sleep(0.005)\''
)


async def _timed(client: Client, tool: str, arguments: dict[str, Any], calls: int) -> list[float]:
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        result = await client.call_tool(tool, arguments)
        samples.append((time.perf_counter() - started) * 1000)
        if result.is_error:
            raise AssertionError(f"{tool} failed: {result.content}")
    return samples


async def _timed_since(
    client: Client, name: str, calls: int
) -> tuple[list[float], list[float], int]:
    """Each call passes the cursor the previous one returned, after a short pause so a few lines
    arrive, as a polling agent's would. Waking up after a pause costs about a millisecond by
    itself, so the reference (list_processes) is timed after the same pause. Also counts the
    lines read."""
    cursor = (await call(client, "get_process_output", {"name": name, "lines": 1}))["cursor"]
    samples, reference, seen = [], [], 0
    for _ in range(calls):
        await asyncio.sleep(0.002)
        started = time.perf_counter()
        page = await call(client, "get_process_output", {"name": name, "since": cursor})
        samples.append((time.perf_counter() - started) * 1000)
        cursor, seen = page["cursor"], seen + page["line_count"]
        await asyncio.sleep(0.002)
        reference += await _timed(client, "list_processes", {}, 1)
    return samples, reference, seen


async def _screen_after_burst(client: Client, name: str) -> float:
    """The first screen after a run wrote more than the screen keeps up with: a rebuild."""
    await call(client, "restart_process", {"name": name})
    while (await info(client, name))["status"] == "running":
        await asyncio.sleep(0.01)
    return (await _timed(client, "get_process_screen", {"name": name}, 1))[0]


def _row(name: str, samples: list[float], reference: list[float], limit: float = 1.5) -> Row:
    row = Row(
        f"{name} (p99 {percentile(samples, 0.99):.2f} ms)", samples, reference, "ms", f"<= {limit}x"
    )
    row.met = row.ratio <= limit
    return row


async def _reference(server: Server, calls: int) -> list[float]:
    async with Client(server.url) as client:
        await _timed(client, "list_processes", {}, 5)  # warm the session and the server
        return await _timed(client, "list_processes", {}, calls)


async def _run(server: Server, quick: bool, logs: BigLogs, reference: list[float]) -> list[Row]:
    calls = 20 if quick else 200
    idle = 5 if quick else 50
    rows = []
    async with Client(server.url) as client:
        names = [f"idle-{i}" for i in range(idle)]
        for name in names:
            arguments = {"command": "sleep 600", "working_directory": "/tmp", "name": name}
            await call(client, "start_process", arguments)
        listed = await _timed(client, "list_processes", {}, calls)
        rows.append(_row(f"list_processes, {idle} running", listed, reference))
        for name in names:
            await call(client, "remove_process", {"name": name})

        tail = {"lines": 100}
        small = await _timed(client, "get_process_output", {"name": logs.small, **tail}, calls)
        big = await _timed(client, "get_process_output", {"name": logs.big, **tail}, calls)
        big_mb, small_mb = logs.big_bytes / 1e6, logs.small_bytes / 1e6
        rows.append(_row(f"get_process_output(lines=100), {big_mb:.0f} MB log", big, reference))
        independence = Row(
            f"same, {big_mb:.0f} MB log vs {small_mb:.1f} MB log", big, small, "ms", "<= 1.2x"
        )
        independence.met = independence.ratio <= 1.2
        rows.append(independence)

        ticker = (
            await call(
                client,
                "start_process",
                {
                    "command": TICKER,
                    "name": "ticker",
                    "working_directory": "/tmp",
                    "wait_for": "tick 1 ",
                },
            )
        )["name"]
        since, paced, seen = await _timed_since(client, ticker, calls)
        label = f"get_process_output(since=cursor), {seen / calls:.1f} new lines, 2 ms apart"
        rows.append(_row(label, since, paced))
        screen = await _timed(client, "get_process_screen", {"name": ticker}, calls)
        rows.append(_row("get_process_screen, running", screen, reference))
        ended = await _timed(client, "get_process_screen", {"name": logs.big}, calls)
        rows.append(_row("get_process_screen, ended run", ended, reference))
        rebuilt = [await _screen_after_burst(client, logs.small) for _ in range(calls // 10)]
        label = f"get_process_screen, first after {small_mb:.1f} MB of output"
        rows.append(_row(label, rebuilt, reference))
        await call(client, "remove_process", {"name": ticker})
    return rows


def reference(server: Server, quick: bool) -> list[float]:
    """Taken on a fresh server, before anything else runs."""
    return asyncio.run(_reference(server, 20 if quick else 200))


def run(server: Server, quick: bool, logs: BigLogs, reference: list[float]) -> list[Row]:
    return asyncio.run(_run(server, quick, logs, reference))
