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


async def _whole(client: Client, logs: BigLogs) -> tuple[float, int] | str:
    """One call over the whole log; the error text when the server's grep budget stops it."""
    started = time.perf_counter()
    result = await client.call_tool(
        "get_process_output", {"name": logs.big, "grep": logs.pattern, "lines": 10_000}
    )
    elapsed = time.perf_counter() - started
    if result.is_error:
        return str(result.content[0].text if result.content else result)  # type: ignore[union-attr]
    assert isinstance(result.structured_content, dict)
    return elapsed, int(result.structured_content["line_count"])


async def _paged(client: Client, logs: BigLogs) -> tuple[float, int]:
    """The whole log in calls that each stop at the first match (since=cursor)."""
    started, cursor, found = time.perf_counter(), 0, 0
    while True:
        page = await call(
            client,
            "get_process_output",
            {"name": logs.big, "grep": logs.pattern, "lines": 1, "since": cursor},
        )
        found += page["line_count"]
        if page["cursor"] == cursor or not page["line_count"]:
            return time.perf_counter() - started, found
        cursor = page["cursor"]


def _grep_c(path: Path, pattern: str) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run(["grep", "-c", pattern, str(path)], capture_output=True, check=False)
    return time.perf_counter() - started, int(done.stdout)


async def _run(server: Server, quick: bool, logs: BigLogs) -> list[Row]:
    repeats = 1 if quick else 3
    async with Client(server.url) as client:
        status = await call(client, "get_process_status", {"name": logs.big})
        clean = Path(status["clean_log_path"])
        size = clean.stat().st_size
        reference = [_grep_c(clean, logs.pattern) for _ in range(repeats)]
        if any(count != logs.copies for _, count in reference):
            raise AssertionError(f"grep -c found {reference}, expected {logs.copies}")
        whole = [await _whole(client, logs) for _ in range(repeats)]
        rows = []
        label = f"grep over {size / 1e6:.0f} MB clean log"
        if all(isinstance(w, tuple) for w in whole):
            timings = [w for w in whole if isinstance(w, tuple)]
            if any(count != min(logs.copies, 10_000) for _, count in timings):
                raise AssertionError(f"grep through the tool found {timings}")
            rows.append(
                Row(
                    f"{label}, one call",
                    throughput(size, [t for t, _ in timings]),
                    throughput(size, [t for t, _ in reference]),
                    "MB/s",
                    "-",
                )
            )
        else:
            note = next(w for w in whole if isinstance(w, str))
            print(f"one grep call over the whole log failed: {note}")
        paged = [await _paged(client, logs) for _ in range(repeats)]
        if any(count != logs.copies for _, count in paged):
            raise AssertionError(f"paged grep found {paged}, expected {logs.copies}")
        rows.append(
            Row(
                f"{label}, paged by since=cursor ({logs.copies} calls)",
                throughput(size, [t for t, _ in paged]),
                throughput(size, [t for t, _ in reference]),
                "MB/s",
                "-",
            )
        )
        return rows


def run(server: Server, quick: bool, logs: BigLogs) -> list[Row]:
    return asyncio.run(_run(server, quick, logs))
