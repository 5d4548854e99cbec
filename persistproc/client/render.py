"""Turning the server's answers into text for a terminal: tables, statuses, ages, colors."""

from __future__ import annotations

import os
import shutil
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TextIO

ELLIPSIS = "…"
GAP = "  "
STATUS_COLORS = {"running": "32", "failed": "31", "stopped": "33", "exited": "2"}


def use_color(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Colors only for a person: a terminal, and NO_COLOR (https://no-color.org) not set."""
    env = os.environ if environ is None else environ
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not env.get("NO_COLOR")


def output_width(stream: TextIO, environ: Mapping[str, str] | None = None) -> int | None:
    """The width tables must fit: the terminal's, or $COLUMNS; None (no limit) for a pipe, so
    that `persistproc list | grep` sees whole commands."""
    env = os.environ if environ is None else environ
    isatty = getattr(stream, "isatty", None)
    if (isatty and isatty()) or env.get("COLUMNS"):
        return shutil.get_terminal_size().columns
    return None


@dataclass
class Style:
    enabled: bool

    def __call__(self, text: str, code: str | None) -> str:
        if not self.enabled or not code or not text:
            return text
        return f"\x1b[{code}m{text}\x1b[0m"


# ----- widths ------------------------------------------------------------------------------------


def cell_width(text: str) -> int:
    """Columns the text takes in a terminal: wide East Asian characters 2, combining marks 0."""
    width = 0
    for char in text:
        if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def truncate(text: str, width: int, keep_end: bool = False) -> str:
    """Cut text to `width` columns with an ellipsis; keep_end keeps the tail (paths)."""
    if cell_width(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    chars = list(reversed(text)) if keep_end else list(text)
    kept: list[str] = []
    used = 0
    for char in chars:
        used += cell_width(char)
        if used > width - 1:
            break
        kept.append(char)
    body = "".join(reversed(kept)) if keep_end else "".join(kept)
    return ELLIPSIS + body if keep_end else body + ELLIPSIS


@dataclass
class Column:
    header: str
    elastic: bool = False  # may be shortened to fit the width
    keep_end: bool = False  # when shortened, keep the end (paths) rather than the start
    min_width: int = 8


def table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    width: int | None,
    colors: Sequence[Sequence[str | None]] | None = None,
    style: Style | None = None,
) -> list[str]:
    """Rows under a header, padded into columns; elastic columns shrink, widest first, until the
    table fits `width` (None: no limit). Colors are applied after padding, so they cost no width."""
    widths = [
        max([cell_width(c.header), *(cell_width(row[i]) for row in rows)])
        for i, c in enumerate(columns)
    ]
    if width is not None:
        excess = sum(widths) + len(GAP) * (len(columns) - 1) - width
        while excess > 0:
            shrinkable = [i for i, c in enumerate(columns) if c.elastic and widths[i] > c.min_width]
            if not shrinkable:
                break  # the fixed columns alone are too wide: let the terminal wrap
            widest = max(shrinkable, key=lambda i: widths[i])
            others = [widths[i] for i in shrinkable if i != widest]
            # Shrink the widest down to the next widest (or by the whole excess) in one step.
            step = min(excess, widths[widest] - max([columns[widest].min_width, *others]))
            step = max(step, 1)
            widths[widest] -= step
            excess -= step
    paint = style or Style(False)
    lines = []
    header = [paint(c.header, "1") for c in columns]
    lines.append(_join(header, [c.header for c in columns], widths))
    for r, row in enumerate(rows):
        cells = [truncate(cell, widths[i], columns[i].keep_end) for i, cell in enumerate(row)]
        painted = [paint(cell, colors[r][i] if colors else None) for i, cell in enumerate(cells)]
        lines.append(_join(painted, cells, widths))
    return lines


def _join(painted: Sequence[str], plain: Sequence[str], widths: Sequence[int]) -> str:
    parts = []
    for i, (shown, text) in enumerate(zip(painted, plain, strict=True)):
        last = i == len(widths) - 1
        parts.append(shown if last else shown + " " * (widths[i] - cell_width(text)))
    return GAP.join(parts).rstrip()


# ----- values ------------------------------------------------------------------------------------


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        # Python 3.10's fromisoformat does not read the trailing Z the server writes.
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def duration(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def age(info: Mapping[str, Any], now: datetime | None = None) -> str:
    """'up 3m' for a running process, '5m ago' for one that ended."""
    now = now or datetime.now(timezone.utc)
    if info.get("status") == "running":
        started = parse_time(info.get("started_at"))
        return f"up {duration((now - started).total_seconds())}" if started else ""
    ended = parse_time(info.get("ended_at"))
    return f"{duration((now - ended).total_seconds())} ago" if ended else ""


def status_text(info: Mapping[str, Any]) -> str:
    """The status with how it ended: 'exited 0', 'failed 1', 'failed SIGSEGV', 'stopped'."""
    status = str(info.get("status", "?"))
    if status == "running":
        return status
    if info.get("signal"):
        return f"{status} {info['signal']}"
    if info.get("exit_code") is not None and status != "stopped":
        return f"{status} {info['exit_code']}"
    return status


def home_short(path: str) -> str:
    home = os.path.expanduser("~")
    if home not in ("", "/") and (path == home or path.startswith(home + os.sep)):
        return "~" + path[len(home) :]
    return path


def process_table(
    processes: Sequence[Mapping[str, Any]], width: int | None, style: Style
) -> list[str]:
    columns = [
        Column("NAME", elastic=True, min_width=10),
        Column("PID"),
        Column("STATUS"),
        Column("AGE"),
        Column("DIRECTORY", elastic=True, keep_end=True, min_width=10),
        Column("COMMAND", elastic=True, min_width=12),
    ]
    rows, colors = [], []
    for info in processes:
        pid = info.get("pid")
        rows.append(
            [
                str(info.get("name", "")),
                "-" if pid is None else str(pid),
                status_text(info),
                age(info),
                home_short(str(info.get("working_directory", ""))),
                str(info.get("command", "")),
            ]
        )
        status_color = STATUS_COLORS.get(str(info.get("status")))
        colors.append([None, None, status_color, None, None, None])
    return table(columns, rows, width, colors, style)


def size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"  # not reached


def status_lines(info: Mapping[str, Any], style: Style) -> list[str]:
    """`persistproc status`: one 'key  value' line per known fact."""
    status = status_text(info)
    when = age(info)
    when_text = f"  ({when})" if when else ""
    fields: list[tuple[str, str | None]] = [
        ("name", str(info.get("name"))),
        ("pid", None if info.get("pid") is None else str(info["pid"])),
        ("status", style(status, STATUS_COLORS.get(str(info.get("status")))) + when_text),
        ("command", info.get("command")),
        ("directory", info.get("working_directory")),
        ("started", info.get("started_at")),
        ("ended", info.get("ended_at")),
        ("run", f"{info.get('run')} ({info.get('restarts', 0)} restarts)"),
    ]
    if info.get("listening_ports") is not None:
        ports = info["listening_ports"]
        fields.append(("ports", ", ".join(str(p) for p in ports) if ports else "none"))
    if info.get("cpu_percent") is not None:
        fields.append(("cpu", f"{info['cpu_percent']} %"))
    if info.get("memory_bytes") is not None:
        fields.append(("memory", size(int(info["memory_bytes"]))))
    if info.get("output_lines") is not None:
        fields.append(("output", f"{info['output_lines']} lines"))
    if info.get("columns") is not None:
        fields.append(("terminal", f"{info['columns']}x{info.get('rows')}"))
    fields += [("log", info.get("log_path")), ("clean log", info.get("clean_log_path"))]
    if info.get("log_error"):
        fields.append(("log error", style(str(info["log_error"]), "31")))
    label = max(len(key) for key, _ in fields)
    return [
        f"{style(key.ljust(label), '1')}  {value}"
        for key, value in fields
        if value not in (None, "")
    ]
