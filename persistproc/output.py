"""Reading a stream's clean lines: the tail, what is new since a cursor, grep, and wait-for matching.

A stream is its committed lines (a LineStore) plus the line machine's pending window, which may still
change. Lines are numbered from 1. A cursor is the number of the last *finished* line a reader has
seen: an unfinished last line (a prompt with no newline yet) is shown but not counted, so it is shown
again once it is finished.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import regex

from persistproc.cleantext import LineMachine
from persistproc.errors import InvalidInput
from persistproc.grep import DeadlinePassed, candidates, grep, search
from persistproc.logs import LineStore

MAX_LINES = 10_000
MAX_TEXT_BYTES = 128 * 1024  # results carry the text twice (text and structured content)


class StreamView:
    """One stream of one run: committed lines on disk plus the live window of its line machine."""

    def __init__(self, store: LineStore, machine: LineMachine | None) -> None:
        self.store = store
        self.machine = machine

    def feed(self, data: bytes) -> None:
        if self.machine is not None:
            lines = self.machine.feed(data)
            if lines:
                self.store.append(lines)

    def finish(self) -> None:
        if self.machine is not None:
            self.store.append(self.machine.finish())
            self.machine = None
        self.store.close()

    def snapshot(self) -> Snapshot:
        """Taken on the thread that feeds: a consistent picture of line counts and the window."""
        self.store.flush()
        if self.machine is None:
            return Snapshot(self.store, self.store.count, [], False, self.store.first)
        pending = self.machine.pending()
        return Snapshot(
            self.store, self.store.count, pending, self.machine.unfinished, self.store.first
        )


@dataclass
class Snapshot:
    store: LineStore
    committed: int
    pending: list[str]
    unfinished: bool
    first: int = 1  # the first line kept: earlier ones were dropped by the log size cap

    @property
    def total(self) -> int:
        return self.committed + len(self.pending)

    @property
    def finished_total(self) -> int:
        return self.total - (1 if self.unfinished and self.pending else 0)

    def lines(self, first: int, last: int) -> list[tuple[int, str]]:
        return list(self.iterate(first, last))

    def iterate(self, first: int, last: int) -> Iterator[tuple[int, str]]:
        """Lines first..last with their numbers, read as they are consumed."""
        first, last = max(first, 1), min(last, self.total)
        if first <= min(last, self.committed):
            yield from self.store.numbered(first, min(last, self.committed))
        for number in range(max(first, self.committed + 1), last + 1):
            yield number, self.pending[number - self.committed - 1]


@dataclass
class Page:
    lines: list[tuple[int, str]] = field(default_factory=list)
    cursor: int = 0
    truncated: bool = False
    total_lines: int = 0
    first_kept: int = 1
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "text": "\n".join(text for _, text in self.lines),
            "line_count": len(self.lines),
            "first_line": self.lines[0][0] if self.lines else None,
            "last_line": self.lines[-1][0] if self.lines else None,
            "cursor": self.cursor,
            "total_lines": self.total_lines,
            "truncated": self.truncated,
            "first_available_line": self.first_kept,
        }
        if self.note:
            result["note"] = self.note
        return result


def compile_pattern(pattern: str, what: str = "pattern") -> regex.Pattern[str]:
    if not isinstance(pattern, str) or not pattern:
        raise InvalidInput(f"{what} must be a non-empty regular expression")
    if len(pattern) > 2000:
        raise InvalidInput(f"{what} is too long ({len(pattern)} characters, at most 2000)")
    try:
        return regex.compile(pattern)
    except (regex.error, ValueError, OverflowError) as error:
        raise InvalidInput(f"invalid {what} {pattern!r}: {error}") from None


def check_lines(lines: int) -> int:
    if isinstance(lines, bool) or not isinstance(lines, int) or not 1 <= lines <= MAX_LINES:
        raise InvalidInput(f"lines must be a whole number from 1 to {MAX_LINES}, got {lines!r}")
    return lines


def _cap(lines: list[tuple[int, str]], keep_newest: bool) -> tuple[list[tuple[int, str]], bool]:
    """Cut a page to MAX_TEXT_BYTES, keeping the newest (tail) or the oldest (since) lines."""
    size, kept = 0, 0
    ordered = reversed(lines) if keep_newest else iter(lines)
    for _, text in ordered:
        size += len(text) + 1
        if size > MAX_TEXT_BYTES and kept:
            break
        kept += 1
    if kept == len(lines):
        return lines, False
    return (lines[-kept:] if keep_newest else lines[:kept]), True


WINDOW = 64  # the line machine's editable window: how far a redraw can move the line count back


def read(
    snapshot: Snapshot, lines: int, since: int | None, pattern: regex.Pattern[str] | None
) -> Page:
    """The page a reader asked for. May read the whole log for grep: call it off the event loop."""
    note = None
    if since is not None and since > snapshot.committed + WINDOW + 1:
        note = (
            f"since={since} is past the end of this run's output ({snapshot.finished_total} lines,"
            " the process may have been restarted): showing from the start"
        )
        since = 0
    elif since is not None:
        # A redraw can shorten the window below a cursor handed out earlier: not a restart.
        since = min(since, snapshot.finished_total)
    wanted_first = since + 1 if since is not None else max(snapshot.total - lines + 1, 1)
    if pattern is not None and since is None:
        wanted_first = 1  # grep without a cursor searches the whole log
    gap = wanted_first < snapshot.first
    if gap:
        dropped = (
            f"lines {wanted_first} to {snapshot.first - 1} were dropped by the log size cap;"
            f" the first line kept is {snapshot.first}"
        )
        note = f"{note}; {dropped}" if note else dropped
        if since is not None:
            since = snapshot.first - 1
    if pattern is None:
        first = since + 1 if since is not None else snapshot.total - lines + 1
        last = snapshot.total if since is None else min(snapshot.total, since + lines)
        page = snapshot.lines(first, last)
        scanned = last
    else:
        page, scanned = grep(snapshot, pattern, lines, since)
    page, cut = _cap(page, keep_newest=since is None)
    if since is None:
        cursor = snapshot.finished_total
    else:
        # Past every line looked at (matching or not), never past a line that is unfinished.
        cursor = page[-1][0] if cut else scanned
        cursor = max(min(cursor, snapshot.finished_total), since)
    return Page(
        lines=page,
        cursor=cursor,
        truncated=cut or gap or (since is not None and scanned < snapshot.total),
        total_lines=snapshot.total,
        first_kept=snapshot.first,
        note=note,
    )


def find(
    snapshot: Snapshot,
    pattern: regex.Pattern[str],
    after: int,
    deadline: float,
    seen: dict[int, str] | None = None,
) -> tuple[int, str] | None:
    """The first line after line `after` that matches, unfinished last line included, skipping
    lines that still read as they did in `seen`; None when nothing matches or the monotonic
    `deadline` passes first."""
    seen = seen or {}
    try:
        for number, text in candidates(snapshot, pattern, after + 1, False, deadline):
            if seen.get(number) != text and search(pattern, text):
                return number, text
    except DeadlinePassed:
        pass
    return None


def clip(lines: list[str], line_chars: int = 4096, total_chars: int = 32 * 1024) -> list[str]:
    """The newest lines, each cut to line_chars, within total_chars: for summaries in results."""
    kept: list[str] = []
    size = 0
    for text in reversed(lines):
        short = text if len(text) <= line_chars else text[:line_chars] + "…"
        size += len(short) + 1
        if size > total_chars and kept:
            break
        kept.append(short)
    return kept[::-1]
