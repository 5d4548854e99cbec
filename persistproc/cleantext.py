"""Turn the byte stream a program writes to its terminal into clean log lines.

The model is a log of committed lines of unbounded width plus an editable window holding the
last `window` lines, where the cursor lives. Cursor movement and erasing only reach into the
window, so progress bars and multi-line status blocks settle there before their lines are
committed, and committed history is never rewritten.
"""

from __future__ import annotations

import codecs

from persistproc import escapes

ENTER_MARKER = "[persistproc: full-screen program started]"
EXIT_MARKER = "[persistproc: full-screen program ended]"


class LineMachine:
    """Incremental terminal-output-to-text converter; see the module docstring."""

    def __init__(self, window: int = 64, max_line: int = 65536, tab_size: int = 8) -> None:
        if window < 1 or max_line < 1 or tab_size < 1:
            raise ValueError("window, max_line and tab_size must be positive")
        self._window = window
        self._max = max_line
        self._tab = tab_size
        self._dec = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._carry = ""  # an escape sequence cut by the end of the previous chunk
        self._win: list[str] = [""]
        self._row = 0
        self._col = 0  # invariant: <= max_line between operations
        self._alt = False
        self._committed = 0
        self._out: list[str] = []

    def feed(self, data: bytes) -> list[str]:
        """Consume a chunk; return the lines committed by it (in order)."""
        self._run(self._carry + self._dec.decode(data))
        return self._take()

    def finish(self) -> list[str]:
        """End of stream: flush partial input, commit everything in the window, return it."""
        self._run(self._carry + self._dec.decode(b"", final=True))
        self._carry = ""
        self._dec.reset()
        self._clear()
        return self._take()

    def pending(self) -> list[str]:
        """Window lines not yet committed, oldest first, as they read now."""
        lines = [line.rstrip(" ") for line in self._win]
        end = len(lines)
        while end > self._row and not lines[end - 1]:
            end -= 1
        return lines[:end]

    @property
    def unfinished(self) -> bool:
        """True when pending() ends with the cursor line and it has had no newline yet."""
        # Lines are only ever removed from the top of the window, so the bottom line is the
        # one no newline has been typed on.
        return self._row == len(self._win) - 1 and bool(self._win[-1].rstrip(" "))

    @property
    def alternate_screen(self) -> bool:
        return self._alt

    @property
    def committed(self) -> int:
        return self._committed

    def _take(self) -> list[str]:
        out, self._out = self._out, []
        return out

    def _commit(self, lines: list[str]) -> None:
        self._out.extend([line.rstrip(" ") for line in lines])
        self._committed += len(lines)

    def _run(self, s: str) -> None:
        self._carry = ""
        if "\x1b" in s:
            s = escapes.NOOP.sub("", s)
        if "\r" in s:
            s = s.replace("\r\n", "\n")
        if self._alt or escapes.has_controls(s):
            self._slow(s)
        else:
            self._fast(s)

    def _fast(self, s: str) -> None:
        segs = s.split("\n")
        self._text(segs[0])
        if len(segs) == 1:
            return
        win = self._win
        if self._row == len(win) - 1:
            # Every further segment lands on a fresh line at column 0, so a tab there is
            # exactly expandtabs; a too-long line falls back to the general path to be split.
            new = [seg.expandtabs(self._tab) for seg in segs[1:]] if "\t" in s else segs[1:]
            if max(map(len, new)) <= self._max:
                win.extend(new)
                self._row = len(win) - 1
                self._col = len(win[-1])
                self._trim()
                return
        for seg in segs[1:]:
            self._newline()
            self._text(seg)

    def _slow(self, s: str) -> None:
        # One C-speed scan splits the chunk into tokens; Python only dispatches on each.
        for m in escapes.TOKEN.finditer(s):
            kind = m.lastgroup
            if kind == "text":
                if not self._alt:
                    self._put(m.group())
            elif kind == "block":
                if not self._alt:
                    self._redraw(m.group())
            elif kind == "rewrite":
                if not self._alt:
                    self._rewrite(m.group("body"))
            elif kind == "final":
                self._csi(m.group("params"), m.group("inter"), m.group("final"))
            elif kind == "frames":
                if not self._alt:
                    self._overlay(m.group().split("\r")[1:])
            elif (c := m.group()) == "\x1b":
                # NOOP has removed every other kind of escape, so what is left is the cut-off
                # tail of the chunk; anything else would be a lone ESC, dropped.
                i = m.start()
                if escapes.PARTIAL.match(s, i):
                    if s[i + 1 : i + 2] and s[i + 1] in escapes.STRING_START:
                        tail = "\x1b" if len(s) - i > 2 and s[-1] == "\x1b" else ""
                        self._carry = s[i : i + 2] + tail
                    else:
                        self._carry = s[i : i + escapes.MAX_ESC]
                    return
            elif self._alt:
                pass
            elif c == "\n":
                self._newline()
            elif c == "\b":
                self._col = max(self._col - 1, 0)
            elif c == "\t":
                self._tabstop()

    def _rewrite(self, body: str) -> None:
        """ESC[2K, text, newline: one line of a redrawn block."""
        self._win[self._row] = ""
        if body:
            self._put(body)
        self._newline()

    def _redraw(self, block: str) -> None:
        """A status block redrawn in place, maybe many times: each time the cursor goes up and
        lines are rewritten. When each redraw goes up exactly as many rows as it rewrites, all
        within the window and the line width, only the last one shows: it alone is written."""
        redraws = [(up, lines.split("\n")[:-1]) for up, lines in escapes.REDRAW.findall(block)]
        height = len(redraws[-1][1])
        first = redraws[-1][1][0][4:]
        if len(redraws) == 1 and first:
            first = " " * self._col + first  # ESC[A keeps the column; later redraws start at 0
        if (
            height <= self._row
            and len(block) + self._col <= self._max  # no line is split, the first included
            and all(
                len(lines) == height and escapes.csi_count(up) == height for up, lines in redraws
            )
        ):
            top = self._row - height
            self._win[top : self._row] = [first, *(line[4:] for line in redraws[-1][1][1:])]
            self._col = 0
            return
        for up, lines in redraws:
            self._csi(up, "", "A")
            for line in lines:
                self._rewrite(line[4:])

    def _overlay(self, frames: list[str]) -> None:
        """Each frame written from column 0 over the one before, as `\r` does. A frame that a
        later, at least as long one covers entirely is skipped: a progress bar redrawn a
        thousand times costs one write. Frames longer than a line are split by _put, which
        moves the cursor to a new row, so those are written one by one."""
        if self._alt or max(map(len, frames)) > self._max:
            for frame in frames:
                self._col = 0
                if frame and not self._alt:
                    self._put(frame)
            return
        visible, longest_after = [], -1
        for frame in reversed(frames):
            if len(frame) > longest_after:
                visible.append(frame)
                longest_after = len(frame)
        for frame in reversed(visible):
            self._col = 0
            if frame:
                self._put(frame)

    def _text(self, seg: str) -> None:
        for k, part in enumerate(seg.split("\t")):
            if k:
                self._tabstop()
            if part:
                self._put(part)

    def _tabstop(self) -> None:
        self._col = (self._col // self._tab + 1) * self._tab
        if self._col > self._max:
            self._put("")  # materialise the padding so it is split, not accumulated

    def _put(self, text: str) -> None:
        line, col = self._win[self._row], self._col
        line = line[:col].ljust(col) + text + line[col + len(text) :]
        self._win[self._row] = line
        self._col = col + len(text)
        if len(line) > self._max:
            m = self._max
            parts = [line[k : k + m] for k in range(0, len(line), m)]
            self._win[self._row : self._row + 1] = parts
            self._row += len(parts) - 1
            self._col = max(self._col - m * (len(parts) - 1), 0)
            self._trim()

    def _newline(self) -> None:
        self._col = 0
        self._row += 1
        if self._row == len(self._win):
            self._win.append("")
            self._trim()

    def _trim(self) -> None:
        extra = len(self._win) - self._window
        if extra > 0:
            self._commit(self._win[:extra])
            del self._win[:extra]
            self._row -= extra

    def _goto(self, row: int) -> None:
        row = max(0, min(row, self._window - 1))
        self._win.extend([""] * (row + 1 - len(self._win)))
        self._row = row

    def _clear(self) -> None:
        self._commit(self.pending())
        self._win = [""]
        self._row = self._col = 0

    def _set_alt(self, on: bool) -> None:
        if on == self._alt:
            return
        if on:
            self._clear()
        self._commit([ENTER_MARKER if on else EXIT_MARKER])
        self._alt = on

    def _erase_line(self, mode: int) -> None:
        line, col = self._win[self._row], self._col
        if mode == 0:
            line = line[:col]
        elif mode == 1:
            line = " " * min(col + 1, len(line)) + line[col + 1 :]
        elif mode == 2:
            line = ""
        self._win[self._row] = line

    def _csi(self, params: str, inter: str, final: str) -> None:
        if inter or len(params) > escapes.MAX_PARAMS:
            return
        if params and params[0] in "<=>?":
            if (
                params[0] == "?"
                and final in "hl"
                and escapes.ALT_MODES.intersection(params[1:].split(";"))
            ):
                self._set_alt(final == "h")
            return
        if self._alt:
            return
        if params.isdigit():  # the usual case: one number
            nums = [int(params)]
        else:
            nums = [int(p) if p.isdigit() else 0 for p in params.split(";")]
        n = nums[0] or 1
        if final in "AF":
            self._goto(self._row - n)
        elif final in "BE":
            self._goto(self._row + n)
        elif final == "C":
            self._col = min(self._col + n, self._max)
        elif final == "D":
            self._col = max(self._col - n, 0)
        elif final == "G":
            self._col = min(n - 1, self._max)
        elif final in "Hf":
            self._goto(n - 1)
            self._col = min((nums[1] if len(nums) > 1 else 0) or 1, self._max + 1) - 1
        elif final == "K":
            self._erase_line(nums[0])
        elif final == "J":
            win, row = self._win, self._row
            if nums[0] in (2, 3) or (nums[0] == 0 and row == 0 and self._col == 0):
                # Erasing from home is a clear screen (Node's console.clear, Vite): what was
                # there is history, so it is committed, never lost.
                self._clear()
            elif nums[0] == 0:
                self._erase_line(0)
                win[row + 1 :] = [""] * (len(win) - row - 1)
            elif nums[0] == 1:
                self._erase_line(1)
                win[:row] = [""] * row
        if final in "EF":
            self._col = 0
