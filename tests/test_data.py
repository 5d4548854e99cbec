"""Nothing lost: byte-exact raw logs, every clean line, the size cap's explicit gaps, a log that
cannot be written, and a server killed with SIGKILL. Real servers, driven over HTTP."""

from __future__ import annotations

import hashlib
import os
import resource
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Server, fixture_cmd
from test_e2e_http import WAIT, Session, connect, gone, poll

from persistproc.logs import LineStore

pytestmark = pytest.mark.timeout(240)


def _raw(info: dict[str, object]) -> bytes:
    path = Path(str(info["log_path"]))
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob("output.raw*")))


def _writer(tmp_path: Path, lines: int, width: int = 100) -> tuple[str, bytes]:
    """A file of numbered colored lines and the command that cats it; returns the command and
    the bytes the terminal turns them into (the PTY writes \\r\\n for \\n)."""
    body = b"".join(
        b"\x1b[3%dmline %07d\x1b[0m %s\n" % (i % 8, i, b"x" * (width - 30)) for i in range(lines)
    )
    path = tmp_path / "input.txt"
    path.write_bytes(body)
    return f"cat {path}", body.replace(b"\n", b"\r\n")


async def _finished(mcp: Session, name: str) -> dict[str, object]:
    return await poll(
        lambda: mcp.call("get_process_status", name=name), lambda s: s["status"] != "running"
    )


async def test_fifty_megabytes_as_fast_as_possible_are_kept_byte_exact(
    server: Server, tmp_path: Path
) -> None:
    command, expected = _writer(tmp_path, 500_000)  # 50 MB
    async with connect(server, tmp_path) as mcp:
        info = await mcp.start(command, name="fifty")
        status = await _finished(mcp, "fifty")
        assert status["exit_code"] == 0, status
        raw = _raw(info)
        assert len(raw) == len(expected)
        assert hashlib.sha256(raw).hexdigest() == hashlib.sha256(expected).hexdigest()
        page = await mcp.output("fifty", lines=3)
        assert page["total_lines"] == 500_000, page
        assert page["text"].split("\n")[-1].startswith("line 0499999 xxx"), page
        clean = LineStore(Path(str(info["clean_log_path"])))
        assert clean.count == 500_000
        numbers = [int(line.split()[1]) for line in clean.read(1, 500_000)]
        assert numbers == list(range(500_000))  # every line, in order, once


async def test_hundred_thousand_lines_then_exit_keeps_every_line_and_the_traceback(
    server: Server, tmp_path: Path
) -> None:
    async with connect(server, tmp_path) as mcp:
        info = await mcp.start(fixture_cmd("flood", "100000"), name="flood")
        await _finished(mcp, "flood")
        tail = await mcp.lines("flood", lines=5)
        assert tail[-1] == "ValueError: boom", tail
        clean = LineStore(Path(str(info["clean_log_path"])))
        flood = [line for line in clean.read(1, 10**6) if line.startswith("line ")]
        assert [int(line.split()[1]) for line in flood] == list(range(1, 100_001))


async def test_a_child_killed_mid_write_leaves_every_complete_line(
    server: Server, tmp_path: Path
) -> None:
    writer = "import itertools\nfor i in itertools.count():\n print(f'line {i:08d} ' + 'y' * 60)"
    async with connect(server, tmp_path) as mcp:
        info = await mcp.start(f"{sys.executable} -u -c {shlex.quote(writer)}", name="killed")
        await mcp.wait_output("killed", r"^line 00020000 ", since=0)
        os.kill(int(str(info["pid"])), signal.SIGKILL)
        status = await _finished(mcp, "killed")
        assert status["signal"] == "SIGKILL", status
        raw = _raw(info).decode()
        complete = raw[: raw.rfind("\r\n") + 2].split("\r\n")[:-1]
        clean = LineStore(Path(str(info["clean_log_path"]))).read(1, 10**7)
        assert clean[: len(complete)] == complete  # the raw log's lines, each exactly once
        assert [int(line.split()[1]) for line in complete] == list(range(len(complete)))
        assert len(complete) > 20_000


