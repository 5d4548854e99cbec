"""The supervisor's reading half: lists, status, output, the screen, input, waits and attaching.

None of these start or stop a run; they read what runs record, or hand input to a running one.
"""

from __future__ import annotations

import asyncio
import builtins
import os
from typing import Any

import regex

from persistproc import output
from persistproc.errors import Conflict, InvalidInput, NotFound, PersistprocError
from persistproc.keys import encode_keys
from persistproc.process import ManagedProcess
from persistproc.registry import Registry
from persistproc.run import Run
from persistproc.terminal import AttachedTerminal
from persistproc.validate import check_since, check_stream, check_timeout
from persistproc.waiting import last_lines, scan, wait_for_line

MAX_WAIT = 3600.0


class Reading(Registry):
    """What the facade answers without starting or stopping anything."""

    def list(self, working_directory: str | None = None) -> builtins.list[dict[str, Any]]:
        processes = list(self._processes.values())
        if working_directory:
            base = os.path.normpath(working_directory)
            processes = [
                p
                for p in processes
                if p.working_directory == base or p.working_directory.startswith(base + os.sep)
            ]
        return [p.summary() for p in processes]

    async def status(self, pid: int | None, name: str | None) -> dict[str, Any]:
        process = self.resolve(pid, name)
        info = process.info()
        if process.run is not None:
            cpu, rss, ports = await asyncio.to_thread(process.run.usage)
            snapshot = process.run.recording.snapshot("combined")
            info.update(
                cpu_percent=round(cpu, 1),
                memory_bytes=rss,
                listening_ports=ports,
                output_lines=snapshot.total,
                columns=process.run.columns,
                rows=process.run.rows,
            )
        return info

    async def _run_of(self, process: ManagedProcess, run_number: int | None) -> Run:
        if run_number is None or (process.runs and run_number == process.runs[-1].number):
            if process.run is None:
                raise NotFound(f"{process.name!r} has no run yet")
            return process.run
        for record in process.runs:
            if record.number == run_number:
                # reopening counts the lines of its logs: off the loop
                return await asyncio.to_thread(Run.from_disk, record, self.columns, self.rows)
        numbers = ", ".join(str(r.number) for r in process.runs)
        raise NotFound(f"{process.name!r} has no run {run_number}; runs: {numbers}")

    async def output(
        self,
        pid: int | None,
        name: str | None,
        stream: str = "combined",
        lines: int = 100,
        since: int | None = None,
        grep: str | None = None,
        run_number: int | None = None,
    ) -> dict[str, Any]:
        check_stream(stream)
        output.check_lines(lines)
        check_since(since)
        pattern = output.compile_pattern(grep, "grep") if grep is not None else None
        process = self.resolve(pid, name)
        run = await self._run_of(process, run_number)
        snapshot = run.recording.snapshot(stream)
        # a grep may take its whole time budget: on the pattern scans' threads, not the shared ones
        read = scan if pattern is not None else asyncio.to_thread
        page = await read(output.read, snapshot, lines, since, pattern)
        return {**page.to_dict(), "stream": stream, "process": process.info()}

    async def screen(self, pid: int | None, name: str | None) -> dict[str, Any]:
        process = self.resolve(pid, name)
        if process.run is None:
            raise NotFound(f"{process.name!r} has no run yet")
        shot = await process.run.recording.screen()
        return {
            "columns": shot.columns,
            "rows": shot.rows,
            "lines": shot.lines,
            "text": shot.text(),
            "cursor": {
                "row": shot.cursor_row,
                "column": shot.cursor_column,
                "visible": shot.cursor_visible,
            },
            "alternate_screen": shot.alternate_screen,
            "title": shot.title,
            "process": process.info(),
        }

    async def send(
        self, pid: int | None, name: str | None, text: str | None, keys: builtins.list[str] | None
    ) -> dict[str, Any]:
        if text is not None and not isinstance(text, str):
            raise InvalidInput("text must be a string")
        if keys is not None and (
            not isinstance(keys, list) or not all(isinstance(k, str) for k in keys)
        ):
            raise InvalidInput("keys must be a list of key names such as ['enter'] or ['ctrl-c']")
        if not text and not keys:
            raise InvalidInput("give text, keys, or both")
        try:
            data = (text or "").encode("utf-8") + encode_keys(keys or [])
        except ValueError as error:
            raise InvalidInput(str(error)) from None
        process = self.resolve(pid, name)
        if process.run is None or not process.run.running:
            raise PersistprocError(f"{process.name!r} is not running: input cannot be delivered")
        process.run.write(data)
        return {"bytes_sent": len(data), "process": process.info()}

    def attach(
        self, pid: int | None, name: str | None, read_only: bool, columns: int, rows: int
    ) -> tuple[ManagedProcess, AttachedTerminal]:
        process = self.resolve(pid, name)
        if process.run is None:
            raise Conflict(f"{process.name!r} has no run to attach to: restart it")
        # An ended run still shows its last output and then says how it ended: a command that
        # finished before its terminal attached (`persistproc ls`) is seen all the same.
        return process, AttachedTerminal(process.run, read_only, columns, rows)

    async def wait(
        self,
        pid: int | None,
        name: str | None,
        pattern: str,
        timeout: float = 30,
        since: int | None = None,
        stream: str = "combined",
    ) -> dict[str, Any]:
        check_stream(stream)
        timeout = check_timeout(timeout, "timeout", MAX_WAIT)
        compiled = output.compile_pattern(pattern)
        check_since(since)
        process = self.resolve(pid, name)
        if process.run is None:
            raise NotFound(f"{process.name!r} has no run yet")
        waited = await wait_for_line(process.run, compiled, timeout, since, stream)
        return {**waited.to_dict(), "process": process.info()}

    async def _ready(
        self, result: dict[str, Any], pattern: regex.Pattern[str] | None, timeout: float
    ) -> dict[str, Any]:
        if pattern is None:
            return result
        process = self._processes[result["name"]]
        assert process.run is not None
        waited = await wait_for_line(process.run, pattern, timeout, 0, "combined")
        return {
            **result,
            **process.info(),
            "ready": waited.matched,
            "matched_line": waited.line,
            "wait_result": waited.reason,
            "last_lines": last_lines(process.run, 20),
        }
