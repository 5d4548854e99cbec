from __future__ import annotations

import random

import pytest

from persistproc.screen import ScreenSnapshot, TerminalScreen


def fed(data: bytes, columns: int = 40, rows: int = 10) -> TerminalScreen:
    screen = TerminalScreen(columns, rows)
    screen.feed(data)
    return screen


def replayed(screen: TerminalScreen) -> TerminalScreen:
    snap = screen.snapshot()
    return fed(screen.render_ansi(), snap.columns, snap.rows)


def assert_same_view(left: ScreenSnapshot, right: ScreenSnapshot) -> None:
    assert left.lines == right.lines
    assert (left.cursor_row, left.cursor_column) == (right.cursor_row, right.cursor_column)
    assert left.cursor_visible == right.cursor_visible
    assert left.alternate_screen == right.alternate_screen
    assert left.title == right.title


def test_defaults_and_empty_screen() -> None:
    snap = TerminalScreen().snapshot()
    assert (snap.columns, snap.rows) == (200, 50)
    assert snap.lines == [""] * 50
    assert (snap.cursor_row, snap.cursor_column, snap.cursor_visible) == (0, 0, True)
    assert not snap.alternate_screen
    assert snap.text() == ""


def test_text_and_cursor_moves() -> None:
    snap = fed(b"hello\r\nworld\x1b[5;10HX\x1b[1;3Hy").snapshot()
    assert snap.lines[:5] == ["heylo", "world", "", "", "         X"]
    assert (snap.cursor_row, snap.cursor_column) == (0, 3)
    assert snap.text() == "heylo\nworld\n\n\n         X"


def test_trailing_spaces_are_stripped_but_inner_ones_kept() -> None:
    assert fed(b"a   b     \r\n").snapshot().lines[0] == "a   b"


def test_colors_are_stripped_from_lines_and_kept_in_render() -> None:
    screen = fed(
        b"\x1b[31mred\x1b[0m \x1b[1;44mbold\x1b[0m \x1b[38;5;123mpal\x1b[38;2;10;20;30mrgb"
    )
    assert screen.snapshot().lines[0] == "red bold palrgb"
    ansi = screen.render_ansi()
    assert b"\x1b[0;31mred" in ansi
    assert b"\x1b[0;1;44mbold" in ansi
    assert b"38;5;123mpal" in ansi
    assert b"38;2;10;20;30mrgb" in ansi


def test_reverse_and_other_attributes_render() -> None:
    ansi = fed(b"\x1b[7mrev\x1b[27;3;4;9mx").render_ansi()
    assert b"\x1b[0;7mrev" in ansi
    assert b"\x1b[0;3;4;9mx" in ansi


def test_alternate_screen_draws_then_exit_restores_main_and_cursor() -> None:
    screen = fed(b"$ top\r\nmain line\x1b[2;5H")
    screen.feed(b"\x1b[?1049h\x1b[HFULL SCREEN APP\x1b[5;1Hstatus")
    snap = screen.snapshot()
    assert snap.alternate_screen
    assert snap.lines[0] == "FULL SCREEN APP"
    assert "main line" not in snap.text()
    screen.feed(b"\x1b[?1049l")
    snap = screen.snapshot()
    assert not snap.alternate_screen
    assert snap.lines[:2] == ["$ top", "main line"]
    assert (snap.cursor_row, snap.cursor_column) == (1, 4)


@pytest.mark.parametrize("mode", [b"47", b"1047"])
def test_older_alternate_screen_modes_restore_the_buffer(mode: bytes) -> None:
    screen = fed(b"main")
    screen.feed(b"\x1b[?" + mode + b"h\x1b[Halt")
    assert screen.snapshot().alternate_screen
    assert screen.snapshot().lines[0] == "alt"
    screen.feed(b"\x1b[?" + mode + b"l")
    assert screen.snapshot().lines[0] == "main"
    assert not screen.snapshot().alternate_screen


def test_column_mode_is_ignored_and_1048_saves_the_cursor() -> None:
    screen = fed(b"keep\x1b[2;3H\x1b[?1048h\x1b[?3h\x1b[5;5Hx\x1b[?3l\x1b[?1048ly", 40, 10)
    snap = screen.snapshot()
    assert snap.columns == 40
    assert snap.lines[0] == "keep"
    assert snap.lines[1] == "  y"
    assert snap.lines[4] == "    x"


