from __future__ import annotations

import pytest

from persistproc.keys import KEY_NAMES, encode_key, encode_keys


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("enter", b"\r"),
        ("tab", b"\t"),
        ("esc", b"\x1b"),
        ("escape", b"\x1b"),
        ("up", b"\x1b[A"),
        ("down", b"\x1b[B"),
        ("right", b"\x1b[C"),
        ("left", b"\x1b[D"),
        ("home", b"\x1b[H"),
        ("end", b"\x1b[F"),
        ("pageup", b"\x1b[5~"),
        ("pagedown", b"\x1b[6~"),
        ("insert", b"\x1b[2~"),
        ("delete", b"\x1b[3~"),
        ("backspace", b"\x7f"),
        ("space", b" "),
        ("f1", b"\x1bOP"),
        ("f4", b"\x1bOS"),
        ("f5", b"\x1b[15~"),
        ("f10", b"\x1b[21~"),
        ("f12", b"\x1b[24~"),
        ("shift-tab", b"\x1b[Z"),
    ],
)
def test_named_keys(name: str, expected: bytes) -> None:
    assert encode_keys([name]) == expected


@pytest.mark.parametrize("spelling", ["ctrl-c", "CTRL-C", "Ctrl+c", "C-c", "^C", "^c", "control-c"])
def test_ctrl_c_spellings(spelling: str) -> None:
    assert encode_keys([spelling]) == b"\x03"


def test_ctrl_letters_cover_the_alphabet() -> None:
    for offset, letter in enumerate("abcdefghijklmnopqrstuvwxyz"):
        assert encode_keys([f"ctrl-{letter}"]) == bytes([offset + 1])
    assert encode_keys(["ctrl-d", "ctrl-z"]) == b"\x04\x1a"


def test_ctrl_punctuation() -> None:
    assert encode_keys(["ctrl-\\"]) == b"\x1c"
    assert encode_keys(["ctrl-["]) == b"\x1b"
    assert encode_keys(["ctrl-]"]) == b"\x1d"
    assert encode_keys(["ctrl-space"]) == b"\x00"
    assert encode_keys(["^["]) == b"\x1b"


def test_alt_keys_prefix_escape_and_keep_case() -> None:
    assert encode_keys(["alt-x"]) == b"\x1bx"
    assert encode_keys(["alt-X"]) == b"\x1bX"
    assert encode_keys(["M-f"]) == b"\x1bf"
    assert encode_keys(["alt-enter"]) == b"\x1b\r"
    assert encode_keys(["alt-ctrl-c"]) == b"\x1b\x03"


def test_modified_cursor_and_function_keys_use_xterm_parameters() -> None:
    assert encode_keys(["ctrl-up"]) == b"\x1b[1;5A"
    assert encode_keys(["shift-right"]) == b"\x1b[1;2C"
    assert encode_keys(["alt-f1"]) == b"\x1b[1;3P"
    assert encode_keys(["ctrl-delete"]) == b"\x1b[3;5~"


def test_names_are_case_insensitive_but_characters_are_not() -> None:
    assert encode_keys(["ENTER", "Up", "PageDown"]) == b"\r\x1b[A\x1b[6~"
    assert encode_keys(["Q", "q", "é"]) == b"Qq\xc3\xa9"
    assert encode_key("^") == b"^"
    assert encode_key("-") == b"-"


def test_sequence_is_concatenated_in_order() -> None:
    assert encode_keys(["h", "i", "enter", "ctrl-d"]) == b"hi\r\x04"
    assert encode_keys([]) == b""


@pytest.mark.parametrize("bad", ["entr", "ctrl-", "ctrl-é", "shift-enter", "hello", "", "f13"])
def test_bad_key_names_the_key_and_lists_accepted_names(bad: str) -> None:
    with pytest.raises(ValueError) as info:
        encode_keys(["enter", bad])
    message = str(info.value)
    assert repr(bad) in message
    assert "enter" in message and "ctrl-<letter>" in message and "f12" in message
    assert "alt-<char" in message


def test_plain_string_is_rejected() -> None:
    with pytest.raises(ValueError, match="list of key names"):
        encode_keys("enter")


def test_key_names_are_documented() -> None:
    for name in ("enter", "esc", "pageup", "f1", "f12", "ctrl-c", "ctrl-\\"):
        assert name in KEY_NAMES
    for name in KEY_NAMES:
        assert encode_key(name)
