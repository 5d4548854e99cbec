"""Stopping leaves nothing behind: whole trees on stop_process, every tree when the server stops or
is killed, and no zombies or leaked descriptors after many start/stop cycles.

Survivors are counted two ways (tests/survivors.py): by the pids the fixtures print, and by a tag in
the environment every descendant inherits along with the server's run marker.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import FIXTURES, Server, fixture_cmd
from fastmcp import Client as MemoryClient
from mcp import Client as HttpClient
from survivors import kill_tagged, new_tag, survivors, tag_env, wait_gone, watch

from persistproc.server.tools import build_mcp
from persistproc.supervisor import Supervisor

JOB_SHELL = shlex.join(["bash", "--noprofile", "--rcfile", str(FIXTURES / "job_shell.bash"), "-i"])
# The three trees: grandchildren in new groups and sessions; the same ignoring SIGTERM; an
# interactive shell (ignores SIGTERM) with jobs that ignore or trap it and one that left the session.
TREES = {
    "tree": fixture_cmd("tree"),
    "tree-ignoring-term": fixture_cmd("tree", "--ignore-term"),
    "job-shell": JOB_SHELL,
}
# bash takes its terminal from fd 2 for job control: on a stderr terminal of its own (not the
# controlling one) it runs without job control, every job in its group. Merged, the jobs get groups.
MERGED = {"job-shell"}
STOP_TIMEOUT = 1.0  # seconds between SIGTERM and SIGKILL: the fixtures that ignore TERM wait it out
WAIT = 20.0  # the most any condition may take here (the fixtures need milliseconds)


def _text(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


async def call(client: Any, tool: str, **arguments: Any) -> dict[str, Any]:
    """A tool call that must succeed (either client: fastmcp in memory or the MCP SDK over HTTP)."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, f"{tool}({arguments}) failed: {_text(result)}"
    data = result.structured_content
    assert isinstance(data, dict), result
    return data


async def start_tree(
    client: Any, kind: str, name: str, directory: Path, tag: str
) -> list[psutil.Process]:
    """Start one of TREES; return its root and every pid it printed, as watched processes."""
    started = await call(
        client,
        "start_process",
        command=TREES[kind],
        name=name,
        working_directory=str(directory),
        environment=tag_env(tag),
        wait_for="^READY$",
        wait_timeout=WAIT,
        merge_stderr=kind in MERGED,
    )
    assert started["ready"] is True, started
    page = await call(client, "get_process_output", name=name, grep="PIDS ", since=0)
    match = re.search(r"PIDS((?: \d+)+)$", page["text"])
    assert match, page
    return watch([started["pid"], *map(int, match.group(1).split())])


# ----- stop_process, in process (fastmcp's in-memory client on a Supervisor) ------------------


@pytest.fixture
async def memory(tmp_path: Path) -> AsyncIterator[tuple[Any, str]]:
    """A connected in-memory client and the tag its tests put on their processes."""
    tag = new_tag()
    supervisor = Supervisor(tmp_path / "data")
    await supervisor.load()
    try:
        async with MemoryClient(build_mcp(supervisor)) as client:
            yield client, tag
    finally:
        try:
            await supervisor.shutdown()
        finally:
            leftovers = kill_tagged(tag)
    assert not leftovers, f"processes outlived Supervisor.shutdown(): {leftovers}"


async def stop_and_count(client: Any, name: str, tag: str, watched: list[psutil.Process]) -> None:
    """stop_process, then at once: nothing of the tree may run, by pid or by tag."""
    stopped = await call(client, "stop_process", name=name, timeout=STOP_TIMEOUT)
    assert stopped["status"] == "stopped", stopped
    left = await asyncio.to_thread(survivors, tag, watched)
    assert not left, f"{name}: stop_process returned while these still ran: {left}"


@pytest.mark.parametrize("kind", sorted(TREES))
async def test_stop_process_returns_once_the_whole_tree_is_gone(
    memory: tuple[Any, str], tmp_path: Path, kind: str
) -> None:
    client, tag = memory
    watched = await start_tree(client, kind, kind, tmp_path, tag)
    await stop_and_count(client, kind, tag, watched)


