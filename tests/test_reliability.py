"""stop_process leaves nothing behind: it returns only once the whole tree is gone, for trees that
fork into new process groups and sessions, ignore SIGTERM, or are an interactive shell with jobs.
In process: fastmcp's in-memory client on a Supervisor. The server's own stops: test_server_stop.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from fastmcp import Client as MemoryClient
from survivors import kill_tagged, new_tag, survivors
from trees import STOP_TIMEOUT, TREES, WAIT, call, start_tree

from persistproc.server.tools import build_mcp
from persistproc.supervisor import Supervisor

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
