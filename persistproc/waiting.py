"""Waiting for a line: the loop behind wait_for_output and start_process's wait_for."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import regex

from persistproc import output
from persistproc.run import Run

T = TypeVar("T")
# Pattern scans (grep, wait-for) run on threads of their own: a slow pattern keeps its thread busy
# up to its time budget, and a burst of them must not make stops, status and plain reads (the
# default pool) queue behind it. Scans wait only for each other.
_PATTERN_SCANS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="pattern-scan")


async def scan(function: Callable[..., T], *args: Any) -> T:
    """Run a pattern scan off the event loop, on the pattern scans' own threads."""
    return await asyncio.get_running_loop().run_in_executor(_PATTERN_SCANS, function, *args)


@dataclass
class WaitResult:
    matched: bool
    line: str | None
    line_number: int | None
    cursor: int
    reason: str  # matched, timeout, exited

    def to_dict(self) -> dict[str, Any]:
        return {
            "matched": self.matched,
            "line": self.line,
            "line_number": self.line_number,
            "cursor": self.cursor,
            "reason": self.reason,
        }


async def wait_for_line(
    run: Run, pattern: regex.Pattern[str], timeout: float, since: int | None, stream: str
) -> WaitResult:
    """Wait until a line after `since` (default: what is new now) matches, the run ends, or timeout.

    The unfinished last line counts, so a prompt already on screen matches at once."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    # A slow pattern cannot outlast the timeout, but even timeout=0 gets one look at what is there.
    scan_deadline = time.monotonic() + max(timeout, 1.0)
    start = run.recording.snapshot(stream)
    seen: dict[int, str] = {}
    if since is None:
        # "New" output: finished lines now in the window count only once a redraw changes them.
        after = start.committed
        seen = dict(start.lines(start.committed + 1, start.finished_total))
    else:
        after = since
    while True:
        ended = not run.running  # read before the snapshot, so output up to the end is seen
        generation = run.generation
        snapshot = run.recording.snapshot(stream)
        found = await scan(output.find, snapshot, pattern, after, scan_deadline, seen)
        if found is not None:
            number, line = found
            # an unfinished line (a prompt) is not counted: it is shown again once finished
            cursor = max(min(number, snapshot.finished_total), after)
            return WaitResult(True, line, number, cursor, "matched")
        # Lines still in the window may be redrawn (progress, status blocks): look at them again.
        after = max(after, snapshot.committed)
        remaining = deadline - loop.time()
        if ended or remaining <= 0:
            cursor = max(after, snapshot.finished_total if since is None else after)
            return WaitResult(False, None, None, cursor, "exited" if ended else "timeout")
        await run.wait_changed(generation, remaining)


def last_lines(run: Run, count: int) -> list[str]:
    snapshot = run.recording.snapshot("combined")
    lines = snapshot.lines(snapshot.total - count + 1, snapshot.total)
    return output.clip([text for _, text in lines])
