"""Start a command under pseudo-terminals.

Strategy, decided once at import:
- The child is started with `subprocess.Popen`, whose fork and exec happen in C (`_posixsubprocess`):
  it is safe in a multi-threaded server (the event loop's executor threads exist) and, unlike `os.fork`
  or `pty.fork` (what ptyprocess uses), draws no fork-with-threads warning on Python >= 3.12.
- The PTY must become the child's controlling terminal, or Ctrl-C and SIGWINCH never reach it. Popen
  cannot do that by itself, so on Linux the command runs behind util-linux `setsid --ctty`, which calls
  setsid() and TIOCSCTTY on its stdin and then execs the shell: same pid, no extra process. Where that
  tool is missing (macOS), a preexec function does the same two calls.
- ptyprocess is not used at run time: its PtyProcess owns the master fd and reaps (and may kill) the
  child from its finalizer, which would fight the run's single reaper.
- The Popen object is the one reaper: the run calls `poll()` when the child's pidfd becomes readable.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import shutil
import struct
import subprocess
import termios
from dataclasses import dataclass

from persistproc.errors import InvalidInput, SpawnFailed

SHELL = shutil.which("bash") or "/bin/sh"
_SETSID = shutil.which("setsid")
_SETSID_HAS_CTTY = False
if _SETSID is not None:
    try:
        _help = subprocess.run([_SETSID, "--help"], capture_output=True, text=True, timeout=5)
        _SETSID_HAS_CTTY = "--ctty" in _help.stdout
    except (OSError, subprocess.SubprocessError):
        _SETSID_HAS_CTTY = False

_SHELL_WORDS = frozenset(
    [
        "!",
        "[[",
        "{",
        "(",
        "if",
        "then",
        "else",
        "elif",
        "fi",
        "case",
        "esac",
        "for",
        "select",
        "while",
        "until",
        "do",
        "done",
        "function",
        "time",
        ".",
        ":",
        "source",
        "cd",
        "exec",
        "eval",
        "export",
        "set",
        "unset",
        "alias",
        "trap",
        "true",
        "false",
        "test",
        "[",
        "echo",
        "printf",
        "read",
        "wait",
        "ulimit",
        "umask",
        "builtin",
        "command",
        "type",
        "pushd",
        "popd",
        "shift",
        "return",
        "exit",
    ]
)


@dataclass
class Child:
    """A started child: its Popen (the reaper) and the master ends of its PTYs."""

    popen: subprocess.Popen[bytes]
    terminal_fd: int  # master of the controlling terminal: stdin, stdout (and stderr when merged)
    stderr_fd: int | None  # master of the stderr PTY, None when stderr is merged

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def fds(self) -> list[int]:
        return [fd for fd in (self.terminal_fd, self.stderr_fd) if fd is not None]


def check_command(command: str, env: dict[str, str]) -> None:
    """Refuse a command whose program cannot be found, with a message saying which."""
    try:
        words = shlex.split(command)
    except ValueError:
        return  # let the shell report its own syntax errors in the output
    words = [w for w in words if not ("=" in w and w.split("=", 1)[0].isidentifier())]
    if not words or words[0] in _SHELL_WORDS or any(c in words[0] for c in "$`(){};&|<>*?"):
        return
    program = words[0]
    if "/" in program:
        return  # a path: relative ones depend on the working directory; the shell says if missing
    if shutil.which(program, path=env.get("PATH", os.defpath)) is None:
        raise InvalidInput(f"executable {program!r} not found on PATH")


def set_window_size(fd: int, columns: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


def _become_terminal_owner() -> None:  # pragma: no cover - runs in the child, fallback only
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def spawn(
    command: str, cwd: str, env: dict[str, str], columns: int, rows: int, merge_stderr: bool
) -> Child:
    """Start `command` with the shell in `cwd`; stdin/stdout on one PTY, stderr on another."""
    terminal_master, terminal_slave = os.openpty()
    fds = [terminal_master, terminal_slave]
    try:
        set_window_size(terminal_master, columns, rows)
        stderr_master: int | None = None
        stderr_slave = terminal_slave
        if not merge_stderr:
            stderr_master, stderr_slave = os.openpty()
            fds += [stderr_master, stderr_slave]
            set_window_size(stderr_master, columns, rows)
        argv = [SHELL, "-c", command]
        if _SETSID_HAS_CTTY:
            assert _SETSID is not None
            argv = [_SETSID, "--ctty", *argv]
        popen = subprocess.Popen(
            argv,
            stdin=terminal_slave,
            stdout=terminal_slave,
            stderr=stderr_slave,
            cwd=cwd,
            env=env,
            close_fds=True,
            preexec_fn=None if _SETSID_HAS_CTTY else _become_terminal_owner,
        )
    except OSError as error:
        for fd in fds:
            os.close(fd)
        raise SpawnFailed(f"could not start {command!r}: {error.strerror or error}") from None
    # The parent must not keep the slave ends open: end of output (EIO) only comes once every slave
    # end is closed, i.e. when the child and everything it left behind have let go of the terminal.
    os.close(terminal_slave)
    if stderr_master is not None:
        os.close(stderr_slave)
    os.set_blocking(terminal_master, False)
    if stderr_master is not None:
        os.set_blocking(stderr_master, False)
    return Child(popen=popen, terminal_fd=terminal_master, stderr_fd=stderr_master)
