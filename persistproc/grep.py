"""grep over a stream's lines, fast on logs of any size and bounded in time.

Lines are read as blocks of text (about 1 MiB, one read and one decode each) and the pattern is
searched in the whole block with `^`/`$` matching at line ends; only the lines where it finds a
match are then searched on their own. A pattern that could match a line but not the block holding
it (`\\A`, `\\Z`, `\\K`, lookbehinds, negative lookaheads, turned-off flags, reverse searching)
is searched line by line.
Without a cursor the scan goes from the newest line backwards and stops once it has enough
matches, so a grep for something recent does not read the whole log.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from itertools import chain
from typing import Protocol

import regex

from persistproc.errors import InvalidInput
from persistproc.logs import LineStore, text_blocks

GREP_BUDGET = 10.0  # seconds a whole grep may take before it stops with an error
BLOCK_BYTES = 1 << 20  # how much text one block search covers
BLOCK_TIMEOUT = 1.0  # seconds one block search may take; past it the block is read line by line
# seconds one line may take: a catastrophic pattern cannot hang the server
REGEX_LINE_TIMEOUT = 0.05
# Possessive quantifiers and atomic groups too: over a block they may swallow a line end and
# not give it back, so a `$` after them fails where the line alone would match.
_LINE_ONLY = ("\\A", "\\Z", "\\z", "\\G", "\\K", "(?<", "(?!", "(?-", "(?>", "*+", "++", "?+", "}+")


class Lines(Protocol):
    """A stream's lines as a reader sees them at one moment (output.Snapshot)."""

    store: LineStore
    committed: int
    pending: list[str]
    first: int

    @property
    def total(self) -> int: ...


class DeadlinePassed(Exception):
    """A scan stopped at its deadline, at this line."""

    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


def search(pattern: regex.Pattern[str], text: str) -> bool:
    try:
        return pattern.search(text, timeout=REGEX_LINE_TIMEOUT) is not None
    except TimeoutError:
        return False


def grep(
    snapshot: Lines,
    pattern: regex.Pattern[str],
    lines: int,
    since: int | None,
    block_bytes: int = BLOCK_BYTES,
) -> tuple[list[tuple[int, str]], int]:
    """Matching lines (the first `lines` after since, or the last `lines` overall) and the
    number of the last line looked at."""
    deadline = time.monotonic() + GREP_BUDGET
    matches: list[tuple[int, str]] = []
    backwards = since is None
    first = (since or 0) + 1
    try:
        for number, text in candidates(snapshot, pattern, first, backwards, deadline, block_bytes):
            if search(pattern, text):
                matches.append((number, text))
                if len(matches) >= lines:
                    break
        else:
            return (matches[::-1] if backwards else matches), snapshot.total
    except DeadlinePassed as stopped:
        raise InvalidInput(
            f"grep took longer than {GREP_BUDGET:.0f} s and was stopped at line {stopped.line}:"
            " use a simpler pattern or pass since= to search a smaller range"
        ) from None
    return (matches[::-1], snapshot.total) if backwards else (matches, matches[-1][0])


def candidates(
    snapshot: Lines,
    pattern: regex.Pattern[str],
    first: int,
    backwards: bool,
    deadline: float,
    block_bytes: int = BLOCK_BYTES,
) -> Iterator[tuple[int, str]]:
    """The lines from `first` on that may match, in scan order: every line of each block where
    the pattern finds something when searched over the whole block (every line of every block
    for patterns that cannot be). Raises DeadlinePassed once the monotonic deadline passes, checked
    after each line the caller has looked at and after each block."""
    first = max(first, snapshot.first)
    block_pattern = _block_pattern(pattern)
    committed = text_blocks(snapshot.store, first, snapshot.committed, backwards, block_bytes)
    pending_from = max(first, snapshot.committed + 1)
    pending = (
        [(pending_from, "\n".join(snapshot.pending[pending_from - snapshot.committed - 1 :]))]
        if pending_from <= snapshot.total
        else []
    )
    blocks: Iterator[tuple[int, str]] = (
        chain(pending, committed) if backwards else chain(committed, pending)
    )
    for top, text in blocks:
        found = (
            _lines_of(text, top)
            if block_pattern is None
            else _lines_matched(block_pattern, text, top, deadline)
        )
        for number, line in reversed(list(found)) if backwards else found:
            yield number, line
            if time.monotonic() > deadline:
                raise DeadlinePassed(number)
        if time.monotonic() > deadline:
            raise DeadlinePassed(top)


def _lines_of(text: str, top: int) -> Iterator[tuple[int, str]]:
    return enumerate(text.split("\n"), start=top)


def _lines_matched(
    block_pattern: regex.Pattern[str], text: str, top: int, deadline: float
) -> Iterator[tuple[int, str]]:
    """The lines of a block where the block pattern finds a match: each search restarts at the
    line after the last one found (a match may run over several lines and hide the next)."""
    position, number, counted = 0, top, 0
    while position <= len(text):
        try:
            # a block search never runs far past the caller's deadline (wait_for_output's)
            left = max(deadline - time.monotonic(), REGEX_LINE_TIMEOUT)
            match = block_pattern.search(text, position, timeout=min(BLOCK_TIMEOUT, left))
        except TimeoutError:
            # cannot tell in time: the rest of the block line by line, each with its own limit
            number += text.count("\n", counted, position)
            yield from _lines_of(text[position:], number)
            return
        if match is None:
            return
        start = text.rfind("\n", 0, match.start()) + 1
        end = text.find("\n", match.start())
        end = len(text) if end < 0 else end
        number += text.count("\n", counted, start)
        counted = start
        yield number, text[start:end]
        position = end + 1
        if time.monotonic() > deadline:
            raise DeadlinePassed(number)


def _block_pattern(pattern: regex.Pattern[str]) -> regex.Pattern[str] | None:
    if any(token in pattern.pattern for token in _LINE_ONLY) or pattern.flags & regex.REVERSE:
        return None  # a block match would not start on the line that matches, or would skip it
    return regex.compile(pattern.pattern, pattern.flags | regex.MULTILINE)
