"""Turn key names such as ``enter``, ``ctrl-c`` or ``alt-x`` into the bytes a terminal would send.

Agents name keys instead of writing escape sequences, so a typo must fail loudly with the list of
accepted names rather than reach the program as literal text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["KEY_NAMES", "encode_key", "encode_keys"]

_ESC = b"\x1b"

# A named key is one of: fixed bytes; a cursor key written ``CSI <final>`` (xterm puts modifiers as
# ``CSI 1;<mod> <final>``); F1-F4, which xterm sends as ``SS3 <final>`` when unmodified; or an
# editing/function key written ``CSI <n> ~``.
_NAMED: dict[str, bytes | tuple[str, str] | int] = {
    "enter": b"\r",
    "return": b"\r",
    "tab": b"\t",
    "esc": _ESC,
    "escape": _ESC,
    "backspace": b"\x7f",
    "bs": b"\x7f",
    "space": b" ",
    "up": ("csi", "A"),
    "down": ("csi", "B"),
    "right": ("csi", "C"),
    "left": ("csi", "D"),
    "home": ("csi", "H"),
    "end": ("csi", "F"),
    "f1": ("ss3", "P"),
    "f2": ("ss3", "Q"),
    "f3": ("ss3", "R"),
    "f4": ("ss3", "S"),
    "insert": 2,
    "ins": 2,
    "delete": 3,
    "del": 3,
    "pageup": 5,
    "pgup": 5,
    "pagedown": 6,
    "pgdn": 6,
    "f5": 15,
    "f6": 17,
    "f7": 18,
    "f8": 19,
    "f9": 20,
    "f10": 21,
    "f11": 23,
    "f12": 24,
}

# Concrete names, for help text; the patterns below cover the rest.
KEY_NAMES: tuple[str, ...] = (
    "enter",
    "tab",
    "shift-tab",
    "esc",
    "escape",
    "backspace",
    "space",
    "up",
    "down",
    "left",
    "right",
    "home",
    "end",
    "pageup",
    "pagedown",
    "insert",
    "delete",
    *(f"f{n}" for n in range(1, 13)),
    "ctrl-c",
    "ctrl-d",
    "ctrl-z",
    "ctrl-\\",
    "ctrl-[",
    "ctrl-]",
    "ctrl-space",
)
_PATTERNS = (
    "ctrl-<letter>",
    "alt-<char or key>",
    "ctrl-/alt-/shift- with an arrow, home, end, page, insert, delete or F key",
    "any single character",
)

_MODIFIER = re.compile(r"(ctrl|control|c|alt|meta|m|shift|s)[-+](?=.)", re.IGNORECASE)
_MODIFIER_NAMES = {"control": "ctrl", "c": "ctrl", "meta": "alt", "m": "alt", "s": "shift"}

# Control characters for the punctuation that has one; letters are handled arithmetically.
_CTRL_PUNCT = {"@": 0, " ": 0, "2": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "6": 30, "_": 31}
_CTRL_PUNCT.update({"/": 31, "-": 31, "?": 127, "8": 127})


def _error(key: str, why: str) -> ValueError:
    return ValueError(
        f"{why} {key!r}; accepted keys: {', '.join(KEY_NAMES)}; also {'; '.join(_PATTERNS)}."
        " Names are case-insensitive; ctrl+c, C-c and ^C mean ctrl-c."
    )


def _split_modifiers(key: str) -> tuple[set[str], str]:
    mods: set[str] = set()
    rest = key
    while (match := _MODIFIER.match(rest)) is not None:
        word = match.group(1).lower()
        mods.add(_MODIFIER_NAMES.get(word, word))
        rest = rest[match.end() :]
    if len(rest) == 2 and rest[0] == "^":
        mods.add("ctrl")
        rest = rest[1]
    return mods, rest


def _encode_char(key: str, char: str, mods: set[str]) -> bytes:
    if "ctrl" in mods:
        code = _CTRL_PUNCT.get(char)
        if code is None and char.isascii() and char.isalpha():
            code = ord(char.lower()) - ord("a") + 1
        if code is None:
            raise _error(key, "no control code for key")
        data = bytes([code])
    elif "shift" in mods:
        data = char.upper().encode()
    else:
        data = char.encode()
    return _ESC + data if "alt" in mods else data


def _encode_named(key: str, named: bytes | tuple[str, str] | int, mods: set[str]) -> bytes:
    # xterm's modifier parameter: 1 + shift(1) + alt(2) + ctrl(4).
    mod = 1 + ("shift" in mods) + 2 * ("alt" in mods) + 4 * ("ctrl" in mods)
    if isinstance(named, tuple):
        kind, final = named
        if mod == 1:
            return (_ESC + b"O" if kind == "ss3" else _ESC + b"[") + final.encode()
        return f"\x1b[1;{mod}{final}".encode()
    if isinstance(named, int):
        return f"\x1b[{named}~".encode() if mod == 1 else f"\x1b[{named};{mod}~".encode()
    if not mods:
        return named
    if mods == {"shift"} and named == b"\t":
        return b"\x1b[Z"
    if mods <= {"ctrl", "alt"} and "ctrl" in mods and named in (b" ", b"\x7f"):
        # Terminals send NUL for ctrl-space and BS for ctrl-backspace.
        data = b"\x00" if named == b" " else b"\x08"
        return _ESC + data if "alt" in mods else data
    if mods == {"alt"}:
        return _ESC + named
    raise _error(key, "unsupported modifier combination in key")


def encode_key(key: str) -> bytes:
    """Encode one key name (or single character) into the bytes a terminal sends for it."""
    if not key:
        raise _error(key, "empty key")
    if len(key) == 1:
        return key.encode()
    if key.lower() == "backtab":
        return b"\x1b[Z"
    mods, rest = _split_modifiers(key)
    named = _NAMED.get(rest.lower())
    if named is not None:
        return _encode_named(key, named, mods)
    if len(rest) == 1 and mods:
        return _encode_char(key, rest, mods)
    raise _error(key, "unknown key")


def encode_keys(keys: Sequence[str]) -> bytes:
    """Encode a sequence of key names into one byte string, in order.

    Raises ``ValueError`` naming the first bad key and listing the accepted names.
    """
    if isinstance(keys, str):
        # A bare string would be split into characters and silently typed; make the caller choose.
        raise ValueError(
            f"keys must be a list of key names such as ['enter'], not the string {keys!r}"
        )
    return b"".join(encode_key(key) for key in keys)
