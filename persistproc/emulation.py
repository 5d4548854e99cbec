"""pyte's screen and stream with what pyte 0.8.2 lacks or gets wrong for modern programs: the
alternate screen, characters that make it drop the rest of a text run, handlers that raise on
unexpected parameters, a G1 character set that turns text into box drawing, resizing that drops the
cursor's rows; and plain text drawn a row at a time instead of a character at a time.
"""

from __future__ import annotations

import copy
import unicodedata
from collections import defaultdict
from contextlib import suppress
from functools import lru_cache
from typing import Any

import pyte
from pyte import charsets
from pyte import modes as mo
from pyte.screens import Char, Cursor, StaticDefaultDict, wcwidth

from persistproc.repaint import Buffer

__all__ = ["Screen", "Stream"]

_ALT_SCREEN_MODES = (1049, 1047, 47)


@lru_cache(maxsize=4096)
def _zero_width_kind(char: str) -> int:
    """0: pyte handles it; 1: drop it; 2: a mark pyte would not combine, attach it ourselves."""
    if wcwidth(char) > 0 or unicodedata.combining(char):
        return 0
    if unicodedata.category(char)[0] == "M" and not 0xFE00 <= ord(char) <= 0xFE0F:
        return 2
    return 1


def _tolerant(handler: Any) -> Any:
    def call(*args: Any, **kwargs: Any) -> None:
        # pyte handlers reject private variants and surplus parameters (``CSI ? r``,
        # ``CSI 1;2;3 H``) and some trip over out-of-range ones (``CSI 5 K``); a terminal ignores
        # such sequences, so do the same instead of aborting the rest of the feed.
        with suppress(Exception):
            handler(*args, **kwargs)

    return call


class Stream(pyte.Stream):
    csi = {final: "_csi_" + name for final, name in pyte.Stream.csi.items()}  # noqa: RUF012


class _Cells(dict[str, Char]):
    """The cells of one set of attributes, made once per character: cells are immutable."""

    def __init__(self, attrs: Char) -> None:
        super().__init__()
        self.attrs = attrs

    def __missing__(self, char: str) -> Char:
        cell = self[char] = self.attrs._replace(data=char)
        return cell


class Screen(pyte.Screen):
    def __init__(self, columns: int, lines: int) -> None:
        self.saved_main: tuple[Buffer, Cursor] | None = None  # while the alt screen is on
        self._cells: dict[Char, _Cells] = {}  # by the cursor's attributes, for _draw_plain
        super().__init__(columns, lines)
        for name in set(pyte.Stream.csi.values()):
            setattr(self, "_csi_" + name, _tolerant(getattr(self, name)))

    def reset(self) -> None:
        super().reset()
        self.saved_main = None
        # pyte defaults G1 to line drawing (Linux console); xterm defaults it to ASCII, so a stray
        # SO byte must not turn text into box characters.
        self.g1_charset = self.g0_charset

    def set_mode(self, *modes: int, **kwargs: Any) -> None:
        if kwargs.get("private"):
            # xterm ignores 132-column switching by default (pyte would resize and clear).
            modes = tuple(mode for mode in modes if mode != 3)
            if 1048 in modes:
                self.save_cursor()
            for mode in modes:
                if mode in _ALT_SCREEN_MODES and self.saved_main is None:
                    cursor = copy.copy(self.cursor)
                    self.saved_main = (self.buffer, cursor)
                    self.buffer = defaultdict(lambda: StaticDefaultDict(self.default_char))
                    self.dirty.update(range(self.lines))
        super().set_mode(*modes, **kwargs)

    def reset_mode(self, *modes: int, **kwargs: Any) -> None:
        if kwargs.get("private"):
            modes = tuple(mode for mode in modes if mode != 3)
            if 1048 in modes:
                self.restore_cursor()
            for mode in modes:
                if mode in _ALT_SCREEN_MODES and self.saved_main is not None:
                    self.buffer, cursor = self.saved_main
                    self.saved_main = None
                    if mode == 1049:
                        cursor.hidden = self.cursor.hidden  # visibility is not part of DECSC
                        self.cursor = cursor
                    self.dirty.update(range(self.lines))
        super().reset_mode(*modes, **kwargs)

    def draw(self, data: str) -> None:
        if data.isascii() and data.isprintable():
            charset = self.g1_charset if self.charset else self.g0_charset
            if charset is charsets.LAT1_MAP and mo.DECAWM in self.mode and mo.IRM not in self.mode:
                self._draw_plain(data)
            else:
                super().draw(data)
            return
        # pyte abandons a whole run at the first zero-width character it cannot combine (ZWJ,
        # variation selectors, controls, many spacing marks), so split the run around them.
        start = 0
        for index, char in enumerate(data):
            kind = _zero_width_kind(char)
            if kind:
                if index > start:
                    super().draw(data[start:index])
                if kind == 2:
                    self._attach(char)
                start = index + 1
        if start < len(data):
            super().draw(data[start:] if start else data)

    def _draw_plain(self, data: str) -> None:
        """pyte's draw for one-column characters with autowrap on and insert mode off (nearly all
        text a program prints), a row at a time: one cell per distinct character, and no
        per-character steps (pyte spends about 1.5 µs on each)."""
        cursor, columns = self.cursor, self.columns
        cells = self._cells.get(cursor.attrs)
        if cells is None:
            if len(self._cells) >= 64:
                self._cells.clear()
            cells = self._cells[cursor.attrs] = _Cells(cursor.attrs)
        start = 0
        while start < len(data):
            if cursor.x >= columns:
                self.dirty.add(cursor.y)
                self.carriage_return()
                self.linefeed()
            x = cursor.x
            piece = data[start : start + columns - x]
            row = zip(range(x, x + len(piece)), map(cells.__getitem__, piece), strict=True)
            self.buffer[cursor.y].update(row)
            cursor.x = x + len(piece)
            start += len(piece)
        self.dirty.add(cursor.y)

    def _attach(self, mark: str) -> None:
        x, y = self.cursor.x - 1, self.cursor.y
        if x < 0:
            if y == 0:
                return
            x, y = self.columns - 1, y - 1
        row = self.buffer[y]
        if not row[x].data and x > 0:
            x -= 1  # the right half of a wide character: the mark belongs to its left half
        row[x] = row[x]._replace(data=row[x].data + mark)

    def resize(self, lines: int | None = None, columns: int | None = None) -> None:
        # pyte always drops rows from the top; terminals keep the cursor row and drop only what
        # no longer fits, which matters when a shell prompt sits near the top.
        lines, columns = lines or self.lines, columns or self.columns
        if (lines, columns) == (self.lines, self.columns):
            return
        _fit(self.buffer, self.cursor, lines, columns)
        if self.saved_main is not None:
            _fit(self.saved_main[0], self.saved_main[1], lines, columns)
        self.tabstops = {stop for stop in self.tabstops if stop < columns}
        self.tabstops.update(range((self.columns + 7) // 8 * 8, columns, 8))
        self.lines, self.columns = lines, columns
        self.dirty.update(range(lines))
        self.set_margins()


def _fit(buffer: Buffer, cursor: Cursor, lines: int, columns: int) -> None:
    shift = max(0, cursor.y - (lines - 1))
    rows = {y - shift: row for y, row in buffer.items() if 0 <= y - shift < lines}
    for row in rows.values():
        for x in [x for x in row if x >= columns]:
            del row[x]
    buffer.clear()
    buffer.update(rows)
    cursor.y -= shift
    cursor.x = min(cursor.x, columns)
