"""A long stretch of plain output shows the same screen whether pyte is fed all of it or only
what can still be visible: the shortcut in TerminalScreen.feed changes nothing but the time."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from persistproc.screen import TerminalScreen

PIECES = ["word ", "\x1b[31m", "\x1b[1;42m", "\x1b[0m", "\x1b[m", "\t", "\b", "\r", "宽", "x" * 90]
# After the plain stretch: redraws, a scroll region, and what the screen's filter rewrites or drops
# (a colon SGR, a DCS string, a CSI with a prefix, an APC string left open at the end).
TAILS = [
    "",
    "\x1b[5A\x1b[2Kredrawn",
    "\x1b[2;5r\nin region",
    "\x1b]2;title\x07",
    "\x1b[38:5:1mcolon\r\n",
    "\x1bPq#0;2;0\x1b\\after",
    "\x1b[>1uprefixed",
    "\x1b_left open",
]


def in_small_chunks(data: bytes, columns: int, rows: int) -> TerminalScreen:
    """Chunks far below the size where anything is skipped: every byte reaches pyte."""
    screen = TerminalScreen(columns, rows)
    for k in range(0, len(data), 1000):
        screen.feed(data[k : k + 1000])
    return screen


def at_once(data: bytes, columns: int, rows: int) -> TerminalScreen:
    screen = TerminalScreen(columns, rows)
    screen.feed(data)
    return screen


def same(data: bytes, columns: int = 40, rows: int = 10) -> None:
    slow, fast = in_small_chunks(data, columns, rows), at_once(data, columns, rows)
    assert fast.snapshot() == slow.snapshot()
    assert fast.render_ansi() == slow.render_ansi()


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from(PIECES), max_size=6), min_size=60, max_size=200),
    st.sampled_from(TAILS),
)
def test_same_screen_as_feeding_everything(lines: list[list[str]], tail: str) -> None:
    body = "".join("".join(line) + "\r\n" for line in lines)
    body *= 20_000 // len(body) + 1  # past the size where skipping starts
    same((body + tail).encode(), columns=30, rows=6)


def test_the_shortcut_is_taken() -> None:
    screen = TerminalScreen(40, 10)
    text = "line\r\n" * 5000
    assert len(screen._skip_scrolled_off(text)) < 1000


def test_line_feeds_without_carriage_returns() -> None:
    same(("abc\n" * 3000 + "end").encode())
    same(("abc\r\n" * 3000 + "x" * 17 + "\n" * 30 + "end").encode())


def test_colors_set_before_the_cut_reach_the_kept_text() -> None:
    data = ("\x1b[0m\x1b[1m" + "plain line\r\n" * 2000 + "\x1b[33m" + "last\r\n" * 30).encode()
    same(data)


def test_a_scroll_region_keeps_its_rows() -> None:
    data = ("\x1b[1;5rtop\r\n" + "line\r\n" * 3000).encode()
    same(data, rows=10)


def test_rebuilding_from_a_big_tail_is_fast() -> None:
    data = ("\x1b[32m2026-11-21 INFO\x1b[0m request handled in 1.234 ms\r\n" * 20_000).encode()
    started = time.perf_counter()
    at_once(data, 200, 50)
    # Feeding all of it through pyte takes about a second on a small machine.
    assert time.perf_counter() - started < 0.5
