"""Per-run output storage: numbered clean lines on disk, within a size cap.

Plain synchronous file I/O, no framework: the run calls these from its read callback. Lines are
numbered from 1 per stream; a sparse index (one offset every INDEX_STEP lines) finds any line with
one seek and a short scan, so memory stays small however long the log grows.

A store over its size cap drops its oldest half at a time: the live file (`combined.log`) is renamed
to `combined.log.<number of its first line>` and a new live file begins; an older such segment is
deleted. The names carry the numbering, so a crash between two steps leaves files that still read
correctly, and readers learn exactly which lines are gone (`first`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from array import array
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

INDEX_STEP = 256
UNSAVED_LINES = 10_000  # lines kept in memory, per stream, once its log cannot be written
# The cap of one log (all its files): the live file is rotated out when it reaches half of it,
# and the previous rotated-out file is deleted then.
DEFAULT_MAX_BYTES = 2 * 1024**3


@dataclass
class _Segment:
    """One file of a store: its lines are numbered first .. first + count - 1."""

    path: Path
    first: int
    count: int = 0
    size: int = 0
    index: array[int] = field(default_factory=lambda: array("q"))  # offset of every INDEX_STEP-th

    def scan(self) -> None:
        with open(self.path, "rb") as handle:
            for line in handle:
                if not line.endswith(b"\n"):
                    break  # a torn last line from a crash: ignore it
                if self.count % INDEX_STEP == 0:
                    self.index.append(self.size)
                self.count += 1
                self.size += len(line)

    def numbered(self, first: int, last: int) -> Iterator[tuple[int, str]]:
        """Lines first..last (clamped to this segment) from the file, with their numbers."""
        first, last = max(first, self.first), min(last, self.first + self.count - 1)
        if first > last:
            return
        block = (first - self.first) // INDEX_STEP
        number = self.first + block * INDEX_STEP
        try:
            handle = open(self.path, "rb")  # noqa: SIM115
        except OSError:
            return
        with handle:
            handle.seek(self.index[block])
            for raw in handle:
                if number > last:
                    break
                if number >= first:
                    yield number, raw[:-1].decode("utf-8", "replace")
                number += 1

    def blocks(self, first: int, last: int, block_bytes: int) -> list[tuple[int, int, int, int]]:
        """(first line, last line, start byte, end byte) of index-aligned runs of whole lines
        covering first..last, each about block_bytes long (at least INDEX_STEP lines)."""
        first, last = max(first, self.first), min(last, self.first + self.count - 1)
        found: list[tuple[int, int, int, int]] = []
        if first > last:
            return found
        block = (first - self.first) // INDEX_STEP
        end_block = (last - self.first) // INDEX_STEP
        while block <= end_block:
            start = self.index[block]
            following = block + 1
            while following <= end_block and self.index[following] - start < block_bytes:
                following += 1
            end = self.index[following] if following < len(self.index) else self.size
            top = min(self.first + following * INDEX_STEP - 1, self.first + self.count - 1)
            found.append((self.first + block * INDEX_STEP, top, start, end))
            block = following
        return found


def older_segments(path: Path) -> list[tuple[int, Path]]:
    """Rotated-out files of a log (`NAME.<first line or byte offset>`), oldest first."""
    found = []
    for candidate in path.parent.glob(path.name + ".*"):
        suffix = candidate.name[len(path.name) + 1 :]
        if suffix.isascii() and suffix.isdigit():
            found.append((int(suffix), candidate))
    return sorted(found)


class LineStore:
    """Committed clean lines of one stream, in a text file with a sparse offset index."""

    def __init__(self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._writer: BinaryIO | None = None
        self.write_error: str | None = None
        self._segments = self._open_existing()
        # Once the file cannot be written: the newest lines, numbered, for readers. Pairs, so a
        # reader on another thread never matches a line with another's number.
        self._unsaved: deque[tuple[int, str]] = deque(maxlen=UNSAVED_LINES)
        # Lines handed to the writer since its last successful flush: a failing flush loses them
        # from the file, so they go to _unsaved then.
        self._unflushed: list[str] = []

    def _open_existing(self) -> list[_Segment]:
        segments: list[_Segment] = []
        older = older_segments(self.path)
        for _, stale in older[:-1]:  # a crash came between a rotation's rename and delete
            with contextlib.suppress(OSError):
                stale.unlink()
        if older:
            segments.append(_Segment(older[-1][1], older[-1][0]))
            segments[0].scan()
        live = _Segment(self.path, segments[0].first + segments[0].count if segments else 1)
        if self.path.exists():
            live.scan()
        segments.append(live)
        return segments

    @property
    def count(self) -> int:
        """The number of the last line (lines dropped by the cap included)."""
        live = self._segments[-1]
        return live.first + live.count - 1

    @property
    def first(self) -> int:
        """The first line still kept: lines before it were dropped by the size cap."""
        return self._segments[0].first

    def append(self, lines: list[str]) -> None:
        """Add committed lines. One encode and one write per batch: this is on the read path."""
        if not lines:
            return
        live = self._segments[-1]
        if self._writer is None and self.write_error is None:
            self._open_writer(live)
        text = "\n".join(lines) + "\n"
        data = text.encode("utf-8", "replace")
        first = (-live.count) % INDEX_STEP  # index in `lines` of the first line to index
        if first < len(lines):
            ascii_only = len(data) == len(text)
            position, done = live.size, 0
            for boundary in range(first, len(lines), INDEX_STEP):
                position += _encoded_size(lines[done:boundary], ascii_only)
                live.index.append(position)
                done = boundary
        live.count += len(lines)
        live.size += len(data)
        if self._writer is not None:
            self._unflushed.extend(lines)
            if len(self._unflushed) > UNSAVED_LINES:
                self.flush()  # what could be lost never exceeds what memory would keep
            try:
                self._writer.write(data)
            except OSError as error:
                self._fail(error)
        elif self.write_error is not None:
            # Not saved: the newest lines stay readable from memory while the process runs on.
            self._keep_in_memory(lines)
        if self.write_error is None and live.size >= self.max_bytes // 2:
            self._rotate()

    def _open_writer(self, live: _Segment) -> None:
        try:
            if self.path.exists() and self.path.stat().st_size != live.size:
                # a torn last line (a crash mid-write): the next line must not be glued to it
                os.truncate(self.path, live.size)
            self._writer = open(self.path, "ab", buffering=256 * 1024)  # noqa: SIM115
        except OSError as error:
            self.write_error = f"clean log not being saved: {error.strerror or error}"

    def _keep_in_memory(self, lines: list[str]) -> None:
        first = self.count - len(lines) + 1
        self._unsaved.extend(zip(range(first, self.count + 1), lines, strict=True))

    def _rotate(self) -> None:
        """The live file becomes the older segment; the previous older one is deleted."""
        live = self._segments[-1]
        self.close()
        if self.write_error is not None:
            return  # the last lines did not reach the file: it stays where it is
        try:
            kept = self.path.with_name(f"{self.path.name}.{live.first}")
            self.path.rename(kept)
            for segment in self._segments[:-1]:
                segment.path.unlink(missing_ok=True)
        except OSError as error:
            self.write_error = f"clean log not being saved: {error.strerror or error}"
            return
        live.path = kept
        self._segments = [live, _Segment(self.path, live.first + live.count)]

    def copy_to(self, path: Path) -> LineStore:
        """A new store at `path` holding the same lines (a stream that so far equalled another)."""
        self.flush()
        twin = LineStore.__new__(LineStore)
        twin.path, twin.max_bytes = path, self.max_bytes
        # A store that cannot write hands its copy the same trouble (and its lines in memory).
        twin._writer, twin.write_error = None, self.write_error
        twin._unsaved, twin._unflushed = deque(self._unsaved, UNSAVED_LINES), []
        twin._segments = []
        for segment in self._segments:
            target = (
                path
                if segment.path == self.path
                else path.with_name(f"{path.name}.{segment.first}")
            )
            shutil.copyfile(segment.path, target) if segment.path.exists() else target.touch()
            twin._segments.append(
                _Segment(
                    target, segment.first, segment.count, segment.size, array("q", segment.index)
                )
            )
        return twin

    def flush(self) -> None:
        if self._writer is not None:
            try:
                self._writer.flush()
            except OSError as error:
                self._fail(error)
            else:
                self._unflushed.clear()

    def _fail(self, error: OSError) -> None:
        self.write_error = f"clean log not being saved: {error.strerror or error}"
        if self._writer is not None:
            with contextlib.suppress(OSError):
                self._writer.close()  # may fail again on what it still holds: dropped
            self._writer = None
        self._keep_in_memory(self._unflushed)  # the newest lines the file may lack
        self._unflushed = []

    def close(self) -> None:
        self.flush()
        if self._writer is not None:
            with contextlib.suppress(OSError):
                self._writer.close()
            self._writer = None

    def read(self, first: int, last: int) -> list[str]:
        """Lines numbered first..last inclusive (1-based), clamped to what is kept."""
        self.flush()
        return [text for _, text in self.numbered(first, last)]

    def numbered(self, first: int = 1, last: int | None = None) -> Iterator[tuple[int, str]]:
        """Lines first..last with their numbers, from the files and from memory (lines a failing
        disk kept out of the file), clamped to what is kept; call flush() first (on the thread
        that appends). Other threads may read while the loop appends: a line is never given
        another's number, but lines rotated out meanwhile are missing."""
        last = self.count if last is None else min(last, self.count)
        unsaved = tuple(self._unsaved)
        on_disk = min(last, unsaved[0][0] - 1) if unsaved else last
        from_disk = first
        for segment in tuple(self._segments):  # a rotation on another thread swaps the list
            yield from segment.numbered(from_disk, on_disk)
            from_disk = max(from_disk, segment.first + segment.count)
        yield from (pair for pair in unsaved if first <= pair[0] <= last)


