"""A run's screen as get_process_screen reads it: taken again only when output or the size changed,
and the same for an earlier server's run, whose log is read once."""

from __future__ import annotations

from pathlib import Path

from persistproc.recording import Recording


async def test_the_screen_follows_output_and_size(tmp_path: Path) -> None:
    recording = Recording(tmp_path, 20, 4, live=True)
    try:
        recording.ingest("stdout", b"first\r\n")
        shot = await recording.screen()
        assert shot.lines[0] == "first"
        assert await recording.screen() is shot  # nothing new: the same snapshot
        recording.ingest("stdout", b"second\r\n")
        shot = await recording.screen()
        assert shot.lines[:2] == ["first", "second"]
        recording.resize(10, 3)
        resized = await recording.screen()
        assert (resized.columns, resized.rows) == (10, 3) and resized is not shot
    finally:
        recording.finish()


async def test_an_earlier_servers_run_shows_its_last_screen(tmp_path: Path) -> None:
    live = Recording(tmp_path, 20, 4, live=True)
    live.ingest("stdout", b"one\r\ntwo\r\n\x1b[31mthree\x1b[0m\r\n")
    live.finish()
    earlier = Recording(tmp_path, 20, 4, live=False)
    shot = await earlier.screen()
    assert shot.lines[:3] == ["one", "two", "three"]
    assert await earlier.screen() is shot
    earlier.resize(10, 2)
    assert (await earlier.screen()).lines == ["three", ""]
