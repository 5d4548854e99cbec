"""A managed process: a stable name, its command, and its runs; and the file that remembers them."""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from persistproc.model import RunRecord, Status
from persistproc.rawlog import RAW_LOG
from persistproc.run import Run

STATE_VERSION = 1


@dataclass
class ManagedProcess:
    name: str
    command: str
    working_directory: str
    environment: dict[str, str]  # what the client asked for, layered over the server's at start
    merge_stderr: bool = False
    restarts: int = 0
    runs: list[RunRecord] = field(default_factory=list)
    run: Run | None = None  # the current (or last) run, with its readers
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def running(self) -> bool:
        return self.run is not None and self.run.running

    @property
    def pid(self) -> int | None:
        return self.runs[-1].pid if self.runs else None

    def _basics(self) -> dict[str, Any]:
        last = self.runs[-1] if self.runs else None
        return {
            "pid": last.pid if last else None,
            "name": self.name,
            "command": self.command,
            "working_directory": self.working_directory,
            "status": last.status.value if last else Status.STOPPED.value,
            "exit_code": last.exit_code if last else None,
            "signal": last.signal if last else None,
            "started_at": last.started_at if last else None,
            "ended_at": last.ended_at if last else None,
            "restarts": self.restarts,
            "run": last.number if last else 0,
        }

    def info(self) -> dict[str, Any]:
        info = self._basics()
        log_dir = self.runs[-1].log_dir if self.runs else None
        info["merge_stderr"] = self.merge_stderr
        info["log_path"] = os.path.join(log_dir, RAW_LOG) if log_dir else None
        info["clean_log_path"] = os.path.join(log_dir, "combined.log") if log_dir else None
        error = self.run.recording.write_error if self.run is not None else None
        info["output_saved"] = error is None
        if error:
            info["log_error"] = error
        dropped = self.run.recording.dropped() if self.run is not None else None
        if dropped:
            # the log size cap rotated the oldest output out: say how much
            info["dropped_by_log_cap"] = dropped
        return info

    def summary(self) -> dict[str, Any]:
        """The entry in a list of processes: what tells them apart and how each is doing. Agents
        list often, so it leaves out the log paths and fields with no value (info() has all)."""
        kept = {key: value for key, value in self._basics().items() if value is not None}
        error = self.run.recording.write_error if self.run is not None else None
        if error:
            kept["log_error"] = error
        return kept

    def to_state(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "command": self.command,
            "working_directory": self.working_directory,
            "environment": self.environment,
            "merge_stderr": self.merge_stderr,
            "restarts": self.restarts,
            "runs": [run.to_dict() for run in self.runs],
        }

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> ManagedProcess:
        return cls(
            name=str(data["name"]),
            command=str(data["command"]),
            working_directory=str(data["working_directory"]),
            environment={str(k): str(v) for k, v in dict(data.get("environment", {})).items()},
            merge_stderr=bool(data.get("merge_stderr", False)),
            restarts=int(data.get("restarts", 0)),
            runs=[RunRecord.from_dict(run) for run in data.get("runs", [])],
        )


def save_state(path: Path, processes: list[ManagedProcess]) -> None:
    """Write atomically, owner-only: the file holds the environments clients passed."""
    payload = json.dumps(
        {"version": STATE_VERSION, "processes": [p.to_state() for p in processes]}, indent=1
    )
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(payload)
    os.replace(temporary, path)


def load_state(path: Path) -> list[ManagedProcess]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as error:
        broken = path.with_suffix(".broken")
        os.replace(path, broken)
        raise RuntimeError(f"{path} could not be read ({error}); moved aside to {broken}") from None
    return [ManagedProcess.from_state(entry) for entry in data.get("processes", [])]
