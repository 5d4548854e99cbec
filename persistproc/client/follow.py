"""`persistproc logs`: print a process's clean output, and follow it (`--raw`: rawlogs.py).

Following polls the server with since=<cursor>. A cursor counts finished lines only, so an unfinished
last line (a prompt) is held back until it is finished instead of being printed twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from persistproc.client.api import Client, Target

POLL_INTERVAL = 0.25  # seconds between polls while following: fast enough to feel live
PAGE_LINES = 10_000  # the server's maximum page while following


@dataclass
class LogOptions:
    lines: int | None  # None: 100 for clean text, the whole file for --raw
    stream: str = "combined"
    grep: str | None = None
    follow: bool = False


def page_lines(page: dict[str, Any], finished_only: bool) -> list[str]:
    """The lines of an output page; finished_only drops an unfinished last line."""
    lines = str(page["text"]).split("\n") if page.get("line_count") else []
    last, cursor = page.get("last_line"), page.get("cursor", 0)
    if finished_only and lines and last is not None and last > cursor:
        # Only the last line can be past the cursor: the one still being written.
        lines.pop()
    return lines


def _running(page: dict[str, Any]) -> bool:
    return bool(page.get("process", {}).get("status") == "running")


def print_logs(
    client: Client,
    target: Target,
    options: LogOptions,
    out: TextIO,
    note: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    count = 100 if options.lines is None else options.lines
    page = client.output(target, stream=options.stream, lines=count, grep=options.grep)
    if page.get("note"):
        note(str(page["note"]))
    for line in page_lines(page, finished_only=options.follow):
        out.write(line + "\n")
    out.flush()
    if not options.follow:
        return 0
    cursor, run = int(page["cursor"]), page["process"].get("run")
    ended = not _running(page)
    while True:
        if not page.get("truncated"):
            sleep(POLL_INTERVAL)
        page = client.output(
            target, stream=options.stream, lines=PAGE_LINES, since=cursor, grep=options.grep
        )
        if page["process"].get("run") != run:
            # Restarted between two polls: the cursor belongs to the old run; read the new one
            # from its start.
            run, ended = page["process"].get("run"), False
            note(f"{page['process'].get('name')} restarted (run {run})")
            page = client.output(
                target, stream=options.stream, lines=PAGE_LINES, since=0, grep=options.grep
            )
        for line in page_lines(page, finished_only=True):
            out.write(line + "\n")
        out.flush()
        cursor = int(page["cursor"])
        # The run finishes its logs before it is marked ended, so a page asked for after an
        # earlier page saw it ended holds all of its output.
        if ended and not page.get("truncated") and not _running(page):
            return 0
        ended = not _running(page)
