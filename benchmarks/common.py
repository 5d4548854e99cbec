"""Shared helpers: a server on a free loopback port, medians with spread, the result table."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class Row:
    name: str
    value: float  # persistproc's figure
    reference: float  # the reference measured in the same run
    unit: str
    target: str
    higher_is_better: bool = True

    @property
    def ratio(self) -> float:
        return self.value / self.reference if self.reference else float("nan")


def spread(samples: list[float]) -> tuple[float, float, float]:
    return statistics.median(samples), min(samples), max(samples)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    port: int
    data_dir: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp/"


@contextmanager
def server() -> Iterator[Server]:
    """A real server subprocess with its own data dir; stopped (and every process with it) after."""
    port = free_port()
    data_dir = tempfile.mkdtemp(prefix="persistproc-bench-")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "persistproc",
            "--serve",
            "--port",
            str(port),
            "--data-dir",
            data_dir,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the benchmark server did not start") from None
                time.sleep(0.05)  # readiness probe
        yield Server(port, data_dir)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def table(title: str, rows: list[Row]) -> str:
    lines = [
        f"### {title}",
        "",
        "| measure | persistproc | reference | ratio | target |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.name} | {row.value:.2f} {row.unit} | {row.reference:.2f} {row.unit} "
            f"| {row.ratio:.2f} | {row.target} |"
        )
    return "\n".join(lines) + "\n"


def machine() -> str:
    return f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, {os.uname().sysname} {os.uname().release}"
