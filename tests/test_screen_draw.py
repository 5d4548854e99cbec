"""The screen's own drawing of plain text leaves every cell, attribute and cursor position as
pyte's drawing does, with wrapping, scrolling, margins, modes and character sets mixed in."""

from __future__ import annotations

import pyte
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pyte.screens import Char

from persistproc import emulation
from persistproc.screen import TerminalScreen

PIECES = [
    "a",
    "word ",
    "x" * 13,
    "\r\n",
    "\n",
    "\r",
    "\b",
    "\t",
    "\x1b[31m",
    "\x1b[1;42m",
    "\x1b[0m",
    "\x1b[7m",
    "\x1b[3G",
    "\x1b[2;4H",
    "\x1b[2A",
    "\x1b[K",
    "\x1b[2;3r",
    "\x1b[r",
    "\x1b[?7l",  # autowrap off
    "\x1b[?7h",
    "\x1b[4h",  # insert mode
    "\x1b[4l",
    "\x1b[20h",  # a line feed also returns the carriage
    "\x1b[20l",
    "\x1b(0",  # line drawing
    "\x1b(B",
    "\x0e",  # shift out, shift in
    "\x0f",
    "\x1b[?1049h",
    "\x1b[?1049l",
    "é",
    "宽",
]


class PyteDrawing(emulation.Screen):
    """The screen with pyte's drawing of plain text, as before the shortcut."""

    def _draw_plain(self, data: str) -> None:
        pyte.Screen.draw(self, data)


def cells(drawn: emulation.Screen) -> tuple[list[list[Char]], tuple[int, int, Char]]:
    rows = [[drawn.buffer[y][x] for x in range(drawn.columns)] for y in range(drawn.lines)]
    return rows, (drawn.cursor.x, drawn.cursor.y, drawn.cursor.attrs)


@settings(max_examples=400, deadline=None)
@example(pieces=["word ", "\r", "\x1b[4h", "a"], columns=8, rows=2)  # insert mode
@example(pieces=["\x1b[?7l", "x" * 13, "a"], columns=8, rows=2)  # no autowrap
@example(pieces=["\x1b(0", "lqk"], columns=8, rows=2)  # line drawing
@example(pieces=["x" * 13, "x" * 13, "\x1b[2;3r", "x" * 13], columns=5, rows=4)  # scrolling
@given(
    pieces=st.lists(st.sampled_from(PIECES), max_size=40),
    columns=st.integers(3, 9),
    rows=st.integers(2, 5),
)
def test_plain_text_is_drawn_as_pyte_draws_it(pieces: list[str], columns: int, rows: int) -> None:
    ours, theirs = emulation.Screen(columns, rows), PyteDrawing(columns, rows)
    for drawn in (ours, theirs):
        stream = emulation.Stream(drawn)
        stream.use_utf8 = False
        stream.feed("".join(pieces))
    assert cells(ours) == cells(theirs)
    assert ours.dirty == theirs.dirty


def test_the_same_character_in_new_colors_gets_new_cells() -> None:
    drawn = TerminalScreen(10, 2)
    drawn.feed(b"aa\x1b[31maa\x1b[0maa")
    row = drawn._screen.buffer[0]
    assert [row[x].fg for x in range(6)] == ["default"] * 2 + ["red"] * 2 + ["default"] * 2
