"""Server memory (RSS): idle, per idle process, while one child streams a big log, and after one
enormous line. The big log (1 GB in a full run) is left in place for the latency and grep benchmarks.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from mcp import Client

from benchmarks.common import Row, Server, call
from benchmarks.ingest import info, make_colored

MB = 1024 * 1024


@dataclass
class BigLogs:
    """Ended processes whose clean logs the tool-latency and grep benchmarks read."""

    big: str  # `copies` times the small file
    small: str
    copies: int
    big_bytes: int
    small_bytes: int
    pattern: str  # matches once in the small file, `copies` times in the big one


def _rss(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / MB


def _settled_rss(pid: int) -> float:
    samples = []
    for _ in range(5):
        samples.append(_rss(pid))
        time.sleep(0.05)  # sample spacing, not a wait for a condition
    return statistics.median(samples)


async def _sampled_run(client: Client, server: Server, arguments: dict[str, Any]) -> list[float]:
    """Start a process and sample the server's RSS every 20 ms until the run has ended."""
    samples = [_rss(server.pid)]
    name = (await call(client, "start_process", arguments))["name"]
    while (await info(client, name))["status"] == "running":
        samples.append(_rss(server.pid))
        await asyncio.sleep(0.02)
    samples.append(_rss(server.pid))
    return samples


async def _run(server: Server, quick: bool, workdir: Path) -> tuple[list[Row], BigLogs]:
    idle_count = 10 if quick else 100
    copies = 20 if quick else 1000
    small_size = 100_000 if quick else 1_000_000
    line_size = 1_000_000 if quick else 200_000_000
    rows = []
    async with Client(server.url) as client:
        idle = _settled_rss(server.pid)
        rows.append(Row("idle server", [idle], [], "MB", "-"))

        for i in range(idle_count):
            await call(
                client,
                "start_process",
                {"command": "sleep 600", "working_directory": "/tmp", "name": f"idle-{i}"},
            )
        busy = _settled_rss(server.pid)
        per_process = (busy - idle) / idle_count
        rows.append(
            Row(f"per idle process ({idle_count} running)", [per_process], [], "MB", "<= 1 MB")
        )
        rows[-1].met = per_process <= 1
        for i in range(idle_count):
            await call(client, "remove_process", {"name": f"idle-{i}"})

        small = make_colored(workdir / "small.log", small_size)
        small_bytes = small.stat().st_size
        await call(
            client,
            "start_process",
            {"command": f"cat {small}", "working_directory": str(workdir), "name": "small-log"},
        )
        command = f"for i in $(seq {copies}); do cat {small}; done"
        arguments = {"command": command, "working_directory": str(workdir), "name": "big-log"}
        started = time.perf_counter()
        samples = await _sampled_run(client, server, arguments)
        elapsed = time.perf_counter() - started
        growth = max(samples) - samples[0]
        big_mb = copies * small_bytes / 1e6
        rows.append(
            Row(
                f"growth while {big_mb:.0f} MB stream in ({big_mb / elapsed:.0f} MB/s)",
                [growth],
                [samples[0]],
                "MB",
                "<= 32 MB",
            )
        )
        rows[-1].met = growth <= 32

        command = f"head -c {line_size} /dev/zero | tr '\\0' a; echo"
        arguments = {"command": command, "working_directory": "/tmp", "name": "long-line"}
        samples = await _sampled_run(client, server, arguments)
        after = _settled_rss(server.pid)
        rows.append(
            Row(
                f"after one {line_size / 1e6:.0f} MB line (max during: +{max(samples) - samples[0]:.0f})",
                [after - samples[0]],
                [samples[0]],
                "MB",
                "<= 64 MB",
            )
        )
        rows[-1].met = after - samples[0] <= 64
        await call(client, "remove_process", {"name": "long-line"})
    logs = BigLogs(
        "big-log", "small-log", copies, copies * small_bytes, small_bytes, "request 1000 handled"
    )
    return rows, logs


def run(server: Server, quick: bool, workdir: Path) -> tuple[list[Row], BigLogs]:
    return asyncio.run(_run(server, quick, workdir))
