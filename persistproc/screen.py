"""A terminal screen model: feed it a program's raw output, ask what the terminal shows now.

pyte does the VT parsing, with the fixes in emulation.py. This module filters what pyte would
print as literal text (colon SGR, DCS/APC strings, CSI with intermediates), copes with chunks cut
anywhere, and skips output that scrolls off the screen anyway. repaint.py turns a screen back into
bytes for a terminal that attaches later.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from persistproc.emulation import Screen, Stream
from persistproc.repaint import (
    DECTCEM,
    Row,
    paint_cells,
    render_ansi,
)

__all__ = ["ScreenSnapshot", "TerminalScreen"]

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
        self._screen = Screen(columns, rows)
        self._stream = Stream(self._screen)
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
