"""The server stopping leaves nothing behind: SIGTERM, SIGINT and `persistproc shutdown` stop every
tree; after SIGKILL the terminals' hangup ends what stayed in their sessions and the next start
ends the rest; strays of runs that had ended go too; and 500 start/stop cycles leak no descriptor
and leave no zombie. Each test runs a `persistproc --serve` subprocess and talks MCP over HTTP.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import Server
from mcp import Client as HttpClient
from survivors import kill_tagged, new_tag, survivors, tag_env, wait_gone
from trees import TREES, WAIT, call, start_tree

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
            f" {last_drop - killed_at:.2f} s; {len(after_hangup)} were out of the hangup's reach (another session, a background group, SIGHUP ignored)"
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
