from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from persistproc.cleantext import ENTER_MARKER, EXIT_MARKER, LineMachine


def run(data: bytes, **kwargs: int) -> list[str]:
    m = LineMachine(**kwargs)
    return m.feed(data) + m.finish()


def run_chunks(chunks: list[bytes], **kwargs: int) -> tuple[list[str], list[str], bool, int]:
    """Feed chunks; return (all lines, pending before finish, unfinished, committed count)."""
    m = LineMachine(**kwargs)
    out: list[str] = []
    for chunk in chunks:
        out += m.feed(chunk)
    pending, unfinished = m.pending(), m.unfinished
    out += m.finish()
    assert m.committed == len(out)
    return out, pending, unfinished, m.committed


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


# --- basics ---------------------------------------------------------------------------------


def test_plain_lines() -> None:
    assert run(b"one\ntwo\n\nthree\n") == ["one", "two", "", "three"]


def test_sgr_colors_stripped() -> None:
    data = b"\x1b[1;31mERROR\x1b[0m \x1b[38;5;208mhot\x1b[m \x1b[38:2::1:2:3mtc\x1b[0m\n"
    assert run(data) == ["ERROR hot tc"]


def test_crlf() -> None:
    assert run(b"a\r\nb\r\n\r\nc\r\n") == ["a", "b", "", "c"]


def test_cr_progress_bar_collapses() -> None:
    assert run(b"10%\r20%\r100%\n") == ["100%"]


def test_cr_partial_overwrite() -> None:
    assert run(b"abcdef\rXY\n") == ["XYcdef"]


def test_backspace() -> None:
    assert run(b"abc\b\bX\n") == ["aXc"]
    assert run(b"\b\bab\b\n") == ["ab"]


def test_tabs() -> None:
    assert run(b"a\tb\n") == ["a       b"]
    assert run(b"abcdefgh\tx\n") == ["abcdefgh        x"]
    assert run(b"x\n\tab\tc\n", tab_size=4) == ["x", "    ab  c"]
    # A tab only moves the cursor: it does not blank what it passes over.
    assert run(b"abcdefghij\r\tX\n") == ["abcdefghXj"]
    assert run(b"a\t\n") == ["a"]


def test_erase_in_line() -> None:
    assert run(b"hello world\r\x1b[Kbye\n") == ["bye"]
    assert run(b"hello world\x1b[6D\x1b[0K\n") == ["hello"]
    assert run(b"hello world\x1b[6D\x1b[1K\n") == ["      world"]
    assert run(b"hello\x1b[2Kx\n") == ["     x"]


def test_cursor_forward_pads_with_spaces() -> None:
    assert run(b"a\x1b[5Cb\n") == ["a     b"]
    assert run(b"a\x1b[Cb\n") == ["a b"]
    assert run(b"abcdef\x1b[3D\x1b[1CX\n") == ["abcdXf"]
    assert run(b"abc\x1b[10Gx\x1b[Gy\n") == ["ybc      x"]


def test_other_escapes_and_controls_dropped() -> None:
    data = (
        b"\x1b[?25la\x07b\x1b7c\x1b8\x1b=\x1b>d\x1b(Be\x1b]0;title\x07f"
        b"\x1bPq#0;1;2\x1b\\g\x1b_apc\x1b\\h\x1b[>4;1mi\x1b[0 qj\x7f\x00\x1ek\x1b[?2004h\n"
    )
    assert run(data) == ["abcdefghijk"]


def test_osc_hyperlink_and_st_terminator() -> None:
    data = b"see \x1b]8;;https://example.com\x1b\\docs\x1b]8;;\x1b\\ now\n"
    assert run(data) == ["see docs now"]


def test_unterminated_osc_ends_at_newline() -> None:
    assert run(b"a\x1b]0;never terminated\nnext\n") == ["a", "next"]


def test_trailing_spaces_stripped() -> None:
    m = LineMachine()
    assert m.feed(b"x   \ny  ") == []
    assert m.pending() == ["x", "y"]
    assert m.finish() == ["x", "y"]


