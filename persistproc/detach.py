"""Spotting the detach key in what the user types (pure: bytes in, decisions out).

The key (default Ctrl-\\) arrives as a control byte, or, when the program asked the terminal for
richer key reports, in the kitty encoding `ESC [ <code> ; <mods> u` or xterm's modifyOtherKeys
`ESC [ 27 ; <mods> ; <code> ~`. The whole buffer is scanned, and a sequence split across two reads
is held back until the next read (or `flush()`). Pressing the key twice in a row sends it once to
the program; a single press followed by anything else, or by nothing for a moment, detaches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_DETACH_KEY = "ctrl-\\"
DOUBLE_PRESS_SECONDS = 0.4
HOLD_SECONDS = 0.03  # how long a lone ESC may wait to see whether a key report follows

_CTRL_BASE = {0x1C: "\\", 0x1D: "]", 0x1E: "^", 0x1F: "_", 0x00: "@"}


def parse_detach_key(spec: str) -> int:
    """'ctrl-\\', 'ctrl-]', 'ctrl-a', '^A', 'C-a' -> the control byte it sends."""
    text = spec.strip().lower()
    for prefix in ("ctrl-", "ctrl+", "c-", "^"):
        if text.startswith(prefix) and len(text) == len(prefix) + 1:
            char = text[-1]
            if "a" <= char <= "z":
                return ord(char) - ord("a") + 1
            for byte, base in _CTRL_BASE.items():
                if char == base:
                    return byte
    raise ValueError(
        f"invalid detach key {spec!r}: use ctrl-<letter>, ctrl-\\, ctrl-], ctrl-^ or ctrl-_"
    )


@dataclass
class Scan:
    forward: bytes  # send these to the process
    detach: bool = False  # detach now
    armed: bool = False  # one press seen: detach unless the next input is another press


class DetachMatcher:
    def __init__(self, key: int) -> None:
        self.key = key
        base = _CTRL_BASE.get(key) or chr(key + ord("a") - 1)
        code = ord(base)
        ctrl = r"(?:5|6|13|14)"  # modifier values that include Ctrl (with or without Shift/Alt)
        self._pattern = re.compile(
            rb"\x1b\[(?:%d;%s(?::\d)?u|27;%s;%d~)|%s"
            % (code, ctrl.encode(), ctrl.encode(), code, re.escape(bytes([key])))
        )
        self._held = b""
        self._armed = False

    def feed(self, data: bytes) -> Scan:
        data = self._held + data
        self._held = b""
        out = bytearray()
        position = 0
        for match in self._pattern.finditer(data):
            if match.start() > position:
                if self._armed:
                    self._armed = False
                    return Scan(bytes(out), detach=True)
                out += data[position : match.start()]
            if self._armed:
                out += bytes([self.key])  # pressed twice: the program gets the key itself
                self._armed = False
            else:
                self._armed = True
            position = match.end()
        rest = data[position:]
        partial = _partial_escape(rest)
        if partial:
            rest, self._held = rest[: len(rest) - partial], rest[len(rest) - partial :]
        if rest and self._armed:
            self._armed = False
            return Scan(bytes(out), detach=True)
        out += rest
        return Scan(bytes(out), armed=self._armed)

    @property
    def holding(self) -> bool:
        """Bytes are held back, waiting to see whether they start a key report."""
        return bool(self._held)

    def flush(self) -> Scan:
        """No more input came for a moment: release what was held; a lone press detaches."""
        held, self._held = self._held, b""
        if self._armed:
            self._armed = False
            return Scan(b"", detach=True)
        return Scan(held)


_PREFIX = re.compile(rb"\x1b(?:\[[0-9;:]*)?\Z")


def _partial_escape(data: bytes) -> int:
    """Length of a trailing fragment that could still become a key report."""
    match = _PREFIX.search(data[-32:])
    return len(match.group(0)) if match else 0