async def test_stop_after_the_root_died_returns_once_its_strays_are_gone(
    memory: tuple[Any, str], tmp_path: Path
) -> None:
    """The root is killed alone: the run ends (the hangup takes its group), the grandchild in a
    new group and the one in a new session stay. stop_process on the ended run kills them and
    returns only once they are gone; so does a restart before it launches the new run."""
    client, tag = memory
    for then in ("stop_process", "restart_process"):
        watched = await start_tree(client, "tree", then, tmp_path, tag)
        watched[0].kill()
        ended = await call(
            client, "wait_for_output", name=then, pattern="(?!)", since=0, timeout=WAIT
        )
        assert ended["reason"] == "exited", ended
        assert len(await asyncio.to_thread(survivors, tag, watched)) == 2
        await call(client, then, name=then)
        # by pid only: after a restart, the new run carries the tag too
        left = [p.pid for p in watched if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert not left, f"{then} returned while the ended run's strays still ran: {left}"
        await call(client, "stop_process", name=then)


@pytest.mark.slow
async def test_stop_leaves_no_survivor_in_100_repetitions(
    memory: tuple[Any, str], tmp_path: Path
) -> None:
    """100 stops, the three kinds of tree in turn, ten trees at a time (the property is per stop)."""
    client, tag = memory
    kinds = sorted(TREES)
    repetitions, batch = 100, 10
    stopped = 0
    for first in range(0, repetitions, batch):
        names = [f"rep{n}" for n in range(first, first + batch)]
        trees = await asyncio.gather(
            *(
                start_tree(client, kinds[n % len(kinds)], name, tmp_path, tag)
                for n, name in enumerate(names, start=first)
            )
        )
        # the tags are shared by the batch: count each tree's own pids, and the tag once all stopped
        await asyncio.gather(
            *(stop_and_count_pids(client, n, w) for n, w in zip(names, trees, strict=True))
        )
        left = await asyncio.to_thread(survivors, tag, [])
        assert not left, f"survivors after batch at {first}: {left}"
        stopped += len(names)
        for name in names:  # keep the process list short; the logs are not needed
            await call(client, "remove_process", name=name)
    assert stopped == repetitions


async def stop_and_count_pids(client: Any, name: str, watched: list[psutil.Process]) -> None:
    stopped = await call(client, "stop_process", name=name, timeout=STOP_TIMEOUT)
    assert stopped["status"] == "stopped", stopped
    left = [p.pid for p in watched if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"{name}: stop_process returned while pids {left} still ran"


# ----- the server stopping, or killed (a `persistproc --serve` subprocess over HTTP) -----------


async def start_every_tree(server: Server, directory: Path, tag: str) -> list[psutil.Process]:
    async with HttpClient(server.url) as client:
        watched: list[psutil.Process] = []
        for kind in sorted(TREES):
            watched += await start_tree(client, kind, kind, directory, tag)
    return watched


def stop_with_cli(server: Server) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "persistproc", "--port", str(server.port), "shutdown"],
        env={**os.environ, "PERSISTPROC_DATA_DIR": str(server.data_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


STOPS: dict[str, Callable[[Server], None]] = {
    "SIGTERM": lambda server: server.proc.send_signal(signal.SIGTERM),
    "SIGINT": lambda server: server.proc.send_signal(signal.SIGINT),
    "shutdown": stop_with_cli,
}


@pytest.mark.parametrize("how", sorted(STOPS))
async def test_server_stop_stops_every_tree(
    server_factory: Callable[..., Server], tmp_path: Path, how: str
) -> None:
    server = server_factory()
    tag = new_tag()
    try:
        watched = await start_every_tree(server, tmp_path, tag)
        STOPS[how](server)
        assert server.proc.wait(60) == 0
        left = await asyncio.to_thread(survivors, tag, watched)
        assert not left, f"after the server stopped ({how}), these still ran: {left}"
    finally:
        kill_tagged(tag)


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
async def test_strays_of_a_run_that_ended_do_not_outlive_the_server(
    server_factory: Callable[..., Server], tmp_path: Path, how: str
) -> None:
    """A tree whose root died alone has ended, but its grandchild in a new group and the one in a
    new session still run. Stopping the server ends them; after SIGKILL, the next start does."""
    data_dir = tmp_path / "data"
    server = server_factory(data_dir)
    tag = new_tag()
    try:
        async with HttpClient(server.url) as client:
            watched = await start_tree(client, "tree", "tree", tmp_path, tag)
            watched[0].kill()
            ended = await call(
                client, "wait_for_output", name="tree", pattern="(?!)", since=0, timeout=WAIT
            )
            assert ended["reason"] == "exited", ended
        assert len(await asyncio.to_thread(survivors, tag, watched)) == 2
        if how == "SIGKILL":
            server.proc.kill()
            server.proc.wait(WAIT)
            server_factory(data_dir)
        else:
            server.stop()
        left = await asyncio.to_thread(survivors, tag, watched)
        assert not left, f"the ended run's strays outlived the server ({how}): {left}"
    finally:
        kill_tagged(tag)


async def test_server_killed_leaves_no_survivor_once_it_starts_again(
    server_factory: Callable[..., Server], tmp_path: Path
) -> None:
    """SIGKILL: the terminal's hangup ends what stayed in the session; what left it and ignores
    SIGHUP (the escaped job) is found by its run marker when the server starts next."""
    data_dir = tmp_path / "data"
    server = server_factory(data_dir)
    tag = new_tag()
    try:
        watched = await start_every_tree(server, tmp_path, tag)
        before = len(survivors(tag, watched))
        killed_at = time.monotonic()
        server.proc.kill()
        server.proc.wait(WAIT)
        # The hangup ends the sessions' foreground processes at once: count until the number of
        # survivors has not dropped for half a second.
        counted, last_drop = before, killed_at
        while time.monotonic() - last_drop < 0.5:
            now = len(survivors(tag, watched))
            if now < counted:
                counted, last_drop = now, time.monotonic()
            time.sleep(0.02)
        after_hangup = survivors(tag, watched)
        assert len(after_hangup) < before, "the hangup ended nothing"
        restart_at = time.monotonic()
        restarted = server_factory(data_dir)
        await asyncio.to_thread(wait_gone, tag, watched, WAIT)
        print(
            f"\nSIGKILL: {before} processes; the hangup ended {before - len(after_hangup)} within"
            f" {last_drop - killed_at:.2f} s; {len(after_hangup)} left the session or ignore SIGHUP"
            f" ({after_hangup}); zero survivors {time.monotonic() - restart_at:.2f} s after the"
            " server was started again (its start included)"
        )
        async with HttpClient(restarted.url) as client:
            listing = await call(client, "list_processes")
        statuses = {p["name"]: p["status"] for p in listing["processes"]}
        assert statuses == dict.fromkeys(TREES, "stopped"), statuses
    finally:
        kill_tagged(tag)


# ----- descriptors and zombies ------------------------------------------------------------------


def open_fds(pid: int) -> list[str]:
    """What each descriptor of a process points at (sockets and pipes by inode)."""
    targets = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            targets.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue  # closed while we looked
    return sorted(targets)


def children(pid: int) -> list[str]:
    """The server's descendants, zombies included (an unreaped child is a leak too)."""
    found = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            found.append(f"{child.pid} {child.status()} {' '.join(child.cmdline())}")
        except psutil.Error:
            continue
    return found


def quiet_fds(pid: int) -> list[str]:
    """The server's descriptors once no client connection is open any more (a client's pool keeps
    a varying number of keep-alive connections, each a socket on the server's side)."""
    deadline = time.monotonic() + WAIT
    server = psutil.Process(pid)
    while connected := [c for c in server.net_connections() if c.status != psutil.CONN_LISTEN]:
        assert time.monotonic() < deadline, f"client connections stay open: {connected}"
        time.sleep(0.05)
    return open_fds(pid)


@pytest.mark.slow
async def test_no_leaked_fds_or_zombies_after_500_start_stop_cycles(
    server_factory: Callable[..., Server], tmp_path: Path
) -> None:
    """Over HTTP to a server subprocess. A cycle starts a short-lived child (`true`, it ends by
    itself) and a long-lived one (`sleep`) and stops the long one; five lanes of cycles run side by
    side, each on its own pair of names (one lane at a time would take minutes). Descriptors are
    counted with no client connected, before and after."""
    server = server_factory()
    pid = server.proc.pid
    tag = new_tag()
    cycles, lanes, warm_up = 500, 5, 2
    common = {"working_directory": str(tmp_path), "environment": tag_env(tag)}

    async def run_cycles(count: int) -> dict[str, Any]:
        """count cycles per lane; returns the final listing once every run has ended."""
        async with HttpClient(server.url) as client:

            async def lane(n: int) -> None:
                for _ in range(count):
                    await asyncio.gather(
                        call(client, "start_process", command="true", name=f"short{n}", **common),
                        call(
                            client, "start_process", command="sleep 1000", name=f"long{n}", **common
                        ),
                    )
                    await call(client, "stop_process", name=f"long{n}", timeout=5)

            await asyncio.gather(*(lane(n) for n in range(lanes)))
            deadline = time.monotonic() + WAIT
            while True:
                listing = await call(client, "list_processes")
                running = [p["name"] for p in listing["processes"] if p["status"] == "running"]
                if not running:
                    return listing
                assert time.monotonic() < deadline, f"still running: {running}"
                await asyncio.sleep(0.05)

    # first-call imports, the thread pool, the log files: before counting
    await run_cycles(warm_up)
    fds_before, children_before = await asyncio.to_thread(quiet_fds, pid), children(pid)
    started = time.monotonic()
    listing = await run_cycles(cycles // lanes)
    elapsed = time.monotonic() - started
    fds_after, children_after = await asyncio.to_thread(quiet_fds, pid), children(pid)
    print(
        f"\n{cycles} cycles in {elapsed:.1f} s; server fds {len(fds_before)} -> {len(fds_after)},"
        f" children {len(children_before)} -> {len(children_after)}"
    )
    runs = sum(p["run"] for p in listing["processes"])
    assert runs == 2 * (cycles + lanes * warm_up)
    assert children_after == children_before == []
    assert fds_after == fds_before, (
        sorted(set(fds_after) - set(fds_before)),
        sorted(set(fds_before) - set(fds_after)),
    )
    assert not kill_tagged(tag)
