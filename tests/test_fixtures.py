"""The fixture programs behave as fixtures/README.md says (they are what other tests build on)."""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from persistproc.screen import TerminalScreen

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TIMEOUT = 10.0
PR_SET_CHILD_SUBREAPER = 36


def command(name: str, *args: str) -> list[str]:
    return [sys.executable, str(FIXTURES / f"{name}.py"), *args]


def run(name: str, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(command(name, *args), input=stdin, capture_output=True, timeout=TIMEOUT)


def read_until(fd: int, buffer: bytearray, marker: bytes, timeout: float = TIMEOUT) -> None:
    """Read from fd into buffer until marker appears; fail on timeout or end of output."""
    deadline = time.monotonic() + timeout
    while marker not in buffer:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"{marker!r} not seen in {bytes(buffer)!r}")
        if not select.select([fd], [], [], remaining)[0]:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO from a pty master once the child side is closed
            chunk = b""
        if not chunk:
            raise AssertionError(f"output ended before {marker!r}: {bytes(buffer)!r}")
        buffer += chunk


def read_to_end(fd: int, buffer: bytearray, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"output did not end: {bytes(buffer)!r}")
        if not select.select([fd], [], [], remaining)[0]:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            return
        if not chunk:
            return
        buffer += chunk


def set_size(fd: int, columns: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


class PtyChild:
    """A fixture whose stdin, stdout and stderr are the slave side of a fresh pty."""

    def __init__(self, name: str, *args: str, columns: int = 80, rows: int = 24) -> None:
        self.master, slave = pty.openpty()
        set_size(slave, columns, rows)
        env = {**os.environ, "TERM": "xterm-256color"}
        try:
            self.proc = subprocess.Popen(
                command(name, *args),
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=env,
                start_new_session=True,
            )
        finally:
            os.close(slave)
        self.output = bytearray()

    def read_until(self, marker: bytes) -> str:
        read_until(self.master, self.output, marker)
        return self.output.decode(errors="replace")

    def wait(self) -> int:
        read_to_end(self.master, self.output)
        return self.proc.wait(timeout=TIMEOUT)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=TIMEOUT)
        os.close(self.master)


@pytest.fixture
def pty_children() -> Iterator[list[PtyChild]]:
    children: list[PtyChild] = []
    yield children
    for child in children:
        child.close()


def spawn_pty(children: list[PtyChild], name: str, *args: str, **size: int) -> PtyChild:
    child = PtyChild(name, *args, **size)
    children.append(child)
    return child


def test_colors_without_a_terminal() -> None:
    result = run("colors", "--stderr")
    out = result.stdout.decode()
    assert result.returncode == 0
    assert "\x1b[31mred" in out and "\x1b[38;5;208m" in out and "\x1b[38;2;255;105;180m" in out
    assert "isatty: stdout=False stderr=False stdin=False" in out
    assert "size=none" in out
    assert out.splitlines()[-1] == "READY"
    assert result.stderr.decode().splitlines() == ["err line 1", "err line 2", "err line 3"]


def test_colors_on_a_terminal(pty_children: list[PtyChild]) -> None:
    child = spawn_pty(pty_children, "colors", columns=100, rows=30)
    assert child.wait() == 0
    out = child.output.decode()
    assert "isatty: stdout=True stderr=True stdin=True" in out
    assert "TERM=xterm-256color" in out
    assert "size=100x30" in out
    assert out.rstrip().endswith("READY")


def test_prompt_reads_a_name() -> None:
    result = run("prompt", stdin=b"Bob\n")
    assert result.returncode == 0
    assert result.stdout == b"READY\nname? hello, Bob!\n"


def test_progress_final_screen() -> None:
    result = run("progress")
    assert result.returncode == 0
    screen = TerminalScreen(60, 12)
    screen.feed(result.stdout.replace(b"\n", b"\r\n"))  # what a pty's output processing does
    assert screen.snapshot().text().splitlines() == [
        "READY",
        "progress [##########] 100%",
        "build: step 3/3",
        "test: step 3/3",
        "lint: step 3/3",
        "done",
    ]


@pytest.mark.parametrize("alt", [False, True])
def test_screen_draw(pty_children: list[PtyChild], alt: bool) -> None:
    child = spawn_pty(pty_children, "screen_draw", *(["--alt"] if alt else []))
    child.read_until(b"READY\r\n")
    screen = TerminalScreen(80, 24)
    screen.feed(bytes(child.output))
    snap = screen.snapshot()
    assert snap.alternate_screen == alt
    assert snap.lines[0] == "TOP-LEFT"
    assert snap.lines[11] == " " * 37 + "CENTER"
    assert snap.lines[3:6] == ["    +------+", "    |      |", "    +------+"]
    assert snap.lines[7] == "READY"
    assert child.output.endswith(b"READY\r\n")
    os.write(child.master, b"quit\n")
    assert child.wait() == 0
    screen.feed(bytes(child.output).split(b"READY\r\n", 1)[1])
    assert not screen.snapshot().alternate_screen
    assert (b"\x1b[?1049l" in child.output) == alt


def test_flood_then_traceback_on_stderr() -> None:
    result = run("flood", "2000")
    assert result.returncode == 1
    lines = result.stdout.decode().splitlines()
    assert lines[0] == "READY"
    assert len(lines) == 2001
    assert lines[1].startswith("line 000001 \x1b[32mok")
    assert lines[-1].startswith("line 002000 ")
    err = result.stderr.decode()
    assert err.startswith("Traceback (most recent call last):")
    assert err.endswith("ValueError: boom\n")


