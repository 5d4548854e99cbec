"""`persistproc logs`: print a process's clean output (or its raw log file), and follow it.

Following polls the server with since=<cursor>. A cursor counts finished lines only, so an unfinished
last line (a prompt) is held back until it is finished instead of being printed twice.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from persistproc.client.api import Client, ClientError, Target
from persistproc.logs import older_segments

POLL_INTERVAL = 0.25  # seconds between polls while following: fast enough to feel live
PAGE_LINES = 10_000  # the server's maximum page while following
RAW_BLOCK = 64 * 1024


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


def _tail_offset(handle: BinaryIO, size: int, lines: int) -> int:
    """Where the last `lines` lines of the file start, reading backwards in blocks."""
    position, newlines = size, 0
    ending = True  # a newline that ends the file does not start a line
    while position > 0:
        start = max(position - RAW_BLOCK, 0)
        handle.seek(start)
        block = handle.read(position - start)
        for index in range(len(block) - 1, -1, -1):
            if block[index] != 0x0A:
                ending = False
                continue
            if ending:
                ending = False
                continue
            newlines += 1
            if newlines == lines:
                return start + index + 1
        position = start
    return 0


def print_raw(
    client: Client,
    target: Target,
    options: LogOptions,
    out: BinaryIO,
    note: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """The raw log file's bytes (escape codes and all); the client runs on the server's machine,
    so it reads the files the status names instead of sending megabytes through JSON. The file
    stays open while following: when the size cap renames it, its end is still read, then the
    new file from its start."""
    info = client.output(target, lines=1)["process"]
    path = _log_path(info)
    handle = _open(path)
    try:
        if options.lines is None:
            _copy_older(path, out, note)
        else:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(_tail_offset(handle, size, options.lines))
        while True:
            _copy(handle, out, path)
            if not _same_file(handle, path) and os.path.exists(path):
                handle.close()  # read to its end; the size cap renamed it and began a new one
                handle = _open(path)
                continue
            if not options.follow or info.get("status") != "running":
                return 0
            sleep(POLL_INTERVAL)
            info = client.output(target, lines=1)["process"]
            fresh = _log_path(info)
            if fresh != path:
                note(f"{info.get('name')} restarted (run {info.get('run')})")
                _copy(handle, out, path)
                handle.close()
                path = fresh
                handle = _open(path)
    finally:
        handle.close()


def _log_path(info: dict[str, Any]) -> str:
    path = info.get("log_path")
    if not path:
        raise ClientError(f"{info.get('name')} has no log yet")
    return str(path)


def _open(path: str) -> BinaryIO:
    try:
        return open(path, "rb")
    except OSError as error:
        raise ClientError(f"cannot read the log {path}: {error.strerror or error}") from None


def _copy(handle: BinaryIO, out: BinaryIO, path: str) -> None:
    try:
        while chunk := handle.read(RAW_BLOCK):
            out.write(chunk)
    except OSError as error:
        raise ClientError(f"cannot read the log {path}: {error.strerror or error}") from None
    out.flush()


def _same_file(handle: BinaryIO, path: str) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
    except OSError:
        return False


def _copy_older(path: str, out: BinaryIO, note: Callable[[str], None]) -> None:
    """The part of the log the size cap moved to `<path>.<offset>`, and what it dropped."""
    older = older_segments(Path(path))
    if not older:
        return
    start, file = older[-1]
    if start:
        note(f"the first {start} bytes of this log were dropped by the log size cap")
    with _open(str(file)) as handle:
        _copy(handle, out, str(file))
