"""The byte-exact log of a run, with the most recent bytes in memory, within a size cap.

Offsets are absolute: byte N of the run's output is at offset N whatever was dropped. When the
live file (`output.raw`) reaches half the cap, it is renamed `output.raw.<offset of its first
byte>` and the older such file is deleted, as the clean logs do (see logs.py).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import BinaryIO

from persistproc.logs import DEFAULT_MAX_BYTES, older_segments

RING_BYTES = 4 * 1024 * 1024
RAW_LOG = "output.raw"  # the file name in a run's directory


class RawLog:
    def __init__(
        self, path: Path, ring_bytes: int = RING_BYTES, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._file: BinaryIO | None = open(path, "ab", buffering=256 * 1024)  # noqa: SIM115
        self._ring = bytearray()
        self._ring_start = 0  # absolute offset of _ring[0]
        self._ring_bytes = ring_bytes
        self.size = 0
        self._live_start = 0  # absolute offset of the live file's first byte
        self._older: Path | None = None
        self.first = 0  # the first byte still on disk
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
            else:
                if self.size - self._live_start >= self.max_bytes // 2:
                    self._rotate()

    def _rotate(self) -> None:
        assert self._file is not None
        try:
            self._file.close()
            kept = self.path.with_name(f"{self.path.name}.{self._live_start}")
            self.path.rename(kept)
            if self._older is not None:
                self._older.unlink(missing_ok=True)
            self._file = open(self.path, "ab", buffering=256 * 1024)  # noqa: SIM115
        except OSError as error:
            self._fail(error)
            return
        self._older, self.first, self._live_start = kept, self._live_start, self.size

    def _fail(self, error: OSError) -> None:
        self.write_error = f"raw log not being saved: {error.strerror or error}"
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
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
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None


def raw_files(path: Path) -> list[Path]:
    """A run's raw log files, oldest first: the rotated-out one (if any) and the live one."""
    return [older for _, older in older_segments(path)[-1:]] + [path]


def read_tail(path: Path, size: int) -> bytes:
    """The last `size` bytes of a finished run's raw log, across its files."""
    chunks: list[bytes] = []
    for file in reversed(raw_files(path)):
        try:
            with open(file, "rb") as handle:
                end = handle.seek(0, os.SEEK_END)
                handle.seek(max(end - size, 0))
                chunks.append(handle.read())
        except OSError:
            continue
        size -= len(chunks[-1])
        if size <= 0:
            break
    return b"".join(reversed(chunks))