def test_flood_stdout_only() -> None:
    result = run("flood", "10", "--stdout-only")
    assert result.returncode == 1
    assert result.stderr == b""
    assert result.stdout.endswith(b"ValueError: boom\n")
    assert b"Traceback (most recent call last):" in result.stdout


def test_echo() -> None:
    result = run("echo", stdin=b"a\nb b\n")
    assert result.returncode == 0
    assert result.stdout == b"READY\necho: a\necho: b b\n"


def test_crash_raises() -> None:
    result = run("crash")
    assert result.returncode == 1
    assert b"READY\n" in result.stdout
    assert b"RuntimeError: crash fixture" in result.stderr


def test_crash_by_signal() -> None:
    result = run("crash", "--signal")
    assert result.returncode == -signal.SIGSEGV
    assert b"READY\n" in result.stdout


def test_binary_output() -> None:
    result = run("binary")
    assert result.returncode == 0
    assert result.stdout.startswith(b"READY\n\xff\xfe")
    assert result.stdout.endswith(b"\nEND\n")
    with pytest.raises(UnicodeDecodeError):
        result.stdout.decode()
    screen = TerminalScreen(80, 24)
    screen.feed(result.stdout)  # must not raise
    assert "END" in screen.snapshot().text()


def test_binary_long_line() -> None:
    result = run("binary", "--long-line", "200000")
    assert result.returncode == 0
    head, line, tail = result.stdout.split(b"\n", 2)
    assert head == b"READY"
    assert len(line) == 200000
    assert tail == b"END\n"


def _signal_child(child: PtyChild, signum: int) -> None:
    os.kill(child.proc.pid, signum)


def test_sigtrap_reports_winch_then_int(pty_children: list[PtyChild]) -> None:
    child = spawn_pty(pty_children, "sigtrap")
    child.read_until(b"READY")
    set_size(child.master, 90, 20)
    _signal_child(child, signal.SIGWINCH)
    child.read_until(b"size=90x20")
    _signal_child(child, signal.SIGINT)
    assert child.wait() == 130
    assert b"got SIGINT" in child.output


def test_sigtrap_term() -> None:
    proc = subprocess.Popen(command("sigtrap"), stdout=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        buffer = bytearray()
        read_until(proc.stdout.fileno(), buffer, b"READY\n")
        proc.send_signal(signal.SIGWINCH)
        read_until(proc.stdout.fileno(), buffer, b"size=none\n")
        proc.terminate()
        assert proc.wait(timeout=TIMEOUT) == 143
        read_to_end(proc.stdout.fileno(), buffer)
        assert buffer.endswith(b"got SIGTERM\n")
    finally:
        proc.kill()
        proc.wait(timeout=TIMEOUT)
        proc.stdout.close()


def test_sigtrap_ignore_term() -> None:
    proc = subprocess.Popen(command("sigtrap", "--ignore-term"), stdout=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        buffer = bytearray()
        read_until(proc.stdout.fileno(), buffer, b"READY\n")
        proc.terminate()
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=0.3)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=TIMEOUT) == 130
    finally:
        proc.kill()
        proc.wait(timeout=TIMEOUT)
        proc.stdout.close()


@pytest.fixture
def subreaper() -> Iterator[None]:
    """Make this process adopt orphaned descendants while the test runs, so it can reap them.

    Without it, tree.py's detached grandchild (and its children once it is killed) are left to
    pid 1, which does not reap in every container.
    """
    libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
    enabled = libc is not None and libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    try:
        yield
    finally:
        if enabled and libc is not None:
            libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def _gone(pid: int) -> bool:
    """True once pid has exited and, if it is our child, has been reaped."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        return reaped == pid
    except ChildProcessError:
        pass  # not ours: someone else reaps it, a zombie counts as gone
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _kill_all(pids: list[int], parent: subprocess.Popen[bytes]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    # The parent goes last: its exit hands its dead children to us (the subreaper) to reap.
    parent.kill()
    parent.wait(timeout=TIMEOUT)
    deadline = time.monotonic() + TIMEOUT
    while not all(_gone(pid) for pid in pids):
        assert time.monotonic() < deadline, f"processes still alive: {pids}"
        time.sleep(0.02)


@pytest.mark.parametrize("ignore_term", [False, True])
@pytest.mark.usefixtures("subreaper")
def test_tree_spawns_escaping_grandchildren(ignore_term: bool) -> None:
    args = ["--ignore-term"] if ignore_term else []
    proc = subprocess.Popen(command("tree", *args), stdout=subprocess.PIPE)
    assert proc.stdout is not None
    pids: list[int] = []
    try:
        buffer = bytearray()
        read_until(proc.stdout.fileno(), buffer, b"READY\n")
        first = buffer.decode().splitlines()[0].split()
        assert first[0] == "PIDS"
        pids = [int(pid) for pid in first[1:]]
        assert len(pids) == 3
        plain, group, session = pids
        assert not any(_gone(pid) for pid in pids)
        assert os.getpgid(plain) == os.getpgid(proc.pid)
        assert os.getpgid(group) == group
        # Double fork: a new session whose leader has exited, and a parent other than tree.py.
        assert os.getsid(session) not in (session, os.getsid(proc.pid))
        assert _parent(session) != proc.pid
        if ignore_term:
            for pid in [proc.pid, *pids]:
                os.kill(pid, signal.SIGTERM)
            time.sleep(0.3)
            assert proc.poll() is None
            assert not any(_gone(pid) for pid in pids)
    finally:
        _kill_all(pids, proc)
        proc.stdout.close()