def test_zero_width_joiner_and_variation_selector_do_not_drop_text() -> None:
    family = "👨\u200d👩\u200d👧"
    snap = fed(f"{family} and ❤\ufe0f then ✈\ufe0e end".encode()).snapshot()
    assert snap.lines[0].endswith(" end")
    assert "and ❤ then ✈ end" in snap.lines[0]


def test_combining_marks_stay_with_their_character() -> None:
    assert fed("e\u0301 क\u093e x".encode()).snapshot().lines[0] == "é का x"


def test_control_characters_in_text_are_ignored() -> None:
    assert fed(b"a\x01b\x02c\x1ad").snapshot().lines[0] == "abcd"


def test_colon_sgr_is_not_shown_as_text() -> None:
    screen = fed(b"\x1b[38:2::255:0:0mred\x1b[4:3mcurly\x1b[58:2::1:2:3m\x1b[4:0mdone")
    assert screen.snapshot().lines[0] == "redcurlydone"
    ansi = screen.render_ansi()
    assert b"\x1b[0;38;5;196mred" in ansi  # ff0000 is palette colour 196
    assert b"\x1b[0;4;38;5;196mcurly" in ansi
    assert fed(b"\x1b[38:2:10:20:30mx").render_ansi().count(b"38;2;10;20;30mx") == 1


def test_dcs_apc_pm_sos_strings_are_filtered() -> None:
    data = b"a\x1bPq#0;2;0;0;0#0~~@@\x1b\\b\x1b_Gf=100;AAAA\x1b\\c\x1b^pm\x1b\\d\x1bXsos\x1b\\e"
    assert fed(data).snapshot().lines[0] == "abcde"


def test_dcs_split_across_feeds_is_filtered() -> None:
    screen = TerminalScreen(40, 5)
    for chunk in (b"before\x1bP", b"q#0;2;0", b";0;0\x1b", b"\\after"):
        screen.feed(chunk)
    assert screen.snapshot().lines[0] == "beforeafter"


def test_unsupported_csi_forms_are_not_shown_as_text() -> None:
    data = b"a\x1b[>4;2mb\x1b[!pc\x1b[2 qd\x1b[<ue\x1b[=5uf\x1b[?2004$pg\x1b[>cz"
    screen = fed(data)
    assert screen.snapshot().lines[0] == "abcdefgz"
    assert b"\x1b[0;4" not in screen.render_ansi()  # CSI > 4;2 m is not underline


def test_malformed_parameters_do_not_abort_the_feed() -> None:
    data = b"\x1b[5Ka\x1b[?rb\x1b[1;2;3Hc\x1b[?6nd\x1b[99999;99999He"
    snap = fed(data, 10, 3).snapshot()
    assert "abcd" in snap.text()
    assert snap.lines[2].endswith("e")


def test_split_sequences_across_feeds() -> None:
    data = "x\x1b[31mé€😀\x1b[38:2::1:2:3mz\x1b[2;4Hq\x1b]2;title\x07".encode()
    whole = fed(data)
    split = TerminalScreen(40, 10)
    for byte in data:
        split.feed(bytes([byte]))
    assert_same_view(whole.snapshot(), split.snapshot())
    assert whole.render_ansi() == split.render_ansi()
    assert split.snapshot().lines[:2] == ["xé€😀z", "   q"]
    assert split.snapshot().title == "title"


def test_line_drawing_charset() -> None:
    assert fed(b"\x1b(0lqqk\x1b(B ok").snapshot().lines[0] == "┌──┐ ok"


def test_title_and_cursor_visibility() -> None:
    snap = fed(b"\x1b]0;my app\x07\x1b[?25l").snapshot()
    assert snap.title == "my app"
    assert not snap.cursor_visible
    assert fed(b"\x1b[?25l\x1b[?25h").snapshot().cursor_visible


def test_resize_keeps_the_cursor_row_visible() -> None:
    screen = fed(b"a\r\nb\r\nc\r\nd\r\n$ ", 20, 5)
    screen.resize(10, 3)
    snap = screen.snapshot()
    assert (snap.columns, snap.rows) == (10, 3)
    assert snap.lines == ["c", "d", "$"]
    assert (snap.cursor_row, snap.cursor_column) == (2, 2)


def test_resize_keeps_top_rows_when_cursor_is_high() -> None:
    screen = fed(b"top line\r\n$ ", 20, 5)
    screen.resize(4, 3)
    snap = screen.snapshot()
    assert snap.lines == ["top", "$", ""]
    screen.resize(30, 8)
    screen.feed(b"\x1b[8;25Hcorner")
    assert screen.snapshot().lines[7] == " " * 24 + "corner"


