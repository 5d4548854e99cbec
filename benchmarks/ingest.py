"""Ingestion: a child `cat`s a file of colored log lines as fast as it can. Time until persistproc
has all of it (the run ended, raw log complete), against tmux and a bare Python PTY read loop."""

from __future__ import annotations

import asyncio
import os
import pty
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from mcp import Client

from benchmarks.common import Row, Server, spread

LINE = "\x1b[32m2026-11-21 12:00:00 INFO\x1b[0m request {i} handled in {ms:.3f} ms path=/api/items/{p}\n"


def make_log(size: int) -> Path:
    path = Path(tempfile.mkdtemp(prefix="persistproc-bench-")) / "colored.log"
    rng = random.Random(1)
    with open(path, "w") as handle:
        written, i = 0, 0
        while written < size:
            line = LINE.format(i=i, ms=rng.random() * 10, p=i % 977)
            handle.write(line)
            written += len(line)
            i += 1
    return path


async def _persistproc(server: Server, path: Path) -> float:
    async with Client(server.url) as client:
        started = time.perf_counter()
        result = await client.call_tool(
            "start_process", {"command": f"cat {path}", "working_directory": str(path.parent)}
        )
        name = result.structured_content["name"]
        while True:
            status = await client.call_tool("get_process_status", {"name": name})
            if status.structured_content["status"] != "running":
                break
            await client.call_tool(
                "wait_for_output", {"name": name, "pattern": "^$never", "timeout": 0.05}
            )
        elapsed = time.perf_counter() - started
        raw = Path(status.structured_content["log_path"]).read_bytes()
        expected = path.read_bytes().replace(b"\n", b"\r\n")
        if raw != expected:
            raise AssertionError("raw log is not byte-exact")
        await client.call_tool("remove_process", {"name": name})
        return elapsed


def _tmux(path: Path) -> float:
    socket_name = f"bench-{os.getpid()}-{time.monotonic_ns()}"
    started = time.perf_counter()
    subprocess.run(
        [
            "tmux",
            "-L",
            socket_name,
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            "200",
            "-y",
            "50",
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
            break
    child.wait()
    os.close(master)
    return time.perf_counter() - started


def run(server: Server, quick: bool) -> list[Row]:
    size = 1_000_000 if quick else 20_000_000
    repeats = 1 if quick else 5
    path = make_log(size)
    try:
        ours = [asyncio.run(_persistproc(server, path)) for _ in range(repeats)]

        def versus(label: str, reference: list[float], target: str) -> Row:
            rate = size / 1e6
            return Row(label, rate / spread(ours)[0], rate / spread(reference)[0], "MB/s", target)

        bare = [_bare_pty(path) for _ in range(repeats)]
        rows = [versus("colored log, MB/s vs bare PTY read", bare, ">= 0.5x")]
        if shutil.which("tmux"):
            tmux = [_tmux(path) for _ in range(repeats)]
            rows.append(versus("colored log, MB/s vs tmux", tmux, ">= 2x"))
        return rows
    finally:
        shutil.rmtree(path.parent, ignore_errors=True)