# --- multi-line redraws and screen control --------------------------------------------------


def test_multiline_redraw_keeps_each_status_line_once() -> None:
    def block(i: int) -> bytes:
        return b"".join(b"\x1b[2K\x1b[1mtask %d\x1b[0m: step %d\n" % (k, i) for k in range(3))

    data = b"building\n" + block(0)
    data += b"".join(b"\x1b[3A" + block(i) for i in range(1, 5))
    data += b"done\n"
    assert run(data) == ["building", "task 0: step 4", "task 1: step 4", "task 2: step 4", "done"]


def test_cursor_up_never_reaches_committed_lines() -> None:
    m = LineMachine(window=3)
    out = m.feed(b"a\nb\nc\nd\n")  # window is now c, d, and the empty cursor line
    assert out == ["a", "b"]
    out += m.feed(b"\x1b[10AX\n")
    assert out + m.finish() == ["a", "b", "X", "d"]


def test_cursor_position_is_relative_to_window_top() -> None:
    assert run(b"one\ntwo\nthree\x1b[2;2HW\x1b[HO\n") == ["One", "tWo", "three"]
    assert run(b"x\x1b[3;4Hy\n") == ["x", "", "   y"]


def test_erase_in_display_below_and_above() -> None:
    assert run(b"one\ntwo\nthree\x1b[2;2H\x1b[J\n") == ["one", "t"]
    assert run(b"one\ntwo\nthree\x1b[2;2H\x1b[1J\n") == ["", "  o", "three"]


def test_clear_screen_commits_and_continues_on_fresh_line() -> None:
    m = LineMachine()
    assert m.feed(b"one\ntwo\nthr") == []
    assert m.feed(b"\x1b[H\x1b[2J\x1b[3Jfour\n") == ["one", "two", "thr"]
    assert m.committed == 3
    assert m.feed(b"five\n") == []
    assert m.finish() == ["four", "five"]
    assert m.committed == 5


def test_alternate_screen_markers_and_nothing_logged_inside() -> None:
    m = LineMachine()
    out = m.feed(b"before\nprompt> vim\x1b[?1049h\x1b[H\x1b[2Jsecret\r\n~\r\n\x1b[24;1H:q")
    assert out == ["before", "prompt> vim", ENTER_MARKER]
    assert m.alternate_screen
    assert m.pending() == []
    out = m.feed(b"\r\x1b[?1049l\x1b[?1049lafter\n")
    assert out == [EXIT_MARKER]
    assert not m.alternate_screen
    assert m.finish() == ["after"]
    assert run(b"\x1b[?47hx\x1b[?47ly\n\x1b[?1047h\x1b[?1047hz\x1b[?1047l") == [
        ENTER_MARKER,
        EXIT_MARKER,
        "y",
        ENTER_MARKER,
        EXIT_MARKER,
    ]


# --- chunking, encoding, robustness ---------------------------------------------------------

ESCAPY = (
    b"ab\x1b[31mcd\x1b]0;title\x07ef\x1b[2Kgh\x1b(Bij\x1b]8;;http://x\x1b\\kl"
    b"\x1b[12;3Hmn\x1b[?1049h\x1b[?1049lop\x1bPdcs\x1b\\qr\x1b[5Dst\r\n"
)


@pytest.mark.parametrize("cut", range(len(ESCAPY) + 1))
def test_escape_split_across_feeds(cut: int) -> None:
    assert run_chunks([ESCAPY[:cut], ESCAPY[cut:]]) == run_chunks([ESCAPY])


@pytest.mark.parametrize("text", ["é", "日本", "🎉", "naïve 日本 🎉 ok"])
def test_utf8_split_at_every_byte(text: str) -> None:
    data = f"<{text}>\n".encode()
    for cut in range(len(data) + 1):
        m = LineMachine()
        assert m.feed(data[:cut]) + m.feed(data[cut:]) + m.finish() == [f"<{text}>"]
    assert run_chunks([bytes([b]) for b in data])[0] == [f"<{text}>"]


