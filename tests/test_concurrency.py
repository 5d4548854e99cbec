"""Eight clients at once for 30 s, over HTTP, on the same three names: start, stop, restart, read
output, list and status, in random order. Invariants checked as they go and at the end:

- at most one run of a name has processes at any moment (a watcher scans the system: two runs of
  one name seen alive, and still alive when looked at again, ran at the same time);
- a listing names each process once, and no two running processes share a pid;
- a run (name, number) always has the same pid, and a client never sees a name's run number go back;
- status agrees with a listing taken before it: same run means same pid, and an ended run does not
  come back to life;
- at the end everything is stopped and nothing of it is left.
The loops are bounded by a deadline and a step count, so the test ends by itself.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import Server, fixture_cmd
from mcp import Client
from survivors import TAG_ENV, kill_tagged, new_tag, tagged

from persistproc.config import RUN_MARKER_ENV

CLIENTS = 8
DURATION = 30.0
MAX_STEPS = 5000  # per client: a bound on the loop besides the deadline
NAME_ENV = "PERSISTPROC_TEST_NAME"
COMMANDS = {
    "trees": fixture_cmd("tree"),  # grandchildren in new groups and sessions
    "sleeper": "sleep 1000",
    "brief": "echo start; sleep 0.3; echo end",  # ends by itself
}


class Observed:
    """What the clients saw, shared between them (all on one event loop)."""

    def __init__(self) -> None:
        self.pids: dict[tuple[str, int], int] = {}  # (name, run) -> pid
        self.calls = 0
        self.errors: list[str] = []

    def run_pid(self, name: str, run: int, pid: int | None, where: str) -> None:
        if pid is None or run == 0:
            return
        known = self.pids.setdefault((name, run), pid)
        assert known == pid, f"{where}: run {run} of {name} has pid {pid}, earlier {known}"


def check_listing(
    processes: list[dict[str, Any]], observed: Observed, last_run: dict[str, int]
) -> None:
    names = [p["name"] for p in processes]
    assert len(names) == len(set(names)), f"a name listed twice: {names}"
    running = [p["pid"] for p in processes if p["status"] == "running"]
    assert len(running) == len(set(running)), f"running processes share a pid: {processes}"
    for process in processes:
        name, run = process["name"], process["run"]
        observed.run_pid(name, run, process["pid"], "list")
        assert run >= last_run.get(name, 0), f"{name}: run went back from {last_run[name]} to {run}"
        last_run[name] = run


async def client_loop(
    server: Server, number: int, directory: Path, tag: str, observed: Observed, deadline: float
) -> None:
    rng = random.Random(number)
    last_run: dict[str, int] = {}
    async with Client(server.url) as client:

        async def call(tool: str, **arguments: Any) -> dict[str, Any] | None:
            result = await client.call_tool(tool, arguments)
            observed.calls += 1
            text = "\n".join(getattr(block, "text", "") for block in result.content)
            if result.is_error:
                # Refusals that concurrency makes legitimate (a name removed meanwhile, input to a
                # process that just ended) are fine; a crash is not.
                assert "internal error" not in text.lower() and "Traceback" not in text, text
                observed.errors.append(f"{tool}: {text[:120]}")
                return None
            assert isinstance(result.structured_content, dict), result
            return result.structured_content

        for _ in range(MAX_STEPS):
            if time.monotonic() > deadline:
                return
            name = rng.choice(sorted(COMMANDS))
            action = rng.choice(["start", "start", "stop", "restart", "output", "list", "status"])
            if action == "start":
                info = await call(
                    "start_process",
                    command=COMMANDS[name],
                    name=name,
                    working_directory=str(directory),
                    environment={TAG_ENV: tag, NAME_ENV: name},
                    replace=rng.random() < 0.3,
                )
            elif action == "stop":
                info = await call("stop_process", name=name, timeout=rng.choice([0, 0.5, 5]))
                if info is not None:
                    assert info["status"] != "running", info
            elif action == "restart":
                info = await call("restart_process", name=name)
            elif action == "output":
                page = await call("get_process_output", name=name, lines=rng.randint(1, 50))
                info = page["process"] if page else None
            elif action == "list":
                listing = await call("list_processes")
                assert listing is not None
                check_listing(listing["processes"], observed, last_run)
                listed = {p["name"]: p for p in listing["processes"]}
                info = await call("get_process_status", name=name)
                before = listed.get(name)
                if info is not None and before is not None and info["run"] == before["run"]:
                    assert info["pid"] == before["pid"], (before, info)
                    if before["status"] != "running":
                        assert info["status"] == before["status"], (before, info)
            else:
                info = await call("get_process_status", name=name)
            if info is not None:
                observed.run_pid(info["name"], info["run"], info["pid"], action)
                assert info["run"] >= last_run.get(name, 0), (last_run, info)
                last_run[name] = info["run"]


def runs_alive(tag: str) -> dict[str, dict[str, list[psutil.Process]]]:
    """The tagged processes by name and run marker."""
    by_name: dict[str, dict[str, list[psutil.Process]]] = {}
    for process in tagged(tag):
        try:
            environ = process.environ()
        except psutil.Error:
            continue
        marker = environ.get(RUN_MARKER_ENV)
        if marker is None or environ.get(TAG_ENV) != tag:
            # The process ended after `tagged` saw it and its pid went to someone else.
            continue
        runs = by_name.setdefault(environ.get(NAME_ENV, "?"), {})
        runs.setdefault(marker, []).append(process)
    return by_name


def watch_runs(tag: str, stop: threading.Event, overlaps: list[str]) -> int:
    """Scan until told to stop; record any name with two runs alive at once. Returns the scans."""
    scans = 0
    while not stop.is_set():
        scans += 1
        for name, runs in runs_alive(tag).items():
            if len(runs) < 2:
                continue
            # Every process was seen alive during the scan; if one of each run is still alive
            # now, the two runs were alive together at the end of the scan.
            still = {
                marker: [p.pid for p in processes if p.is_running()]
                for marker, processes in runs.items()
            }
            if sum(1 for pids in still.values() if pids) >= 2:
                overlaps.append(f"{name}: {still}")
        stop.wait(0.05)  # scan interval; a scan itself takes tens of milliseconds
    return scans


@pytest.mark.slow
async def test_eight_clients_on_three_names_keep_the_invariants(
    server_factory: Callable[..., Server], tmp_path: Path
) -> None:
    server = server_factory()
    tag = new_tag()
    observed = Observed()
    overlaps: list[str] = []
    stop_watching = threading.Event()
    watcher = asyncio.create_task(asyncio.to_thread(watch_runs, tag, stop_watching, overlaps))
    started = time.monotonic()
    try:
        deadline = started + DURATION
        await asyncio.gather(
            *(client_loop(server, n, tmp_path, tag, observed, deadline) for n in range(CLIENTS))
        )
        elapsed = time.monotonic() - started
        stop_watching.set()
        scans = await watcher
        # Quiet now: listing and status agree exactly, then everything is stopped and gone.
        async with Client(server.url) as client:
            listing = (await client.call_tool("list_processes", {})).structured_content
            assert listing is not None
            for process in listing["processes"]:
                status = await client.call_tool("get_process_status", {"name": process["name"]})
                assert status.structured_content is not None
                for key in ("pid", "run", "status"):
                    assert status.structured_content[key] == process[key], (process, status)
                await client.call_tool("stop_process", {"name": process["name"]})
        left = await asyncio.to_thread(tagged, tag)
    finally:
        stop_watching.set()
        if not watcher.done():
            await watcher
        leftovers = kill_tagged(tag)
    runs = len(observed.pids)
    print(
        f"\n{CLIENTS} clients, {elapsed:.1f} s: {observed.calls} calls, {runs} runs seen,"
        f" {len(observed.errors)} refusals, {scans} scans of the system"
    )
    assert not overlaps, f"two runs of one name alive together: {overlaps[:5]}"
    assert not left and not leftovers, (left, leftovers)
    assert runs > len(COMMANDS), "too few runs for the test to mean anything"
