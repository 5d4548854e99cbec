"""A terminal screen model: feed it a program's raw output, ask what the terminal shows now.

pyte does the VT parsing. This module covers what pyte 0.8.2 lacks or gets wrong for modern
programs: the alternate screen, sequences it would print as literal text (colon SGR, DCS/APC
strings, CSI with intermediates), characters that make it drop the rest of a text run, handlers that
raise on unexpected parameters. repaint.py turns a screen back into bytes for a terminal that
attaches later.
"""

from __future__ import annotations

import codecs
import copy
import re
import unicodedata
from collections import defaultdict
from contextlib import suppress
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import pyte
from pyte import charsets
from pyte import modes as mo
from pyte.screens import Char, Cursor, StaticDefaultDict, wcwidth

from persistproc.repaint import (
    DECTCEM,
    Buffer,
    Row,
    paint_cells,
    render_ansi,
)

__all__ = ["ScreenSnapshot", "TerminalScreen"]

_ALT_SCREEN_MODES = (1049, 1047, 47)

_FILTER = re.compile(
    # SGR with colon sub-parameters: rewritten into the semicolon form pyte understands.
    r"\x1b\[(?P<sgr>[0-9;]*:[0-9:;]*)m"
    # Other CSI that pyte would misparse into stray text: colons, <=> prefixes, intermediates.
    r"|\x1b\[(?=[0-9;?]*[:<=>\x20-\x2f])[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]"
    # DCS, SOS, PM and APC strings, up to ST or the end of the chunk.
    r"|(?P<string>\x1b[P_^X](?:[^\x1b]+|\x1b(?!\\))*(?:\x1b\\|\Z))"
)
_INCOMPLETE_TAIL = re.compile(r"\x1b(?:\[[\x30-\x3f]{0,64}[\x20-\x2f]{0,4})?\Z")
_ST = "\x1b\\"
# What can come before a skippable stretch's end: text, cursor-to-line-start controls and SGR;
# anything else (another escape, a charset shift) may move the cursor or change modes for later.
_NOT_PLAIN = re.compile(r"\x1b(?!\[[0-9;]*m)|[\x0e\x0f]")
_SGR = re.compile(r"\x1b\[[0-9;]*m")
_SKIP_MIN = 16 * 1024  # below this, feeding pyte costs less than looking for what to skip


def _colon_sgr(params: str) -> str:
    out: list[str] = []
    for group in params.split(";"):
        if ":" not in group:
            out.append(group)
            continue
        parts = group.split(":")
        head = parts[0]
        if head in ("38", "48") and len(parts) > 2 and parts[1] == "5":
            out.append(f"{head};5;{parts[2] or 0}")
        elif head in ("38", "48") and len(parts) > 4 and parts[1] == "2":
            red, green, blue = parts[-3:]  # an optional colour-space id may precede them
            out.append(f"{head};2;{red or 0};{green or 0};{blue or 0}")
        elif head == "4":
            out.append("24" if parts[1] in ("", "0") else "4")  # 4:3 curly etc. -> underline
        elif head not in ("38", "48", "58"):
            out.append(head)
    return "\x1b[" + ";".join(out) + "m" if out else ""


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


class _Stream(pyte.Stream):
    csi = {final: "_csi_" + name for final, name in pyte.Stream.csi.items()}  # noqa: RUF012


class _Cells(dict[str, Char]):
    """The cells of one set of attributes, made once per character: cells are immutable."""

    def __init__(self, attrs: Char) -> None:
        super().__init__()
        self.attrs = attrs

    def __missing__(self, char: str) -> Char:
        cell = self[char] = self.attrs._replace(data=char)
        return cell


class _Screen(pyte.Screen):
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


@dataclass(frozen=True)
class ScreenSnapshot:
    """What the terminal shows at one moment."""

    columns: int
    rows: int
    lines: list[str]
    cursor_row: int
    cursor_column: int
    cursor_visible: bool
    alternate_screen: bool
    title: str

    def text(self) -> str:
        """The rows joined by newlines, without the empty rows at the bottom."""
        lines = list(self.lines)
        while lines and not lines[-1]:
            lines.pop()
        return "\n".join(lines)


def _row_text(row: Row | None, columns: int) -> str:
    if not row:
        return ""
    cells = [row[x] for x in range(min(columns, max(row) + 1))]
    texts = [cell.data for cell in cells]
    if "" in texts:  # the right half of a wide character (or an orphaned one): the slow way
        return paint_cells(cells, False).rstrip(" ")
    return "".join(texts).rstrip(" ")


