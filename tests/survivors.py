"""Counting what is left of processes a test started: by pid and by a tag in their environment.

Tests pass `{TAG_ENV: tag}` in start_process's environment. Every descendant inherits it together
with the server's run marker, so a scan finds even processes that left the tree, the process group
and the session. Pids are kept as psutil.Process objects taken while the process ran: a pid that
the system gave to someone else since then does not count as a survivor.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid

import psutil

from persistproc.config import RUN_MARKER_ENV

TAG_ENV = "PERSISTPROC_TEST_TAG"


def new_tag() -> str:
    return uuid.uuid4().hex


def tag_env(tag: str) -> dict[str, str]:
    return {TAG_ENV: tag}


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def watch(pids: list[int]) -> list[psutil.Process]:
    """Processes to follow by pid; each must be running now."""
    watched = [psutil.Process(pid) for pid in pids]
    assert all(map(_alive, watched)), f"not all of {pids} run"
    return watched


def tagged(tag: str, variable: str = TAG_ENV) -> list[psutil.Process]:
    """Live processes (zombies excluded) started by a server with `variable=tag` in their
    environment (TAG_ENV when passed to start_process; other tests set their own variable)."""
    found = []
    me, uid = os.getpid(), os.getuid()
    for process in psutil.process_iter(["pid", "uids", "status"]):
        uids = process.info["uids"]
        if process.pid == me or uids is None or uids.real != uid:
            continue
        if process.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            environ = process.environ()
        except (psutil.Error, OSError):
            continue
        if RUN_MARKER_ENV in environ and environ.get(variable) == tag:
            found.append(process)
    return [p for p in found if _alive(p)]


def survivors(tag: str, watched: list[psutil.Process]) -> list[str]:
    """What still runs: watched pids and tagged processes, described for an assertion message."""
    alive = {p.pid: p for p in watched if _alive(p)}
    alive.update({p.pid: p for p in tagged(tag)})
    described = []
    for pid, process in sorted(alive.items()):
        with contextlib.suppress(psutil.Error):
            described.append(f"{pid} {' '.join(process.cmdline())[:120]}")
    return described


def wait_gone(tag: str, watched: list[psutil.Process], timeout: float) -> float:
    """Seconds until nothing survives; fails after timeout."""
    started = time.monotonic()
    while left := survivors(tag, watched):
        assert time.monotonic() - started < timeout, f"survivors after {timeout:g} s: {left}"
        time.sleep(0.02)  # polling the OS: these processes are not our children
    return time.monotonic() - started


def kill_tagged(tag: str, variable: str = TAG_ENV) -> list[str]:
    """Safety net for teardown: kill whatever carries the tag; describe what was found."""
    found = tagged(tag, variable)
    described = []
    for process in found:
        with contextlib.suppress(psutil.Error):
            described.append(f"{process.pid} {' '.join(process.cmdline())[:120]}")
            process.kill()
    psutil.wait_procs(found, timeout=5)
    return described
