"""Shared helpers: a server on a free loopback port, medians with spread, the result table."""

from __future__ import annotations

import os
import platform
import shutil
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
from pathlib import Path
from typing import Any

from mcp import Client

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@dataclass
class Row:
    """One measure: persistproc's samples against a reference's samples from the same run.

    `met` is decided by the benchmark (some targets are ratios, some are differences or
    absolute limits); None when the row only informs."""

    name: str
    samples: list[float]
    reference: list[float]
    unit: str
    target: str
    met: bool | None = None

    @property
    def value(self) -> float:
        return statistics.median(self.samples)

    @property
    def reference_value(self) -> float:
        return statistics.median(self.reference) if self.reference else float("nan")

    @property
    def ratio(self) -> float:
        return self.value / self.reference_value if self.reference else float("nan")


def throughput(size: int, seconds: list[float]) -> list[float]:
    """MB/s for each timing of moving `size` bytes."""
    return [size / 1e6 / s for s in seconds]


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    port: int
    data_dir: str
    pid: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp/"


@contextmanager
def server() -> Iterator[Server]:
    """A real server subprocess with its own data dir; stopped (and every process with it) and
    its data dir deleted after."""
    port = free_port()
    data_dir = tempfile.mkdtemp(prefix="persistproc-bench-")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "persistproc",
            "--serve",
            *("--port", str(port)),
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
        yield Server(port, data_dir, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(data_dir, ignore_errors=True)


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """A tool call that must succeed; its structured result."""
    result = await client.call_tool(tool, arguments)
    if result.is_error:
        raise AssertionError(f"{tool}({arguments}) failed: {result.content}")
    content = result.structured_content
    assert isinstance(content, dict)
    return content


def _figure(samples: list[float], unit: str) -> str:
    if not samples:
        return "-"
    median = statistics.median(samples)
    if len(samples) == 1:
        return f"{median:.2f} {unit}"
    return f"{median:.2f} {unit} ({min(samples):.2f}-{max(samples):.2f})"


def table(title: str, rows: list[Row]) -> str:
    lines = [
        f"### {title}",
        "",
        "| measure | persistproc | reference | ratio | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        met = {True: "yes", False: "**no**", None: "-"}[row.met]
        ratio = f"{row.ratio:.2f}" if row.reference else "-"
        lines.append(
            f"| {row.name} | {_figure(row.samples, row.unit)} | {_figure(row.reference, row.unit)}"
            f" | {ratio} | {row.target} | {met} |"
        )
    return "\n".join(lines) + "\n"


def machine() -> str:
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    uname = os.uname()
    return (
        f"{os.cpu_count()} cores ({model}), Python {sys.version.split()[0]},"
        f" {uname.sysname} {uname.release}"
    )
