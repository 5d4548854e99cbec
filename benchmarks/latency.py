"""Tool latency over HTTP with the official MCP SDK client (one session, 200 calls each), against
the cheapest call the same server answers: list_processes filtered to a directory where nothing
runs. The reference call is made right after each measured one, so both see the same moment of a
noisy machine (a reference taken minutes earlier moved the ratios by 1.5x between runs)."""

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


NOWHERE = "/nonexistent/persistproc-benchmark"
CHEAPEST = ("list_processes", {"working_directory": NOWHERE})


async def _timed(client: Client, tool: str, arguments: dict[str, Any], calls: int) -> list[float]:
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        result = await client.call_tool(tool, arguments)
        samples.append((time.perf_counter() - started) * 1000)
        if result.is_error:
            raise AssertionError(f"{tool} failed: {result.content}")
    return samples


async def _paired(
    client: Client,
    tool: str,
    arguments: dict[str, Any],
    calls: int,
    other: tuple[str, dict[str, Any]] = CHEAPEST,
) -> tuple[list[float], list[float]]:
    """Each call followed by a call of `other` (the cheapest call, unless told): both lists of
    timings."""
    samples, reference = [], []
    for _ in range(calls):
        samples += await _timed(client, tool, arguments, 1)
        reference += await _timed(client, *other, 1)
    return samples, reference


async def _timed_since(
    client: Client, name: str, calls: int
) -> tuple[list[float], list[float], int]:
    """Each call passes the cursor the previous one returned, after a short pause so a few lines
    arrive, as a polling agent's would. Waking up after a pause costs about a millisecond by
    itself, so the reference (the cheapest call) is timed after the same pause. Also counts the
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
        reference += await _timed(client, *CHEAPEST, 1)
    return samples, reference, seen


async def _screen_after_burst(client: Client, name: str) -> tuple[float, float]:
    """The first screen after a run wrote more than the screen keeps up with (a rebuild), and
    the cheapest call right after it."""
    await call(client, "restart_process", {"name": name})
    while (await info(client, name))["status"] == "running":
        await asyncio.sleep(0.01)
    screen = (await _timed(client, "get_process_screen", {"name": name}, 1))[0]
    return screen, (await _timed(client, *CHEAPEST, 1))[0]


def _row(name: str, samples: list[float], reference: list[float], limit: float = 1.5) -> Row:
    row = Row(
        f"{name} (p99 {percentile(samples, 0.99):.2f} ms)", samples, reference, "ms", f"<= {limit}x"
    )
    row.met = row.ratio <= limit
    return row


async def _run(server: Server, quick: bool, logs: BigLogs) -> list[Row]:
    calls = 20 if quick else 200
    idle = 5 if quick else 50
    rows = []
    async with Client(server.url) as client:
        await _paired(client, *CHEAPEST, 5)  # warm the session
        names = [f"idle-{i}" for i in range(idle)]
        for name in names:
            arguments = {"command": "sleep 600", "working_directory": "/tmp", "name": name}
            await call(client, "start_process", arguments)
        rows.append(
            _row(
                f"list_processes, {idle} running",
                *await _paired(client, "list_processes", {}, calls),
            )
        )
        for name in names:
            await call(client, "remove_process", {"name": name})

        small = {"name": logs.small, "lines": 100}
        big = {"name": logs.big, "lines": 100}
        big_mb, small_mb = logs.big_bytes / 1e6, logs.small_bytes / 1e6
        label = f"get_process_output(lines=100), {big_mb:.0f} MB log"
        rows.append(_row(label, *await _paired(client, "get_process_output", big, calls)))
        independence = Row(
            f"same, {big_mb:.0f} MB log vs {small_mb:.1f} MB log",
            *await _paired(client, "get_process_output", big, calls, ("get_process_output", small)),
            "ms",
            "<= 1.2x",
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
        screen = await _paired(client, "get_process_screen", {"name": ticker}, calls)
        rows.append(_row("get_process_screen, running", *screen))
        ended = await _paired(client, "get_process_screen", {"name": logs.big}, calls)
        rows.append(_row("get_process_screen, ended run", *ended))
        rebuilt = [await _screen_after_burst(client, logs.small) for _ in range(calls // 10)]
        label = f"get_process_screen, first after {small_mb:.1f} MB of output"
        rows.append(_row(label, [s for s, _ in rebuilt], [r for _, r in rebuilt]))
        await call(client, "remove_process", {"name": ticker})
    return rows


def run(server: Server, quick: bool, logs: BigLogs) -> list[Row]:
    return asyncio.run(_run(server, quick, logs))