class TerminalScreen:
    """A screen fed with a program's raw output bytes, in arbitrary chunks."""

    def __init__(self, columns: int = 200, rows: int = 50) -> None:
        self._screen = _Screen(columns, rows)
        self._stream = _Stream(self._screen)
        # Line drawing (``ESC ( 0``) is only honoured by pyte outside its UTF-8 mode; decoding is
        # done here, so that mode only governs charset designation.
        self._stream.use_utf8 = False
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._carry = ""  # an escape sequence cut by the end of the previous chunk
        self._in_string = False  # inside a DCS/APC/PM/SOS string that is being discarded

    def feed(self, data: bytes) -> None:
        """Apply output bytes; chunks may split UTF-8 characters and escape sequences anywhere."""
        text = self._carry + self._decoder.decode(data)
        self._carry = ""
        if self._in_string:
            end = text.find(_ST)
            if end < 0:
                self._carry = "\x1b" if text.endswith("\x1b") else ""
                return
            self._in_string = False
            text = text[end + 2 :]
        esc = text.rfind("\x1b")
        if esc >= 0 and _INCOMPLETE_TAIL.match(text, esc):
            text, self._carry = text[:esc], text[esc:]
        if len(text) >= _SKIP_MIN:
            # first, so the filter below reads only what is kept: what is skipped holds nothing
            # the filter would change (only text, CR, LF, tab, backspace and plain colors)
            text = self._skip_scrolled_off(text)
        if "\x1b" in text:
            text = _FILTER.sub(self._replace, text)
        self._stream.feed(text)

    def _skip_scrolled_off(self, text: str) -> str:
        """Drop the start of a long stretch of plain output that scrolls off the screen anyway.

        pyte runs at about 1 MB/s, so a screen rebuilt from a log tail is costly. In a plain
        stretch (text, CR, LF, tab, backspace, colors) with at least `rows` line feeds, the cursor
        ends on the bottom row; `rows` + 1 further line feeds there scroll every row drawn before
        them off the screen. So cut just after a CR LF (column 0) that has that many line feeds
        after it, put the cursor where the cut part would have left it (bottom row, column 0) and
        replay its color changes so the kept text gets the same attributes. A scroll region
        would keep rows outside it, so then nothing is skipped.
        """
        rows = self._screen.lines
        if self._screen.margins is not None:
            return text
        found = _NOT_PLAIN.search(text)
        cut = found.start() if found else len(text)
        for _ in range(rows + 2):
            cut = text.rfind("\n", 0, cut)
            if cut < 0:
                return text
        # `cut` is a line feed with rows + 1 more after it: keep what follows it.
        if cut < _SKIP_MIN or text[cut - 1] != "\r" or text.count("\n", 0, cut) < rows:
            return text
        dropped = text[: cut + 1]
        # Colors before the last reset do not matter (replaying more of them would be harmless).
        last_reset = max(dropped.rfind("\x1b[0m"), dropped.rfind("\x1b[m"), 0)
        colors = _SGR.findall(dropped, last_reset)
        return "".join(colors) + f"\x1b[{rows};1H" + text[cut + 1 :]

    def _replace(self, match: re.Match[str]) -> str:
        if match.group("sgr") is not None:
            return _colon_sgr(match.group("sgr"))
        string = match.group("string")
        if string is not None and not string.endswith(_ST):
            self._in_string = True
        return ""

    def resize(self, columns: int, rows: int) -> None:
        """Change the size as a terminal would: rows beyond the cursor go first, then the top."""
        self._screen.resize(lines=rows, columns=columns)

    @property
    def alternate_screen(self) -> bool:
        return self._screen.saved_main is not None

    def snapshot(self) -> ScreenSnapshot:
        screen = self._screen
        columns, rows = screen.columns, screen.lines
        buffer = screen.buffer
        return ScreenSnapshot(
            columns=columns,
            rows=rows,
            lines=[_row_text(buffer.get(y), columns) for y in range(rows)],
            cursor_row=screen.cursor.y,
            cursor_column=min(screen.cursor.x, columns - 1),
            cursor_visible=DECTCEM in screen.mode,
            alternate_screen=self.alternate_screen,
            title=screen.title,
        )

    def render_ansi(self) -> bytes:
        """Bytes that repaint this screen on a real terminal (or a fresh ``TerminalScreen``)."""
        return render_ansi(self._screen)
