"""Ingestion: a child `cat`s a file as fast as it can. Time until persistproc has all of it (the run
ended, raw log byte-exact, clean log written), against the same `cat` in a detached tmux pane of the
same size and a bare Python PTY read loop. Two files: colored log lines, and progress redraws
(`\\r` bars and a cursor-up status block). The end is seen with one wait_for_output call, the
lightest way an agent can watch; a further row shows what polling every 5 ms costs."""

from __future__ import annotations

import asyncio
import os
import pty
import random
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcp import Client

from benchmarks.common import Row, Server, call, throughput

LINE = "\x1b[32m2026-11-21 12:00:00 INFO\x1b[0m request {i} handled in {ms:.3f} ms path=/api/items/{p}\n"
COLUMNS, ROWS = 200, 50  # tmux's pane and the server's default terminal


def _write_until(path: Path, size: int, piece: Callable[[int], str]) -> None:
    with open(path, "w") as handle:
        written, i = 0, 0
        while written < size:
            text = piece(i)
            handle.write(text)
            written += len(text)
            i += 1


def make_colored(path: Path, size: int) -> Path:
    rng = random.Random(1)
    _write_until(path, size, lambda i: LINE.format(i=i, ms=rng.random() * 10, p=i % 977))
    return path


def make_progress(path: Path, size: int) -> Path:
    """A download bar redrawn with `\\r` 100 times, then a three-line block redrawn with ESC[3A."""

    def task(i: int) -> str:
        bars = "".join(
            f"\rfile-{i}.tar.gz [{'#' * (p // 5):<20}] {p:3d}% {p * 1.7:6.1f} MB/s"
            for p in range(101)
        )
        block = "".join(
            "\x1b[3A"
            + "".join(f"\x1b[2K{name}: step {s}/10\n" for name in ("build", "test", "lint"))
            for s in range(10)
        )
        return f"{bars}\nbuild: waiting\ntest: waiting\nlint: waiting\n{block}done {i}\n"

    _write_until(path, size, task)
    return path


async def info(client: Client, name: str) -> dict[str, Any]:
    """The process's info, from the cheapest call that carries it."""
    page = await call(client, "get_process_output", {"name": name, "lines": 1})
    info = page["process"]
    assert isinstance(info, dict)
    return info


async def _persistproc(server: Server, path: Path, last_line: str, polling: bool = False) -> float:
    """Seconds until the run of `cat path` has ended, seen by an agent that waits for a line that
    never comes (wait_for_output returns at the exit; it scans every line as it arrives), or with
    polling, by one that asks for the status every 5 ms (each call costs the server about 1 ms)."""
    async with Client(server.url) as client:
        started = time.perf_counter()
        result = await call(
            client,
            "start_process",
            {"command": f"cat {path}", "working_directory": str(path.parent)},
        )
        name = result["name"]
        if polling:
            # A light poll: get_process_status would measure the process tree each time.
            while (await info(client, name))["status"] == "running":
                await asyncio.sleep(0.005)
        else:
            wait = {"name": name, "pattern": "no such line", "timeout": 60, "since": 0}
            while (await call(client, "wait_for_output", wait))["process"]["status"] == "running":
                pass
        status = await info(client, name)
        elapsed = time.perf_counter() - started
        raw = Path(status["log_path"]).read_bytes()
        if raw != path.read_bytes().replace(b"\n", b"\r\n"):
            raise AssertionError("raw log is not byte-exact")
        clean = Path(status["clean_log_path"]).read_text().rstrip("\n").rsplit("\n", 1)[-1]
        if clean != last_line:
            raise AssertionError(f"clean log ends with {clean!r}, expected {last_line!r}")
        await call(client, "remove_process", {"name": name})
        return elapsed


def _tmux(path: Path) -> float:
    socket_name = f"bench-{os.getpid()}-{time.monotonic_ns()}"
    started = time.perf_counter()
    subprocess.run(
        [
            *("tmux", "-L", socket_name, "-f", "/dev/null", "new-session", "-d"),
            *("-x", str(COLUMNS), "-y", str(ROWS)),
            f"cat {path}; tmux -L {socket_name} wait-for -S done; sleep 30",
        ],
        check=True,
    )
    # the pane stays open after the signal, so the waiting client never sees the server go away
    subprocess.run(["tmux", "-L", socket_name, "wait-for", "done"], check=True)
    elapsed = time.perf_counter() - started
    subprocess.run(["tmux", "-L", socket_name, "kill-server"], check=False)
    socket_path = Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}" / socket_name
    socket_path.unlink(missing_ok=True)  # tmux leaves the socket file behind
    return elapsed


def _bare_pty(path: Path) -> float:
    started = time.perf_counter()
    master, slave = pty.openpty()
    child = subprocess.Popen(["cat", str(path)], stdout=slave, stderr=slave, stdin=slave)
    os.close(slave)
    while True:
        try:
            if not os.read(master, 65536):
                break
        except OSError:
            break  # EIO: the child closed its side
    child.wait()
    os.close(master)
    return time.perf_counter() - started


def _rows(server: Server, label: str, path: Path, repeats: int) -> list[Row]:
    size = path.stat().st_size
    last_line = path.read_text().rstrip("\n").rsplit("\n", 1)[-1]
    last_line = last_line.replace("\x1b[32m", "").replace("\x1b[0m", "")
    ours = throughput(
        size, [asyncio.run(_persistproc(server, path, last_line)) for _ in range(repeats)]
    )
    bare = throughput(size, [_bare_pty(path) for _ in range(repeats)])
    mb = f"{size / 1e6:.0f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"
    rows = [Row(f"{label} {mb} vs bare PTY read", ours, bare, "MB/s", ">= 0.5x")]
    rows[0].met = rows[0].ratio >= 0.5
    if shutil.which("tmux"):
        tmux = throughput(size, [_tmux(path) for _ in range(repeats)])
        rows.append(Row(f"{label} {mb} vs tmux", ours, tmux, "MB/s", ">= 2x"))
        rows[-1].met = rows[-1].ratio >= 2
    polled = [asyncio.run(_persistproc(server, path, last_line, True)) for _ in range(repeats)]
    name = f"{label} {mb} while an agent polls every 5 ms, vs waiting"
    # informs: what an agent that polls costs the process it watches (no target in the issue)
    rows.append(Row(name, throughput(size, polled), ours, "MB/s", "-"))
    return rows


def run(server: Server, quick: bool, workdir: Path) -> list[Row]:
    repeats = 1 if quick else 5
    colored = make_colored(workdir / "colored.log", 1_000_000 if quick else 20_000_000)
    progress = make_progress(workdir / "progress.log", 250_000 if quick else 5_000_000)
    try:
        return _rows(server, "colored log", colored, repeats) + _rows(
            server, "progress redraws", progress, repeats
        )
    finally:
        colored.unlink()
        progress.unlink()