def test_invalid_utf8_becomes_replacement_char() -> None:
    assert run(b"a\xffb\xc3(c\n") == ["a\ufffdb\ufffd(c"]
    assert run(b"tail\xe6\x97") == ["tail\ufffd"]


def test_binary_garbage_never_raises() -> None:
    m = LineMachine(window=4, max_line=100)
    lines: list[str] = []
    for _ in range(50):
        lines += m.feed(bytes(range(256)))
        lines += m.feed(bytes(range(255, -1, -1)))
    lines += m.pending() + m.finish()
    assert lines
    assert not any(c < " " or "\x7f" <= c <= "\x9f" for line in lines for c in line)


def test_partial_escape_is_bounded() -> None:
    m = LineMachine()
    m.feed(b"x\x1b[")
    for _ in range(4):
        m.feed(b"1;" * 4096)
    assert len(m._carry) <= 4096
    assert m.feed(b"Ay\n") == []  # over-long parameter string: sequence ignored
    m.feed(b"\x1b]52;c;")
    for _ in range(4):
        m.feed(b"QUFB" * 4096)
    assert len(m._carry) <= 3  # string bodies are discarded, not buffered
    m.feed(b"\x07z\n")
    assert m.finish() == ["xy", "z"]


def test_prompt_pending_and_unfinished() -> None:
    m = LineMachine()
    assert m.feed(b"Welcome\nname? ") == []
    assert m.pending() == ["Welcome", "name?"]
    assert m.unfinished
    m.feed(b"bob\n")
    assert m.pending() == ["Welcome", "name? bob"]
    assert not m.unfinished
    assert m.finish() == ["Welcome", "name? bob"]
    assert m.pending() == []


def test_unfinished_false_when_cursor_moved_up_to_finished_line() -> None:
    m = LineMachine()
    m.feed(b"s1\ns2\n\x1b[1A")
    assert m.pending() == ["s1", "s2"]
    assert not m.unfinished


def test_window_overflow_commits_in_order() -> None:
    m = LineMachine(window=3)
    out = m.feed(b"".join(b"line %d\n" % i for i in range(10)))
    assert out == [f"line {i}" for i in range(8)]
    assert m.committed == 8
    assert m.pending() == ["line 8", "line 9"]
    out += m.feed(b"line 10\n")
    assert out[-1] == "line 8"
    assert m.committed == 9


def test_finish_commits_everything() -> None:
    m = LineMachine()
    assert m.feed(b"a\nb\n\n\nc") == []
    assert m.finish() == ["a", "b", "", "", "c"]
    assert m.committed == 5
    assert m.finish() == []


def test_max_line_split() -> None:
    assert run(b"abcdefghij\n", max_line=4) == ["abcd", "efgh", "ij"]
    m = LineMachine(max_line=4)
    m.feed(b"ab")
    m.feed(b"cdef\rX")
    assert m.pending() == ["abcd", "Xf"]


def test_huge_line_without_newline_uses_bounded_memory() -> None:
    m = LineMachine(window=8, max_line=65536)
    committed = 0
    chunk = b"0123456789abcdef" * 4096  # 64 KiB
    for _ in range(320):  # 20 MiB, no newline
        out = m.feed(chunk)
        assert all(len(line) == 65536 for line in out)
        committed += len(out)
        assert len(m._win) <= 8
        assert sum(len(line) for line in m._win) <= 8 * 65536
    assert committed == 320 - 8
    assert len(m.finish()) == 8


def test_many_tabs_stay_bounded() -> None:
    m = LineMachine(window=4, max_line=1000)
    for _ in range(100):
        m.feed(b"\t" * 10000)
    assert sum(len(line) for line in m._win) <= 4 * 1000 + 8