async def test_a_log_over_its_cap_drops_its_oldest_part_with_an_explicit_gap(
    server_factory: Callable[..., Server], tmp_path: Path
) -> None:
    server = server_factory(env={"PERSISTPROC_MAX_LOG_SIZE": "256k"})
    command, expected = _writer(tmp_path, 20_000)  # 2 MB: many times the cap
    async with connect(server, tmp_path) as mcp:
        info = await mcp.start(command, name="capped")
        await _finished(mcp, "capped")
        status = await mcp.call("get_process_status", name="capped")
        dropped = status["dropped_by_log_cap"]
        assert dropped["raw_bytes"] > 0 and dropped["lines"] > 0, status
        page = await mcp.output("capped", since=0, lines=5)
        first = dropped["lines"] + 1
        assert page["truncated"] and page["first_available_line"] == first, page
        assert page["first_line"] == first and f"line {first - 1:07d}" in page["text"], page
        assert "dropped by the log size cap" in page["note"], page
        tail = await mcp.output("capped", lines=2)
        assert tail["last_line"] == 20_000 and not tail["truncated"], tail
        cli = [sys.executable, "-m", "persistproc", "--port", str(server.port)]
        raw = subprocess.run(
            [*cli, "logs", "--raw", "capped"],
            capture_output=True,
            timeout=WAIT,
            check=True,
        )
        assert raw.stdout == expected[dropped["raw_bytes"] :]  # byte-exact from the first kept
        assert f"the first {dropped['raw_bytes']} bytes" in raw.stderr.decode()
        log_dir = Path(str(info["log_path"])).parent
        for name in ("output.raw", "combined.log", "stdout.log"):
            kept = sum(p.stat().st_size for p in log_dir.glob(name + "*"))
            assert kept <= 256 * 1024 + 64 * 1024, (name, kept)


def _limit_file_size() -> None:
    # A full disk, as far as the server can tell: writes past 2 MB fail with EFBIG. Python
    # ignores SIGXFSZ, so the server gets the error instead of the signal.
    resource.setrlimit(resource.RLIMIT_FSIZE, (2 * 1024 * 1024, 2 * 1024 * 1024))


async def test_an_unwritable_log_keeps_the_process_running_and_says_so(
    server_factory: Callable[..., Server], tmp_path: Path
) -> None:
    server = server_factory(preexec_fn=_limit_file_size)
    script = tmp_path / "chatty.py"
    script.write_text(
        "import sys\nfor i in range(60000): print(f'line {i:06d} ' + 'z' * 70)\n"
        "print('READY', flush=True)\nsys.stdin.readline()\nprint('still here', flush=True)\n"
    )
    async with connect(server, tmp_path) as mcp:
        await mcp.start(f"{sys.executable} {script}", name="chatty")  # ~5 MB of output
        await mcp.wait_output("chatty", "^READY$", since=0)
        status = await poll(
            lambda: mcp.call("get_process_status", name="chatty"),
            lambda s: not s["output_saved"],
        )
        assert status["status"] == "running", status
        assert "not being saved" in status["log_error"], status
        await mcp.send("chatty", "go\n")
        found = await mcp.wait_output("chatty", "^still here$", since=0)
        assert found["matched"]
        assert server.proc.poll() is None  # the server is fine


async def test_a_server_killed_with_sigkill_leaves_complete_logs(
    server_factory: Callable[..., Server], tmp_path: Path
) -> None:
    first = server_factory()
    script = tmp_path / "short.py"
    # 30 lines stay in the line machine's window (64) while the program waits: not yet committed
    script.write_text(
        "import time\nfor i in range(30): print(f'kept {i}')\nprint('READY', flush=True)\n"
        "time.sleep(600)\n"
    )
    async with connect(first, tmp_path) as mcp:
        info = await mcp.start(f"{sys.executable} {script}", name="short", wait_for="^READY$")
        mcp.started.clear()
        raw = Path(str(info["log_path"]))
        deadline = time.monotonic() + WAIT
        while b"READY" not in raw.read_bytes():  # the flush tick has written it
            assert time.monotonic() < deadline, "the raw log never got READY"
            time.sleep(0.05)  # poll interval
    clean = Path(str(info["clean_log_path"]))
    # still in the window when the server dies: nothing committed to the clean log yet
    assert not clean.exists() or "READY" not in clean.read_text()
    first.proc.kill()
    first.proc.wait()
    deadline = time.monotonic() + WAIT
    while not gone(int(str(info["pid"]))):  # the terminal's hangup ends it
        assert time.monotonic() < deadline, "the child outlived its server's SIGKILL"
        time.sleep(0.05)  # poll interval
    again = server_factory(first.data_dir)
    async with connect(again, tmp_path) as mcp:
        lines = await mcp.lines("short", lines=100)
        status = await mcp.call("get_process_status", name="short")
    assert lines == [f"kept {i}" for i in range(30)] + ["READY"], lines
    assert status["status"] == "stopped", status
