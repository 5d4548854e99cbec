"""Values that describe processes and runs; shared by the server, the client and the CLI."""

from __future__ import annotations

import enum
import re
import shlex
import signal as signal_module
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any


class Status(str, enum.Enum):
    RUNNING = "running"
    EXITED = "exited"  # ended by itself with exit code 0
    FAILED = "failed"  # ended by itself with a non-zero code or a signal, or could not start
    STOPPED = "stopped"  # ended because somebody stopped it (stop, restart, server shutdown)


STREAMS = ("combined", "stdout", "stderr")


@dataclass
class RunRecord:
    """One run of a process: what is kept on disk and shown to clients."""

    number: int
    pid: int | None
    started_at: str
    log_dir: str
    marker: str = ""  # the value of the run marker in its environment, to find strays later
    status: Status = Status.RUNNING
    ended_at: str | None = None
    exit_code: int | None = None
    signal: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        return cls(
            number=int(data["number"]),
            pid=data.get("pid"),
            started_at=str(data["started_at"]),
            log_dir=str(data["log_dir"]),
            marker=str(data.get("marker", "")),
            status=Status(data.get("status", Status.STOPPED.value)),
            ended_at=data.get("ended_at"),
            exit_code=data.get("exit_code"),
            signal=data.get("signal"),
        )


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def describe_wait_status(returncode: int) -> tuple[int | None, str | None]:
    """Split a subprocess-style return code into (exit_code, signal name)."""
    if returncode >= 0:
        return returncode, None
    try:
        return None, signal_module.Signals(-returncode).name
    except ValueError:
        return None, f"signal {-returncode}"


_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def validate_name(name: str) -> str:
    """A process name is a handle in URLs and directory names: keep it simple and not a number."""
    if not NAME_PATTERN.match(name) or name in {".", ".."}:
        raise ValueError(f"invalid name {name!r}: use 1 to 64 letters, digits, '.', '_' or '-'")
    if name.isdigit():
        raise ValueError(f"invalid name {name!r}: a name must not be all digits (pids are)")
    return name


def derive_name(command: str, taken: Iterable[str]) -> str:
    """A readable name from a command line: program basename and first arguments, made unique."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    words = [w for w in words if not _ASSIGNMENT.match(w)]
    words = [w.rstrip("/").rsplit("/", 1)[-1] if "/" in w else w for w in words]
    joined = _NAME_UNSAFE.sub("-", "-".join(w.lstrip("-") for w in words[:4] if w.lstrip("-")))
    base = re.sub(r"-{2,}", "-", joined).strip("-.")[:40].strip("-.") or "process"
    if base.isdigit():
        base = f"p{base}"
    taken_set = set(taken)
    candidate, suffix = base, 2
    while candidate in taken_set:
        candidate, suffix = f"{base}-{suffix}", suffix + 1
    return candidate
