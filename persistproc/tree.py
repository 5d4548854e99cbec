"""Find and signal every process that belongs to a run.

A run's processes are found three ways, because each alone misses some: descendants of the root pid
(lost once a grandchild is orphaned), members of the root's session (lost by `setsid`), and processes
carrying the run's marker in their environment (lost only by a program that clears its environment).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable

import psutil

from persistproc.config import RUN_MARKER_ENV
from persistproc.errors import PersistprocError


def _has_marker(process: psutil.Process, marker: str) -> bool:
    try:
        return process.environ().get(RUN_MARKER_ENV) == marker
    except (psutil.Error, OSError):
        return False


def find_tree(root_pid: int | None, marker: str) -> list[psutil.Process]:
    """Every live process of the run (the server itself excluded), root first when alive."""
    found: dict[int, psutil.Process] = {}
    me = os.getpid()
    if root_pid is not None:
        try:
            root = psutil.Process(root_pid)
            if root.status() != psutil.STATUS_ZOMBIE:
                found[root.pid] = root
            for child in root.children(recursive=True):
                found[child.pid] = child
        except psutil.Error:
            pass
    my_uid = os.getuid()
    for process in psutil.process_iter(["pid", "uids"]):
        pid = process.info["pid"]
        if pid in found or pid == me:
            continue
        uids = process.info["uids"]
        if uids is None or uids.real != my_uid:
            continue
        try:
            in_session = root_pid is not None and os.getsid(pid) == root_pid
        except OSError:
            continue
        if in_session or _has_marker(process, marker):
            found[pid] = process
    return [p for p in found.values() if _alive(p)]


def find_marked(markers: set[str]) -> list[psutil.Process]:
    """Every live process (the server excluded) carrying one of these run markers: one scan of the
    system for many runs at once."""
    if not markers:
        return []
    found = []
    me, my_uid = os.getpid(), os.getuid()
    for process in psutil.process_iter(["pid", "uids"]):
        uids = process.info["uids"]
        if process.info["pid"] == me or uids is None or uids.real != my_uid:
            continue
        try:
            marker = process.environ().get(RUN_MARKER_ENV)
        except (psutil.Error, OSError):
            continue
        if marker in markers and _alive(process):
            found.append(process)
    return found


def kill_and_wait(processes: list[psutil.Process], timeout: float = 5) -> None:
    """SIGKILL each process (and its group) and return once they are gone, or at timeout."""
    if processes:
        signal_tree(processes, KILL)
        psutil.wait_procs(processes, timeout=timeout)


async def stop_tree(
    root_pid: int, marker: str, exited: Callable[[], bool], force: bool, timeout: float
) -> None:
    """Signal the run's whole tree (SIGTERM, or SIGKILL when forced), SIGKILL what is left after
    timeout, and return once all of it is gone. exited: whether the root has been reaped."""
    loop = asyncio.get_running_loop()
    signum = KILL if force else TERMINATE
    deadline = loop.time() + (0 if force else timeout)
    give_up = loop.time() + timeout + 15
    processes = await asyncio.to_thread(find_tree, root_pid, marker)
    signal_tree(processes, signum)
    while True:
        processes = alive(processes)
        if not processes and exited():
            # one more look for stragglers forked while we were signalling; the root is reaped,
            # so its pid may be someone else's now: the marker alone finds ours
            processes = await asyncio.to_thread(find_tree, None, marker)
            if not processes:
                return
            signal_tree(processes, signum)
        if signum != KILL and loop.time() >= deadline:
            signum = KILL
            root = None if exited() else root_pid
            processes = await asyncio.to_thread(find_tree, root, marker)
            signal_tree(processes, signum)
        if loop.time() > give_up:
            pids = ", ".join(str(p.pid) for p in processes)
            raise PersistprocError(f"processes survived SIGKILL (pids {pids})")
        # polling the OS for the exit of processes that are not our children
        await asyncio.sleep(0.02)


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def signal_tree(processes: list[psutil.Process], signum: int) -> None:
    """Signal each process and its process group (never the server's own group)."""
    own_group = os.getpgrp()
    groups: set[int] = set()
    for process in processes:
        with contextlib.suppress(OSError):
            groups.add(os.getpgid(process.pid))
    for group in groups - {own_group}:
        with contextlib.suppress(OSError):
            os.killpg(group, signum)
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.send_signal(signum)


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    return [p for p in processes if _alive(p)]


def usage(processes: list[psutil.Process]) -> tuple[float, int, list[int]]:
    """CPU percent since the last call, resident memory in bytes, and listening TCP ports."""
    cpu, rss, ports = 0.0, 0, set()
    for process in processes:
        try:
            with process.oneshot():
                cpu += process.cpu_percent(interval=None)
                rss += process.memory_info().rss
            for conn in process.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN and conn.laddr:
                    ports.add(conn.laddr.port)
        except (psutil.Error, OSError):
            continue
    return cpu, rss, sorted(ports)


TERMINATE = signal.SIGTERM
KILL = signal.SIGKILL
