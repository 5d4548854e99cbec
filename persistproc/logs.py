"""Per-run output storage: the raw log with a ring of recent bytes, and numbered clean lines.

Plain synchronous file I/O, no framework: the run calls these from its read callback. Lines are
numbered from 1 per stream; a sparse index (one offset every INDEX_STEP lines) finds any line with
one seek and a short scan, so memory stays small however long the log grows.
"""

from __future__ import annotations

import shutil
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

INDEX_STEP = 256
RING_BYTES = 4 * 1024 * 1024


class RawLog:
    """The byte-exact log file of a run plus the most recent bytes in memory, at absolute offsets."""

    def __init__(self, path: Path, ring_bytes: int = RING_BYTES) -> None:
        self.path = path
        self._file: BinaryIO | None = open(path, "ab", buffering=256 * 1024)  # noqa: SIM115
        self._ring = bytearray()
        self._ring_start = 0  # absolute offset of _ring[0]
        self._ring_bytes = ring_bytes
        self.size = 0
        self.write_error: str | None = None

    def append(self, data: bytes) -> None:
        self.size += len(data)
        self._ring += data
        excess = len(self._ring) - self._ring_bytes
        # Trim in large steps so the cost of moving the buffer is amortised.
        if excess > self._ring_bytes // 4:
            del self._ring[:excess]
            self._ring_start += excess
        if self._file is not None:
            try:
                self._file.write(data)
            except OSError as error:
                self._fail(error)

    def _fail(self, error: OSError) -> None:
        self.write_error = f"raw log not being saved: {error.strerror or error}"
        try:
            assert self._file is not None
            self._file.close()
        except OSError:
            pass
        self._file = None

    def tail(self, max_bytes: int) -> tuple[int, bytes]:
        """Up to max_bytes of the newest output and the absolute offset where it starts."""
        start = max(len(self._ring) - max_bytes, 0)
        return self._ring_start + start, bytes(self._ring[start:])

    def since(self, offset: int) -> bytes | None:
        """Bytes from an absolute offset, or None when they already left the ring."""
        if offset < self._ring_start:
            return None
        return bytes(self._ring[offset - self._ring_start :])

    def flush(self) -> None:
        if self._file is not None:
            try:
                self._file.flush()
            except OSError as error:
                self._fail(error)

    def close(self) -> None:
        self.flush()
        if self._file is not None:
            self._file.close()
            self._file = None


class LineStore:
    """Committed clean lines of one stream, in a text file with a sparse offset index."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._index = array("q")  # byte offset of line INDEX_STEP*k
        self.count = 0
        self._size = 0
        self._writer: BinaryIO | None = None
        self.write_error: str | None = None
        if path.exists():
            self._scan_existing()

    def _scan_existing(self) -> None:
        with open(self.path, "rb") as handle:
            for line in handle:
                if not line.endswith(b"\n"):
                    break  # a torn last line from a crash: ignore it
                if self.count % INDEX_STEP == 0:
                    self._index.append(self._size)
                self.count += 1
                self._size += len(line)

    def append(self, lines: list[str]) -> None:
        """Add committed lines. One encode and one write per batch: this is on the read path."""
        if not lines:
            return
        if self._writer is None and self.write_error is None:
            try:
                self._writer = open(self.path, "ab", buffering=256 * 1024)  # noqa: SIM115
            except OSError as error:
                self.write_error = f"clean log not being saved: {error.strerror or error}"
        text = "\n".join(lines) + "\n"
        data = text.encode("utf-8", "replace")
        first = (-self.count) % INDEX_STEP  # index in `lines` of the first line to index
        if first < len(lines):
            ascii_only = len(data) == len(text)
            position, done = self._size, 0
            for boundary in range(first, len(lines), INDEX_STEP):
                position += _encoded_size(lines[done:boundary], ascii_only)
                self._index.append(position)
                done = boundary
        self.count += len(lines)
        self._size += len(data)
        if self._writer is not None:
            try:
                self._writer.write(data)
            except OSError as error:
                self.write_error = f"clean log not being saved: {error.strerror or error}"
                self._writer = None

    def copy_to(self, path: Path) -> LineStore:
        """A new store at `path` holding the same lines (a stream that so far equalled another)."""
        self.flush()
        shutil.copyfile(self.path, path) if self.path.exists() else path.touch()
        twin = LineStore.__new__(LineStore)
        twin.path, twin._index, twin.count, twin._size = (
            path,
            array("q", self._index),
            self.count,
            self._size,
        )
        twin._writer, twin.write_error = None, None
        return twin

    def flush(self) -> None:
        if self._writer is not None:
            try:
                self._writer.flush()
            except OSError as error:
                self.write_error = f"clean log not being saved: {error.strerror or error}"
                self._writer = None

    def close(self) -> None:
        self.flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def read(self, first: int, last: int) -> list[str]:
        """Lines numbered first..last inclusive (1-based), clamped to what exists."""
        first, last = max(first, 1), min(last, self.count)
        if first > last:
            return []
        self.flush()
        return list(self.iterate(first, last))

    def iterate(self, first: int = 1, last: int | None = None) -> Iterator[str]:
        """Lines first..last from the file; call flush() first (on the thread that appends)."""
        last = self.count if last is None else min(last, self.count)
        if first > last:
            return
        block = (first - 1) // INDEX_STEP
        number = block * INDEX_STEP + 1
        try:
            handle = open(self.path, "rb")  # noqa: SIM115
        except OSError:
            return
        with handle:
            handle.seek(self._index[block])
            for raw in handle:
                if number > last:
                    break
                if number >= first:
                    yield raw[:-1].decode("utf-8", "replace")
                number += 1


def _encoded_size(lines: list[str], ascii_only: bool) -> int:
    if ascii_only:
        return sum(map(len, lines)) + len(lines)
    return sum(len(line.encode("utf-8", "replace")) for line in lines) + len(lines)
