"""grep by blocks finds exactly what a line-by-line search finds, in both directions, across
rotated files and the pending window; so does the scan behind wait_for_output."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from persistproc import grep, output
from persistproc.logs import LineStore
from persistproc.output import Snapshot

PATTERNS = [
    "ab",
    "^ab",
    "b$",
    "^$",
    r"\Aa",
    r"b\Z",
    r"(?<=a)b",
    r"(?<!a)b",
    r"\bba",
    "a.b",
    "[^a]b",
    r"(?i)AB",
    r"a\s*b",
    "a[^x]*b",
    r"a(?!\s)",
    "(?m)b$",
    r"a[^x]*\Kb",
    "(?r)ab",
    "é",
    r"b\s*+$",  # possessive and atomic: over a block they would swallow the line end
    r"(?>b\s*)$",
    r"a{1,2}+b",
]
WORDS = st.text(alphabet="ab \té", max_size=8)


@contextmanager
def stored(lines: list[str], pending: int = 0, cap: int = 2 << 30) -> Iterator[Snapshot]:
    """A snapshot of a stream: all but the last `pending` lines committed to a store (appended
    100 at a time, so a small cap rotates it), those last ones still in the window."""
    committed = len(lines) - pending
    with tempfile.TemporaryDirectory() as directory:
        store = LineStore(Path(directory) / "c.log", max_bytes=cap)
        for at in range(0, committed, 100):
            store.append(lines[at : min(at + 100, committed)])
        store.flush()
        try:
            yield Snapshot(store, committed, lines[committed:], False, store.first)
        finally:
            store.close()


def _naive(lines: list[str], pattern: str, count: int, since: int | None, first: int) -> list[int]:
    """Line by line, lines before `first` (dropped by the cap) never match."""
    compiled = regex.compile(pattern)
    numbered = [(n, t) for n, t in enumerate(lines, start=1) if n >= first and compiled.search(t)]
    if since is None:
        return [n for n, _ in numbered][-count:]
    return [n for n, _ in numbered if n > since][:count]


@settings(max_examples=400, deadline=None)
@given(
    lines=st.lists(WORDS, min_size=0, max_size=1200),
    pending=st.integers(0, 70),
    pattern=st.sampled_from(PATTERNS),
    count=st.integers(1, 40),
    since=st.none() | st.integers(0, 1300),
    block_bytes=st.sampled_from([1, 300, 1 << 20]),
    cap=st.sampled_from([600, 2 << 30]),
)
def test_blocks_find_what_lines_find(
    lines: list[str],
    pending: int,
    pattern: str,
    count: int,
    since: int | None,
    block_bytes: int,
    cap: int,
) -> None:
    with stored(lines, min(pending, len(lines)), cap) as snapshot:
        found, _ = grep.grep(snapshot, regex.compile(pattern), count, since, block_bytes)
    expected = _naive(lines, pattern, count, since, snapshot.first)
    assert [n for n, _ in found] == expected
    assert all(text == lines[n - 1] for n, text in found)


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(WORDS, min_size=0, max_size=600),
    pending=st.integers(0, 70),
    pattern=st.sampled_from(PATTERNS),
    after=st.integers(0, 650),
    seen_every=st.integers(0, 3),
)
def test_waiting_finds_the_first_new_line_a_line_by_line_search_finds(
    lines: list[str], pending: int, pattern: str, after: int, seen_every: int
) -> None:
    """wait_for_output's scan (output.find) goes by blocks too, and skips lines it has seen."""
    seen = {n: t for n, t in enumerate(lines, start=1) if seen_every and n % seen_every == 0}
    compiled = regex.compile(pattern)
    expected = next(
        (
            (n, t)
            for n, t in enumerate(lines, start=1)
            if n > after and seen.get(n) != t and compiled.search(t)
        ),
        None,
    )
    with stored(lines, min(pending, len(lines))) as snapshot:
        found = output.find(snapshot, compiled, after, time.monotonic() + 60, seen)
    assert found == expected


def test_waiting_stops_at_its_deadline_even_inside_a_slow_block_search() -> None:
    lines = ["a" * 28 + "!"] * 3000
    pattern = regex.compile(r"(a|aa)+$")  # catastrophic on every line
    with stored(lines) as snapshot:
        started = time.monotonic()
        assert output.find(snapshot, pattern, 0, started + 0.2, {}) is None
    # a block search used to take its own 1 s budget whatever the deadline
    assert time.monotonic() - started < 0.9
