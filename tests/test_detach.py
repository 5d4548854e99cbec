"""The detach-key matcher on every encoding, split reads, and double presses."""

from __future__ import annotations

import pytest

from persistproc.detach import DetachMatcher, parse_detach_key

CTRL_BACKSLASH = 0x1C
ENCODINGS = [b"\x1c", b"\x1b[92;5u", b"\x1b[92;5:1u", b"\x1b[27;5;92~"]


def test_parse_detach_key() -> None:
    assert parse_detach_key("ctrl-\\") == 0x1C
    assert parse_detach_key("Ctrl-]") == 0x1D
    assert parse_detach_key("^A") == 0x01
    assert parse_detach_key("C-q") == 0x11
    with pytest.raises(ValueError, match="invalid detach key"):
        parse_detach_key("alt-x")


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_single_press_then_pause_detaches(encoding: bytes) -> None:
    matcher = DetachMatcher(CTRL_BACKSLASH)
    scan = matcher.feed(b"ab" + encoding)
    assert scan.forward == b"ab" and scan.armed and not scan.detach
    assert matcher.flush().detach


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_press_followed_by_other_input_detaches(encoding: bytes) -> None:
    matcher = DetachMatcher(CTRL_BACKSLASH)
    scan = matcher.feed(b"x" + encoding + b"y")
    assert scan.detach and scan.forward == b"x"


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_double_press_sends_the_key_once(encoding: bytes) -> None:
    matcher = DetachMatcher(CTRL_BACKSLASH)
    scan = matcher.feed(encoding + encoding + b"z")
    assert not scan.detach and not scan.armed and scan.forward == b"\x1cz"
    # the same with the two presses in separate reads
    matcher = DetachMatcher(CTRL_BACKSLASH)
    assert matcher.feed(encoding).armed
    scan = matcher.feed(encoding)
    assert scan.forward == b"\x1c" and not scan.armed and not scan.detach


@pytest.mark.parametrize("encoding", ENCODINGS[1:])
def test_sequence_split_at_every_byte(encoding: bytes) -> None:
    for cut in range(1, len(encoding)):
        matcher = DetachMatcher(CTRL_BACKSLASH)
        first = matcher.feed(b"q" + encoding[:cut])
        assert first.forward == b"q" and not first.armed
        second = matcher.feed(encoding[cut:])
        assert second.armed and second.forward == b"", cut


def test_other_keys_pass_untouched() -> None:
    matcher = DetachMatcher(CTRL_BACKSLASH)
    data = b"hello\x1b[A\x1b[97;5u\x03\x1b[27;5;93~"
    assert matcher.feed(data).forward == data


def test_lone_escape_is_held_until_flush() -> None:
    matcher = DetachMatcher(CTRL_BACKSLASH)
    assert matcher.feed(b"\x1b").forward == b""
    assert matcher.flush().forward == b"\x1b"


def test_other_detach_key() -> None:
    matcher = DetachMatcher(parse_detach_key("ctrl-a"))
    assert matcher.feed(b"\x1b[97;5u").armed
    assert matcher.feed(b"\x01").forward == b"\x01"
    assert not DetachMatcher(0x01).feed(b"\x1c").armed