def text_blocks(
    store: LineStore, first: int, last: int, backwards: bool, block_bytes: int = 1 << 20
) -> Iterator[tuple[int, str]]:
    """Lines first..last as blocks of text (lines joined by newlines) with the number of each
    block's first line, newest block first when backwards: one read and one decode per block,
    for scans that look at many lines (grep). Call store.flush() first."""
    last = min(last, store.count)
    held = tuple(store._unsaved)
    unsaved = [pair for pair in held if first <= pair[0] <= last]
    in_memory: tuple[int, str] | None = None
    if unsaved:
        # consecutive numbers: the memory holds the newest lines without a hole
        in_memory = (unsaved[0][0], "\n".join(text for _, text in unsaved))
    if held:
        last = min(last, held[0][0] - 1)
    if backwards and in_memory:
        yield in_memory
    segments = tuple(store._segments)  # a rotation on another thread swaps the list
    for segment in reversed(segments) if backwards else segments:
        blocks = segment.blocks(first, last, block_bytes)
        if not blocks:
            continue
        try:
            handle = open(segment.path, "rb")  # noqa: SIM115
        except OSError:
            continue
        with handle:
            for top, bottom, start, end in reversed(blocks) if backwards else blocks:
                handle.seek(start)
                text = handle.read(end - start).decode("utf-8", "replace")
                lines_read = text.count("\n")
                text = text[:-1] if text.endswith("\n") else text
                if top < first or bottom > last or lines_read != bottom - top + 1:
                    # a partial block at either end (or a file shorter than its index): cut it
                    kept = text.split("\n")[max(first - top, 0) : last - top + 1]
                    if not kept:
                        continue
                    top, text = max(top, first), "\n".join(kept)
                yield top, text
    if not backwards and in_memory:
        yield in_memory


def _encoded_size(lines: list[str], ascii_only: bool) -> int:
    if ascii_only:
        return sum(map(len, lines)) + len(lines)
    return sum(len(line.encode("utf-8", "replace")) for line in lines) + len(lines)
