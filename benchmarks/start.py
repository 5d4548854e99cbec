"""Start latency: start_process until the first output line is readable over MCP, against starting
the same command with the same shell on a PTY in this process and reading its first line."""

from __future__ import annotations

import asyncio
import os
import pty
import select
import signal
import subprocess
import time

from mcp import Client

from benchmarks.common import Row, Server, call
from persistproc.spawn import SHELL

COMMAND = "echo first-line; exec sleep 60"


def _direct() -> float:
    started = time.perf_counter()
    master, slave = pty.openpty()
    child = subprocess.Popen(
        [SHELL, "-c", COMMAND], stdin=slave, stdout=slave, stderr=slave, start_new_session=True
    )
    os.close(slave)
    seen = b""
    try:
        while b"first-line\r\n" not in seen:
            ready, _, _ = select.select([master], [], [], 10)
            if not ready:
                raise AssertionError("the directly started child printed nothing")
            seen += os.read(master, 4096)
        return time.perf_counter() - started
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        os.close(master)


async def _persistproc(client: Client, index: int, separate_wait: bool) -> float:
    name = f"start-{index}"
    arguments: dict[str, object] = {"command": COMMAND, "working_directory": "/tmp", "name": name}
    started = time.perf_counter()
    if separate_wait:
        await call(client, "start_process", arguments)
        waited = await call(
            client, "wait_for_output", {"name": name, "pattern": "first-line", "since": 0}
        )
        matched = waited["matched"]
    else:
        matched = (await call(client, "start_process", {**arguments, "wait_for": "first-line"}))[
            "ready"
        ]
    elapsed = time.perf_counter() - started
    if not matched:
        raise AssertionError("persistproc did not see the first line")
    await call(client, "remove_process", {"name": name})
    return elapsed


async def _run(server: Server, quick: bool) -> list[Row]:
    repeats = 3 if quick else 30
    rows = []
    async with Client(server.url) as client:
        await call(client, "list_processes", {})  # warm the session
        for label, separate in (
            ("start_process(wait_for=first line)", False),
            ("start_process, then wait_for_output", True),
        ):
            ours, direct = [], []
            for i in range(repeats):
                ours.append(await _persistproc(client, i, separate) * 1000)
                direct.append(_direct() * 1000)
            row = Row(label, ours, direct, "ms", "<= +15 ms")
            row.met = row.value - row.reference_value <= 15
            rows.append(row)
    return rows


def run(server: Server, quick: bool) -> list[Row]:
    return asyncio.run(_run(server, quick))
