"""The line machine's shortcuts give the same lines as the step-by-step path: frames drawn over
each other with carriage returns, erased and rewritten lines of a redrawn block, and the
control-character check of ASCII text."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from persistproc.cleantext import LineMachine


def whole(data: bytes, max_line: int = 65536) -> list[str]:
    machine = LineMachine(window=4, max_line=max_line)
    return machine.feed(data) + machine.finish()


def byte_by_byte(data: bytes, max_line: int = 65536) -> list[str]:
    """One byte per feed: a carriage return never arrives together with the frame after it."""
    machine = LineMachine(window=4, max_line=max_line)
    out: list[str] = []
    for k in range(len(data)):
        out += machine.feed(data[k : k + 1])
    return out + machine.finish()


def test_later_frame_wins_where_it_reaches() -> None:
    assert whole(b"\rlonger text\rshort\n") == ["shortr text"]
    assert whole(b"\r[#...] 10%\r[##..] 20%\r[####] 100%\n") == ["[####] 100%"]


def test_frame_overwrites_text_before_the_first_return() -> None:
    assert whole(b"downloading\rdone\n") == ["doneloading"]


def test_cursor_ends_after_the_last_frame() -> None:
    assert whole(b"\rabcdef\rab\x1b[Kz\n") == ["abz"]


def test_frames_longer_than_a_line_are_split_as_before() -> None:
    data = b"\r" + b"a" * 10 + b"\r" + b"b" * 12 + b"\rc\n"
    assert whole(data, max_line=8) == byte_by_byte(data, max_line=8)


def test_rewritten_block_lines() -> None:
    data = b"a: 1\nb: 1\n\x1b[2A\x1b[2Ka: 2\n\x1b[2K\n"
    assert whole(data) == ["a: 2", ""]
    assert whole(b"abc\x1b[2D\x1b[2Kz\n") == [" z"]  # the cursor stays where it was


def test_c1_and_c0_controls_still_take_the_slow_path() -> None:
    assert whole("a\x85b\n".encode()) == ["ab"]
    assert whole(b"ab\x07c\n") == ["abc"]
    assert whole(b"ab\x08c\n") == ["ac"]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [b"a", b"bb", b"ccc ", b"\r", b"\n", b"\t", b"\b", b"\x1b[K", b"\x1b[2K", b"\x1b[2A"]
        )
    )
)
def test_same_lines_whatever_the_chunking(pieces: list[bytes]) -> None:
    data = b"".join(pieces)
    assert whole(data, max_line=6) == byte_by_byte(data, max_line=6)
    assert whole(data) == byte_by_byte(data)


REDRAWS = st.builds(
    lambda up, lines: b"\x1b[" + up + b"A" + b"".join(b"\x1b[2K" + line + b"\n" for line in lines),
    st.sampled_from([b"", b"0", b"1", b"2", b"3", b"02", b"123456789"]),
    st.lists(st.sampled_from([b"", b"a", b"bb", b"ccc ", b"dddddd"]), min_size=1, max_size=4),
)


def test_a_block_redrawn_many_times_shows_its_last_drawing() -> None:
    block = b"".join(b"\x1b[2A\x1b[2Kbuild %d\n\x1b[2Ktest %d\n" % (n, n) for n in range(5))
    assert whole(b"build 0\ntest 0\n" + block + b"done\n") == ["build 4", "test 4", "done"]
    assert whole(b"x\nabc\x1b[1A\x1b[2Kz\n") == ["   z", "abc"]  # the column is kept...
    assert whole(b"x\nabc\x1b[1A\x1b[2Kz\n\x1b[1A\x1b[2Ky\n") == ["y", "abc"]  # ...once


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(
            REDRAWS,
            st.sampled_from([b"a", b"line\n", b"\n", b"\r", b"\x1b[2K", b"\x1b[1A", b"xyz"]),
        ),
        max_size=12,
    )
)
def test_redrawn_blocks_give_the_lines_of_the_step_by_step_path(pieces: list[bytes]) -> None:
    data = b"".join(pieces)
    assert whole(data, max_line=6) == byte_by_byte(data, max_line=6)
    assert whole(data, max_line=30) == byte_by_byte(data, max_line=30)
    assert whole(data) == byte_by_byte(data)


def test_a_block_starting_far_right_is_split_as_the_step_by_step_path_splits_it() -> None:
    """The first redraw starts at the cursor's column: past the line width, its line is split."""
    data = b"x\n" + b"y" * 29 + b"\x1b[1A\x1b[2Kab\n\x1b[1A\x1b[2K\n"
    assert whole(data, max_line=30) == byte_by_byte(data, max_line=30)
    data = b"x\n\x1b[65530G\x1b[1A\x1b[2Kabcdefghij\n\x1b[1A\x1b[2K\n"
    assert whole(data) == byte_by_byte(data)
