"""grep over the big log through get_process_output(grep=...), in MB/s of clean log searched,
against `grep -c` on the same clean log file in the same run."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

from mcp import Client

from benchmarks.common import Row, Server, call, throughput
from benchmarks.memory import BigLogs


async def _whole(client: Client, name: str, pattern: str) -> tuple[float, int] | str:
    """One call over the whole log; the error text when the server's grep budget stops it."""
    started = time.perf_counter()
    result = await client.call_tool(
        "get_process_output", {"name": name, "grep": pattern, "lines": 10_000}
    )
    elapsed = time.perf_counter() - started
    if result.is_error:
        text = getattr(result.content[0], "text", "") if result.content else ""
        return f"{text} (after {elapsed:.1f} s)"
    assert isinstance(result.structured_content, dict)
    return elapsed, int(result.structured_content["line_count"])


def _grep_c(path: Path, pattern: str) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run(["grep", "-c", pattern, str(path)], capture_output=True, check=False)
    return time.perf_counter() - started, int(done.stdout)


async def _rows(client: Client, name: str, pattern: str, matches: int, repeats: int) -> Row:
    status = await call(client, "get_process_status", {"name": name})
    clean = Path(status["clean_log_path"])
    size = clean.stat().st_size
    reference = [_grep_c(clean, pattern) for _ in range(repeats)]
    if any(count != matches for _, count in reference):
        raise AssertionError(f"grep -c found {reference}, expected {matches}")
    label = f"grep, one call over a {size / 1e6:.1f} MB clean log"
    timings = []
    for _ in range(repeats):
        outcome = await _whole(client, name, pattern)
        if isinstance(outcome, str):
            # The server stops a grep at its time budget: the figure is what it managed.
            row = Row(f"{label}: **failed**, {outcome}", [0.0], [], "MB/s", "-")
            row.reference = throughput(size, [t for t, _ in reference])
            row.met = False
            return row
        elapsed, found = outcome
        if found != min(matches, 10_000):
            raise AssertionError(f"grep through the tool found {found}, expected {matches}")
        timings.append(elapsed)
    return Row(
        label, throughput(size, timings), throughput(size, [t for t, _ in reference]), "MB/s", "-"
    )


async def _run(server: Server, quick: bool, logs: BigLogs) -> list[Row]:
    async with Client(server.url) as client:
        small = await _rows(client, logs.small, logs.pattern, 1, 1 if quick else 5)
        # One try on the big log: a grep that runs into the server's budget takes long.
        big = await _rows(client, logs.big, logs.pattern, logs.copies, 1)
        return [small, big]


def run(server: Server, quick: bool, logs: BigLogs) -> list[Row]:
    return asyncio.run(_run(server, quick, logs))
