"""The processes a server knows, by name, and how a request finds one (by pid or name).

All of it runs on the event loop thread, its single owner, so it needs no lock.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from persistproc import paths
from persistproc.config import DEFAULT_COLUMNS, DEFAULT_ROWS, max_log_size_from_env
from persistproc.errors import InvalidInput, NotFound
from persistproc.process import ManagedProcess, save_state

log = logging.getLogger("persistproc")


class Registry:
    """The known processes (one ManagedProcess per name, with all its runs) and the file that
    remembers them; the base of the supervisor's facade."""

    def __init__(
        self,
        data_dir: Path,
        columns: int = DEFAULT_COLUMNS,
        rows: int = DEFAULT_ROWS,
        max_log_bytes: int | None = None,
    ):
        """max_log_bytes: the cap of each log file of a run (default $PERSISTPROC_MAX_LOG_SIZE
        or 2 GiB); over it, the oldest half of that log is dropped."""
        self.data_dir = paths.ensure_private_dir(data_dir)
        self.max_log_bytes = max_log_size_from_env() if max_log_bytes is None else max_log_bytes
        self.columns, self.rows = columns, rows
        self._processes: dict[str, ManagedProcess] = {}
        self.default_directory = os.getcwd()

    def _save(self) -> None:
        try:
            save_state(paths.state_file(self.data_dir), list(self._processes.values()))
        except OSError as error:
            log.error("could not save the process list: %s", error)

    # ----- lookup ---------------------------------------------------------------------------
    def resolve(self, pid: int | None = None, name: str | None = None) -> ManagedProcess:
        if name is not None and not isinstance(name, str):
            raise InvalidInput("name must be a string")
        if pid is not None and (isinstance(pid, bool) or not isinstance(pid, int)):
            raise InvalidInput("pid must be a whole number")
        if name:
            found = self._processes.get(name)
            if found is None:
                raise NotFound(f"no process named {name!r}; known: {self._known()}")
            if pid is not None and found.pid != pid:
                raise InvalidInput(f"pid {pid} is not the current pid of {name!r} ({found.pid})")
            return found
        if pid is None:
            raise InvalidInput("give the process's pid or name")
        for process in self._processes.values():
            if process.pid == pid:
                return process
        for process in self._processes.values():  # a pid of an earlier run still finds it
            if any(run.pid == pid for run in process.runs):
                return process
        raise NotFound(f"no process with pid {pid}; known: {self._known()}")

    def _still_known(self, process: ManagedProcess) -> None:
        """After waiting for a process's lock: it may have been removed meanwhile."""
        if self._processes.get(process.name) is not process:
            raise NotFound(f"{process.name!r} was removed while this request waited for it")

    def _known(self) -> str:
        names = [f"{p.name} (pid {p.pid})" for p in self._processes.values()]
        return ", ".join(names) if names else "none (start one with start_process)"
