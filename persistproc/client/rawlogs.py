"""`persistproc logs --raw`: the raw log's bytes, escape codes and all, followed across rotations.

The client runs on the server's machine, so it reads the files the status names instead of sending
megabytes through JSON. Past the size cap the server renames the live file `output.raw.<offset of
its first byte>` and deletes the older one; the reader keeps the absolute offset of what it has
printed, so after any number of renames it goes on with the file that holds the next byte, and
says how many bytes were dropped when that file is already gone.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from persistproc.client.api import Client, ClientError, Target
from persistproc.client.follow import LogOptions
from persistproc.logs import older_segments

POLL_INTERVAL = 0.25  # seconds between polls while following
BLOCK = 64 * 1024


class _RawReader:
    """The run's raw log files in order, by absolute offset."""

    def __init__(self, path: str, note: Callable[[str], None]) -> None:
        self.path, self.note = path, note
        self.handle = _open(path)
        self.start = self._live_start()  # absolute offset of the open file's first byte

    def _live_start(self) -> int:
        older = older_segments(Path(self.path))
        if not older:
            return 0
        start, file = older[-1]
        if _same_file(self.handle, file):  # renamed between our open and this look
            return start
        return start + _size(file)

    def copy_older(self, out: BinaryIO) -> None:
        """Everything before the open file that is still kept."""
        kept = [(s, f) for s, f in older_segments(Path(self.path)) if s < self.start]
        if not kept:
            if self.start:
                self.note(f"the first {self.start} bytes of this log were dropped by the size cap")
            return
        start, file = kept[-1]
        if start:
            self.note(f"the first {start} bytes of this log were dropped by the log size cap")
        with _open(str(file)) as handle:
            _copy(handle, out, str(file))

    def copy(self, out: BinaryIO) -> None:
        """Up to the newest byte, across the files renamed since the last call."""
        while True:
            _copy(self.handle, out, self.path)
            if _same_file(self.handle, self.path) or not os.path.exists(self.path):
                return
            self._advance(self.start + self.handle.tell())

    def _advance(self, position: int) -> None:
        """Go on with the file holding byte `position` (or the next kept one)."""
        later = [(s, f) for s, f in older_segments(Path(self.path)) if s >= position]
        self.handle.close()
        if later:
            start, file = later[0]
            self.handle, self.start = _open(str(file)), start
        else:
            self.handle = _open(self.path)
            self.start = self._live_start()
            start = self.start
        if start > position:
            self.note(f"{start - position} bytes were dropped by the log size cap while following")

    def close(self) -> None:
        self.handle.close()


def print_raw(
    client: Client,
    target: Target,
    options: LogOptions,
    out: BinaryIO,
    note: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """The whole raw log (no --lines) or its last lines, then new bytes while following."""
    lines, follow = options.lines, options.follow
    info = client.output(target, lines=1)["process"]
    reader = _RawReader(_log_path(info), note)
    try:
        if lines is None:
            reader.copy_older(out)
        else:
            size = os.fstat(reader.handle.fileno()).st_size
            reader.handle.seek(_tail_offset(reader.handle, size, lines))
        while True:
            reader.copy(out)
            if not follow or info.get("status") != "running":
                return 0
            sleep(POLL_INTERVAL)
            info = client.output(target, lines=1)["process"]
            fresh = _log_path(info)
            if fresh != reader.path:
                note(f"{info.get('name')} restarted (run {info.get('run')})")
                reader.copy(out)
                reader.close()
                reader = _RawReader(fresh, note)
                reader.copy_older(out)
    finally:
        reader.close()


def _tail_offset(handle: BinaryIO, size: int, lines: int) -> int:
    """Where the last `lines` lines of the file start, reading backwards in blocks."""
    position, newlines = size, 0
    ending = True  # a newline that ends the file does not start a line
    while position > 0:
        start = max(position - BLOCK, 0)
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
        while chunk := handle.read(BLOCK):
            out.write(chunk)
    except OSError as error:
        raise ClientError(f"cannot read the log {path}: {error.strerror or error}") from None
    out.flush()


def _same_file(handle: BinaryIO, path: str | Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
    except OSError:
        return False


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