def test_npm_and_webpack_style_capture() -> None:
    spin = "⠋⠙⠹⠸".encode()
    frames = [spin[i : i + 3] for i in range(0, len(spin), 3)]
    chunks = [
        b"\x1b[?25l",
        b"\x1b[1G\x1b[0K" + frames[0] + b" idealTree:app: \x1b[7msill\x1b[27m idealTree buildDeps",
        b"\x1b[1G\x1b[0K" + frames[1] + b" reify:lodash: \x1b[32mhttp\x1b[39m fetch GET 200",
        b"\x1b[1G\x1b[0K" + frames[2],
        b"\x1b[1G\x1b[0K\n",
        b"added 120 packages, and audited 121 packages in 3s\n\x1b[?25h",
        b"\x1b[32m<i>\x1b[39m \x1b[1m[webpack-dev-server]\x1b[22m Project is running at:\r\n",
        b"\r\x1b[K10% building 1/3 modules 2 active ...src/index.js",
        b"\r\x1b[K45% building 12/20 modules 8 active ...node_modules/react/index.js",
        b"\r\x1b[K100%\r\x1b[K",
        b"webpack 5.90.0 compiled \x1b[1m\x1b[32msuccessfully\x1b[39m\x1b[22m in 1234 ms\r\n",
    ]
    expected = [
        "",
        "added 120 packages, and audited 121 packages in 3s",
        "<i> [webpack-dev-server] Project is running at:",
        "webpack 5.90.0 compiled successfully in 1234 ms",
    ]
    assert run_chunks(chunks)[0] == expected
    assert run(b"".join(chunks)) == expected


# --- chunking equivalence (property) --------------------------------------------------------

FRAGMENTS = [
    b"abc",
    b"hello world",
    b" ",
    b"  ",
    b"\n",
    b"\r",
    b"\r\n",
    b"\b",
    b"\t",
    b"\x07",
    b"\x18",
    b"\x7f",
    b"\x1b",
    b"\x1b[",
    b"\x1b]",
    b"\x1bP",
    b"\x1b\\",
    b"\x1b(",
    b"[",
    b"]",
    b";",
    b"0",
    b"1",
    b"12",
    b"?",
    b"m",
    b"A",
    b"K",
    b"H",
    b"\x1b[31m",
    b"\x1b[0m",
    b"\x1b[2A",
    b"\x1b[B",
    b"\x1b[3C",
    b"\x1b[2D",
    b"\x1b[E",
    b"\x1b[F",
    b"\x1b[5G",
    b"\x1b[2;3H",
    b"\x1b[H",
    b"\x1b[K",
    b"\x1b[1K",
    b"\x1b[2K",
    b"\x1b[J",
    b"\x1b[1J",
    b"\x1b[2J",
    b"\x1b[?25l",
    b"\x1b[?1049h",
    b"\x1b[?1049l",
    b"\x1b[?47h",
    b"\x1b[?47l",
    b"\x1b]0;title\x07",
    b"\x1b]8;;u\x1b\\",
    b"\x1b7",
    b"\x1b8",
    b"\x1b(B",
    "é".encode(),
    "日本".encode(),
    "🎉".encode(),
    b"\xe6",
    b"\x97",
    b"\xff",
    b"\xf0\x9f",
]

streams = st.one_of(
    st.binary(max_size=300),
    st.lists(st.sampled_from(FRAGMENTS), max_size=60).map(b"".join),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=4)), max_size=60).map(
        b"".join
    ),
)
configs = st.sampled_from([{}, {"window": 3, "max_line": 7, "tab_size": 4}, {"window": 1}])


@settings(max_examples=400, deadline=None, database=None)
@given(data=streams, cuts=st.lists(st.integers(min_value=0), max_size=20), config=configs)
def test_chunking_does_not_change_output(
    data: bytes, cuts: list[int], config: dict[str, int]
) -> None:
    whole = run_chunks([data], **config)
    assert run_chunks([bytes([b]) for b in data], **config) == whole
    assert run_chunks(split_at(data, cuts), **config) == whole
    assert all("\x1b" not in line for line in whole[0])


def test_erase_from_home_commits_like_clear_screen() -> None:
    """Node's console.clear() and Vite write ESC[1;1H ESC[0J: the lines above are history."""
    machine = LineMachine()
    committed = machine.feed(b"ERROR: build failed\r\nmore\r\n\x1b[1;1H\x1b[0Jwatching\r\n")
    assert committed == ["ERROR: build failed", "more"]
    assert machine.finish() == ["watching"]
