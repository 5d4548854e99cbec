"""The one facade the adapters (MCP tools, HTTP routes) call. It owns every managed process.

All methods run on the event loop thread; the registry has that single owner, so it needs no lock.
Operations on one process (start, stop, restart, remove) are serialised by that process's lock.
This module starts and stops runs; reading.py reads them; registry.py finds them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from persistproc import output, paths, recovery, spawn, tree
from persistproc.config import TOKEN_ENV
from persistproc.errors import Conflict, InvalidInput
from persistproc.model import RunRecord, Status, derive_name, now_iso, validate_name
from persistproc.process import ManagedProcess, load_state
from persistproc.reading import MAX_WAIT, Reading
from persistproc.run import Run
from persistproc.validate import check_directory, check_environment, check_size, check_timeout

log = logging.getLogger("persistproc")

# Sizes that would make a child's terminal lie to it; the PTY's own size is the truth.
# The server's token is not the children's business (a persistproc command in a child finds it in
# the token file).
_DROPPED_ENV = ("COLUMNS", "LINES", TOKEN_ENV)


class Supervisor(Reading):
    # ----- lifecycle ------------------------------------------------------------------------
    async def load(self) -> None:
        """Restore the list of an earlier server; its runs ended with it, their logs stay."""
        processes = load_state(paths.state_file(self.data_dir))
        # The server that ran them is gone: nothing of its runs may outlive it, neither of those
        # it still ran nor strays of those that had ended (left their session, ignored SIGHUP).
        markers = {r.marker for p in processes for r in p.runs if r.marker}
        strays = await asyncio.to_thread(tree.find_marked, markers)
        await asyncio.to_thread(tree.kill_and_wait, strays)
        for process in processes:
            for record in process.runs:
                if record.status is Status.RUNNING:
                    record.status, record.ended_at = Status.STOPPED, now_iso()
                    await self._recover_logs(process.name, record)
            if process.runs:
                process.run = Run.from_disk(process.runs[-1], self.columns, self.rows)
            self._processes[process.name] = process
        self._save()

    async def _recover_logs(self, name: str, record: RunRecord) -> None:
        """The clean log of a run that was running when its server died lacks its last lines."""
        log_dir = Path(record.log_dir)
        try:
            added = await asyncio.to_thread(recovery.recover, log_dir, self.max_log_bytes)
        except OSError as error:
            log.warning("%s run %d: clean log not completed: %s", name, record.number, error)
            return
        if added < 0:
            log.warning(
                "%s run %d: the end of the raw log did not line up with the clean log;"
                " the clean log may lack its last lines (the raw log has them)",
                name,
                record.number,
            )

    async def shutdown(self) -> None:
        running = [p for p in self._processes.values() if p.running]
        await asyncio.gather(
            *(self._stop_run(p, force=False, timeout=5) for p in running), return_exceptions=True
        )
        # strays of runs that ended by themselves (they left the session or ignored its hangup)
        markers = {r.marker for p in self._processes.values() for r in p.runs if r.marker}
        strays = await asyncio.to_thread(tree.find_marked, markers)
        await asyncio.to_thread(tree.kill_and_wait, strays)
        self._save()

    # ----- start, stop, restart -------------------------------------------------------------
    async def start(
        self,
        command: str,
        working_directory: str,
        environment: dict[str, str] | None = None,
        name: str | None = None,
        merge_stderr: bool = False,
        replace: bool = False,
        columns: int | None = None,
        rows: int | None = None,
    ) -> dict[str, Any]:
        size = check_size(columns, rows)
        if not isinstance(command, str) or not command.strip():
            raise InvalidInput("command is empty: give a shell command line such as 'npm run dev'")
        if "\x00" in command:
            raise InvalidInput("command contains a NUL character")
        directory = check_directory(working_directory)
        env = check_environment(environment)
        spawn.check_command(command, self._child_env(env))
        if name is not None:
            try:
                validate_name(name)
            except ValueError as error:
                raise InvalidInput(str(error)) from None
        same = self._find_same(command, directory, name)
        if same is not None and same.running and not replace:
            return {**same.info(), "already_running": True}
        if same is None and name is not None and name in self._processes:
            other = self._processes[name]
            if other.running and not replace:
                raise Conflict(
                    f"name {name!r} is used by running process pid {other.pid} ({other.command!r})"
                    " in " + other.working_directory + ": pick another name or pass replace=true"
                )
            same = other
        if same is None:
            same = ManagedProcess(
                name=name or derive_name(command, self._processes),
                command=command,
                working_directory=directory,
                environment=env,
                merge_stderr=merge_stderr,
            )
            await self._launch(same, is_restart=False, size=size)
            self._processes[same.name] = same
            self._save()
            return {**same.info(), "already_running": False}
        async with same.lock:
            self._still_known(same)
            if same.running:
                await self._stop_run(same, force=False, timeout=10)
            same.command, same.working_directory, same.environment = command, directory, env
            same.merge_stderr = merge_stderr
            await self._launch(same, is_restart=bool(same.runs), size=size)
        self._save()
        return {**same.info(), "already_running": False}

    def _find_same(self, command: str, directory: str, name: str | None) -> ManagedProcess | None:
        for process in self._processes.values():
            same_place = process.command == command and process.working_directory == directory
            if same_place and (name is None or process.name == name):
                return process
        return None

    def _child_env(self, overlay: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
        env["TERM"] = "xterm-256color"
        env.update(overlay)
        return env

    async def _launch(
        self, process: ManagedProcess, is_restart: bool, size: tuple[int, int] | None = None
    ) -> None:
        """Start a new run. Its terminal size: the one asked for, else the last run's (a restart
        keeps what attached terminals set), else the default."""
        if size is None and process.run is not None:
            size = (process.run.columns, process.run.rows)
        columns, rows = size or (self.columns, self.rows)
        number = (process.runs[-1].number + 1) if process.runs else 1
        record = RunRecord(
            number=number,
            pid=None,
            started_at=now_iso(),
            log_dir=str(paths.run_dir(self.data_dir, process.name, number)),
        )
        process.run = Run.start(
            record,
            process.command,
            process.working_directory,
            self._child_env(process.environment),
            process.merge_stderr,
            columns,
            rows,
            on_end=lambda _run: self._save(),
            max_log_bytes=self.max_log_bytes,
        )
        process.runs.append(record)
        if is_restart:
            process.restarts += 1
        log.info("started %s (pid %s, run %s)", process.name, record.pid, number)

    async def _stop_run(self, process: ManagedProcess, force: bool, timeout: float) -> None:
        if process.run is None:
            return
        if process.run.running:
            await process.run.stop(force, timeout)
            log.info("stopped %s", process.name)
        else:
            await process.run.sweep()  # descendants that outlived the run's own exit

    async def stop(
        self, pid: int | None, name: str | None, force: bool = False, timeout: float = 10
    ) -> dict[str, Any]:
        timeout = check_timeout(timeout, "timeout", 600)
        process = self.resolve(pid, name)
        async with process.lock:
            self._still_known(process)
            was_running = process.running
            await self._stop_run(process, force, timeout)
        self._save()
        result = process.info()
        if not was_running:
            result["note"] = "the process was not running"
        return result

    async def restart(self, pid: int | None, name: str | None) -> dict[str, Any]:
        process = self.resolve(pid, name)
        async with process.lock:
            self._still_known(process)
            await self._stop_run(process, force=False, timeout=10)
            await self._launch(process, is_restart=True)
        self._save()
        return process.info()

    async def remove(self, pid: int | None, name: str | None) -> dict[str, Any]:
        process = self.resolve(pid, name)
        async with process.lock:
            self._still_known(process)
            await self._stop_run(process, force=False, timeout=10)
            self._processes.pop(process.name, None)
        self._save()
        await asyncio.to_thread(
            shutil.rmtree, self.data_dir / "processes" / process.name, ignore_errors=True
        )
        return {**process.info(), "removed": True}

    async def start_and_wait(
        self, wait_for: str | None, wait_timeout: float, **start: Any
    ) -> dict[str, Any]:
        """start_process: start (or find) the process, then optionally wait for a ready line."""
        compiled = output.compile_pattern(wait_for, "wait_for") if wait_for is not None else None
        timeout = check_timeout(wait_timeout, "wait_timeout", MAX_WAIT)
        result = await self.start(**start)
        return await self._ready(result, compiled, timeout)

    async def restart_and_wait(
        self, pid: int | None, name: str | None, wait_for: str | None, wait_timeout: float
    ) -> dict[str, Any]:
        compiled = output.compile_pattern(wait_for, "wait_for") if wait_for is not None else None
        timeout = check_timeout(wait_timeout, "wait_timeout", MAX_WAIT)
        return await self._ready(await self.restart(pid, name), compiled, timeout)
