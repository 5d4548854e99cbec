"""Painting a screen onto a real terminal: the bytes that make a terminal that attaches late show
what the program's screen shows now (both screens, colors, cursor, scroll region, modes).

Pure: it reads a pyte screen (screen.py's subclass) and returns text.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from pyte import graphics
from pyte.screens import Char, StaticDefaultDict, wcwidth

Row = StaticDefaultDict[int, Char]
Buffer = dict[int, Row]

# Private modes a later client must get back: input encodings first, then display behaviour.
RESTORED_PRIVATE_MODES = (1, 9, 1000, 1002, 1003, 1004, 1005, 1006, 1015, 2004, 7)
DECOM = 6 << 5
DECTCEM = 25 << 5
IRM, LNM = 4, 20

DEFAULT_ATTRS: tuple[Any, ...] = tuple(Char(" ")[1:])
_FG = {name: str(code) for code, name in {**graphics.FG_ANSI, **graphics.FG_AIXTERM}.items()}
_BG = {name: str(code) for code, name in {**graphics.BG_ANSI, **graphics.BG_AIXTERM}.items()}
# Later (cube) indices win so a palette colour maps back to the index a program most likely used.
_PALETTE = {hex_: index for index, hex_ in enumerate(graphics.FG_BG_256)}
_FLAGS = {"bold": "1", "italics": "3", "underscore": "4", "blink": "5", "reverse": "7"}
_FLAGS["strikethrough"] = "9"


def render_ansi(screen: Any) -> bytes:
    """Bytes that repaint this screen on a real terminal (or a fresh ``TerminalScreen``).

    With the alternate screen on, the main screen is painted first and then the alternate one
    is entered, so the client shows the right thing when the program leaves it.
    """
    # Start from absolute addressing, plain attributes and replace mode so the paint below
    # lands where it says.
    out = ["\x1b[0m\x1b[r\x1b[?6l\x1b[4l\x1b[20l\x1b[?7h"]
    if screen.saved_main is not None:
        buffer, cursor = screen.saved_main
        out.append(_paint(screen, buffer))
        out.append(f"\x1b[{cursor.y + 1};{min(cursor.x, screen.columns - 1) + 1}H")
        out.append("\x1b[?1049h")
    out.append(_paint(screen, screen.buffer))
    title = "".join(ch for ch in screen.title if ch.isprintable())
    if title:
        out.append(f"\x1b]2;{title}\x07")
    if screen.margins is not None:
        out.append(f"\x1b[{screen.margins.top + 1};{screen.margins.bottom + 1}r")
    origin = DECOM in screen.mode
    out.append("\x1b[?6h" if origin else "")  # it homes the cursor, so it goes first
    out.append(_place_cursor(screen, screen.margins.top if origin and screen.margins else 0))
    for mode in RESTORED_PRIVATE_MODES:
        out.append(f"\x1b[?{mode}{'h' if mode << 5 in screen.mode else 'l'}")
    out.extend(f"\x1b[{mode}h" for mode in (IRM, LNM) if mode in screen.mode)
    out.append(sgr(tuple(screen.cursor.attrs[1:])))
    out.append("\x1b[?25h" if DECTCEM in screen.mode else "\x1b[?25l")
    return "".join(out).encode("utf-8", "replace")


def _paint(screen: Any, buffer: Buffer) -> str:
    out = ["\x1b[H\x1b[2J"]
    columns = screen.columns
    for y in range(screen.lines):
        row = buffer.get(y)
        if not row:
            continue
        cells = [row[x] for x in range(min(columns, max(row) + 1))]
        while cells and cells[-1].data == " " and tuple(cells[-1][1:]) == DEFAULT_ATTRS:
            cells.pop()
        if not cells:
            continue
        out.append(f"\x1b[{y + 1}H")
        out.append(paint_cells(cells))
        out.append("\x1b[0m")
    return "".join(out)


def _place_cursor(screen: Any, top: int) -> str:
    x, y = screen.cursor.x, screen.cursor.y
    if x < screen.columns:
        return f"\x1b[{y - top + 1};{x + 1}H"
    # The cursor waits past the last column for the next character to wrap; only writing the
    # last cell again puts a terminal in that state.
    row = screen.buffer.get(y) or StaticDefaultDict(screen.default_char)
    x = screen.columns - 1
    if not row[x].data and x > 0:
        x -= 1  # right half of a wide character
    last = row[x] if row[x].data else screen.default_char
    return f"\x1b[{y - top + 1};{x + 1}H" + paint_cells([last]) + "\x1b[0m"


def sgr(attrs: tuple[Any, ...]) -> str:
    char = Char(" ", *attrs)
    codes = ["0"]
    codes += [code for name, code in _FLAGS.items() if getattr(char, name)]
    for color, names, prefix in ((char.fg, _FG, "38"), (char.bg, _BG, "48")):
        if color in names:
            if color != "default":
                codes.append(names[color])
        elif color in _PALETTE:
            codes.append(f"{prefix};5;{_PALETTE[color]}")
        elif len(color) == 6:
            with suppress(ValueError):
                red, green, blue = (int(color[i : i + 2], 16) for i in (0, 2, 4))
                codes.append(f"{prefix};2;{red};{green};{blue}")
    return "\x1b[" + ";".join(codes) + "m"


def paint_cells(cells: list[Char], styled: bool = True) -> str:
    out: list[str] = []
    current: tuple[Any, ...] = DEFAULT_ATTRS  # every painted row starts after an SGR reset
    stub_expected = False
    for index, cell in enumerate(cells):
        data = cell.data
        if not data:
            if stub_expected:
                stub_expected = False
                continue
            data = " "  # an orphaned wide-character stub still occupies its cell
        if styled and tuple(cell[1:]) != current:
            current = tuple(cell[1:])
            out.append(sgr(current))
        out.append(data)
        stub_expected = wcwidth(data[0]) == 2
        if stub_expected and index + 1 < len(cells) and cells[index + 1].data:
            # A later write replaced this wide character's right half; go back to that column
            # (absolutely: CUB is off by one right after the last column) so the next character
            # lands on it again.
            if styled:
                out.append(f"\x1b[{index + 2}G")
            stub_expected = False
    return "".join(out)