def test_resize_during_alternate_screen_also_fits_the_main_screen() -> None:
    screen = fed(b"1\r\n2\r\n3\r\n4\r\n$ ", 20, 5)
    screen.feed(b"\x1b[?1049h\x1b[Happ")
    screen.resize(20, 3)
    screen.feed(b"\x1b[?1049l")
    snap = screen.snapshot()
    assert snap.lines == ["3", "4", "$"]
    assert (snap.cursor_row, snap.cursor_column) == (2, 2)


def test_render_ansi_sets_input_modes() -> None:
    ansi = fed(b"\x1b[?1h\x1b[?2004h\x1b[?1000h\x1b[?1006h").render_ansi()
    for mode in (b"1", b"2004", b"1000", b"1006"):
        assert b"\x1b[?" + mode + b"h" in ansi
    assert b"\x1b[?1002l" in ansi and b"\x1b[?1003l" in ansi
    plain = fed(b"x").render_ansi()
    assert b"\x1b[?2004l" in plain and b"\x1b[?1l" in plain


def test_render_ansi_round_trip() -> None:
    data = (
        b"\x1b]2;round trip\x07plain \x1b[1;31mbold red\x1b[0m\r\n"
        + "wide 日本 and emoji 😀 end\r\n".encode()
        + b"\x1b[44m   \x1b[0m blue cells\x1b[8;30Hfar\x1b[?2004h\x1b[?25l\x1b[3;7H\x1b[32m"
    )
    screen = fed(data)
    again = replayed(screen)
    assert_same_view(screen.snapshot(), again.snapshot())
    assert again.render_ansi() == screen.render_ansi()


def test_render_ansi_round_trip_with_alternate_screen_active() -> None:
    screen = fed(b"shell$ ls\r\nfile.txt\r\nshell$ ")
    screen.feed(b"\x1b[?1049h\x1b[?1h\x1b[H\x1b[7m top bar \x1b[0m\x1b[4;3Hbody\x1b[2;5r\x1b[3;2H")
    again = replayed(screen)
    assert again.snapshot().alternate_screen
    assert_same_view(screen.snapshot(), again.snapshot())
    assert again.render_ansi() == screen.render_ansi()
    for one in (screen, again):
        one.feed(b"\x1b[r\x1b[?1049l")
    assert_same_view(screen.snapshot(), again.snapshot())
    assert again.snapshot().lines[:3] == ["shell$ ls", "file.txt", "shell$"]


def test_render_ansi_round_trip_with_cursor_past_the_last_column() -> None:
    screen = fed(b"0123456789", 10, 3)
    again = replayed(screen)
    assert_same_view(screen.snapshot(), again.snapshot())
    screen.feed(b"X")
    again.feed(b"X")
    assert screen.snapshot().lines == again.snapshot().lines == ["0123456789", "X", ""]


def test_render_ansi_round_trip_with_origin_mode_and_margins() -> None:
    screen = fed(b"\x1b[3;8r\x1b[?6h\x1b[2;4Hin region", 20, 10)
    again = replayed(screen)
    assert_same_view(screen.snapshot(), again.snapshot())
    for one in (screen, again):
        one.feed(b"\x1b[1;1H!")
    assert screen.snapshot().lines == again.snapshot().lines


def test_random_bytes_never_raise_and_round_trip() -> None:
    rng = random.Random(1234)
    pieces = [
        b"\x1b[",
        b"\x1b",
        b";",
        b":",
        b"?",
        b"1049h",
        b"1049l",
        b"m",
        b"H",
        b"2J",
        b"K",
        b"\x1bP",
        b"\x1b\\",
        b"\x1b]0;t\x07",
        b"38;5;9",
        b"\r\n",
        b"\x08",
        b"\t",
        b"@",
        b"r",
        "😀".encode(),
        "\u200d".encode(),
        "\u093e".encode(),
        b"\xff",
        b"abc",
        b"(0",
        b"q",
    ]
    for _ in range(150):
        columns, rows = rng.randint(1, 16), rng.randint(1, 6)
        screen = TerminalScreen(columns, rows)
        data = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 120)))
        data += rng.randbytes(rng.randint(0, 60))
        position = 0
        while position < len(data):
            step = rng.randint(1, 9)
            screen.feed(data[position : position + step])
            position += step
        assert_same_view(screen.snapshot(), replayed(screen).snapshot())
