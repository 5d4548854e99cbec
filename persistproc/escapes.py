"""The grammar of terminal output that the line machine (cleantext) reads: escape sequences that
can be dropped unread, the tokens of its general path, and the checks that choose a path.
"""

from __future__ import annotations

import re

# A partial escape longer than this is junk; keeping its prefix is enough to finish parsing it
# the same way whatever the chunking, since over-long parameter strings are ignored anyway.
MAX_ESC = 4096
MAX_PARAMS = 64
ALT_MODES = frozenset({"1049", "1047", "47"})
STRING_START = "]PX^_"  # OSC, DCS, SOS, PM, APC: bodies are discarded, never buffered

# Escape sequences that can never change the text, removed in one C-speed pass. Each
# alternative matches exactly one whole token of the slow-path grammar (or a malformed prefix
# that grammar drops), so removing them never joins neighbours into a different sequence and
# the result does not depend on where chunk boundaries fall.
NOOP = re.compile(
    r"\x1b(?:"
    r"\[[0-?]*[ -/]*[@IL-`a-egi-km-~]"  # CSI with a final byte we ignore: SGR and friends
    r"|\[\?(?:25|2004|1|7|12|2026)[hl]"  # frequent private modes (cursor, paste, sync)
    r"|\[[0-?]*(?:[ -/]+(?=[^ -/@-~])|(?=[^ -~]))"  # CSI cut short by a non-CSI character
    r"|[\]PX^_][^\x07\x1b\n\x18\x1a]*(?:[\x07\x18\x1a]|\x1b\\|(?=\n|\x1b[^\\]))"
    r"|[ -/]+[0-~]|[0-OQ-WYZ\\`-~]"  # ESC 7, ESC =, ESC ( B, ...
    r"|[ -/]*(?=[^ -~])"  # ESC followed by something that cannot continue it
    r")"
)
CTRL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# The same controls for an ASCII string: a handful of C-speed `in` scans beat one regex scan.
ASCII_CTRL = tuple(chr(c) for c in [*range(0x09), *range(0x0B, 0x20), 0x7F])
# The slow path's tokens: text, a status block redrawn in place (cursor up, then erased and
# rewritten lines, any number of times), an erased and rewritten line, a CSI sequence, a run of
# `\r` frames, or any other character.
REDRAW = re.compile(r"\x1b\[([0-9]*)A((?:\x1b\[2K[^\x00-\x1f\x7f-\x9f]*\n)+)")
TOKEN = re.compile(
    r"(?P<text>[^\x00-\x1f\x7f-\x9f]+)"
    r"|(?P<block>(?:\x1b\[[0-9]*A(?:\x1b\[2K[^\x00-\x1f\x7f-\x9f]*\n)+)+)"
    r"|(?P<rewrite>\x1b\[2K(?P<body>[^\x00-\x1f\x7f-\x9f]*)\n)"  # a line of a redrawn block
    r"|\x1b\[(?P<params>[0-?]*)(?P<inter>[ -/]*)(?P<final>[@-~])"
    r"|(?P<frames>(?:\r[^\x00-\x1f\x7f-\x9f]*)+)"
    r"|(?s:.)"
)
PARTIAL = re.compile(r"\x1b(?:\[[0-?]*[ -/]*|[\]PX^_][^\x07\x1b\n\x18\x1a]*\x1b?|[ -/]*)\Z")


def csi_count(param: str) -> int:
    """A cursor movement's count as the line machine reads it: empty and 0 mean 1; -1 for a
    parameter too long to bother with (the general path deals with it)."""
    return int(param) or 1 if 0 < len(param) <= 8 else 1 if not param else -1


def has_controls(s: str) -> bool:
    """True when s holds a control character other than tab and newline."""
    if s.isascii():
        return any(c in s for c in ASCII_CTRL)
    return CTRL.search(s) is not None
