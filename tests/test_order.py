"""The order of stdout and stderr in the combined log, when each has its own terminal.

The unit tests drive `Interleaving` by hand. The end-to-end test makes the case the kernel gets
wrong: the reader is stalled while the child writes a burst to stdout and then a traceback to
stderr, so when it reads again, both terminals are readable, and a wakeup that stops in the middle
of the burst (the kernel hands a terminal's reader at most 4 KiB at a time, and on a loaded machine
moves the rest late) finds the whole traceback readable too.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import in_memory
import pytest
from conftest import fixture_cmd
from fastmcp import Client
from hypothesis import given
from hypothesis import strategies as st

from persistproc import run
from persistproc.interleave import BACKLOG_BYTES, Interleaving

FULL = b"x" * 4095
TOKEN_ENV = "PERSISTPROC_TEST_ORDER_TOKEN"


def recorder() -> tuple[Interleaving, list[tuple[str, bytes]]]:
    ingested: list[tuple[str, bytes]] = []
    return Interleaving(lambda stream, data: ingested.append((stream, data))), ingested


def test_a_line_waits_behind_a_burst_until_the_burst_is_read_dry() -> None:
    order, ingested = recorder()
    order.add("stdout", FULL)
    order.read_dry("stdout", len(FULL))
    order.add("stderr", b"Traceback\n")
    order.read_dry("stderr", 10)
    assert order.holding and ingested == [("stdout", FULL)]
    order.add("stdout", b"rest of the burst\n")
    assert ingested[-1] == ("stdout", b"rest of the burst\n")  # ahead of the held line
    order.read_dry("stdout", 18)
    assert not order.holding
    assert [data for _, data in ingested] == [FULL, b"rest of the burst\n", b"Traceback\n"]


def test_small_output_is_never_held() -> None:
    order, ingested = recorder()
    for stream in ["stdout", "stderr", "stdout", "stderr"]:
        order.add(stream, b"a line\n")
        order.read_dry(stream, 7)
        assert not order.holding
    assert len(ingested) == 4


def test_a_held_stream_keeps_its_own_order_behind_the_burst() -> None:
    order, ingested = recorder()
    order.add("stdout", FULL)
    order.read_dry("stdout", BACKLOG_BYTES)
    order.add("stderr", b"one\n")
    order.read_dry("stderr", 4)
    order.add("stderr", b"two\n")
    order.read_dry("stderr", 4)
    assert ingested == [("stdout", FULL)]
    order.read_dry("stdout", 0)  # the burst's terminal ended
    assert ingested[1:] == [("stderr", b"one\n"), ("stderr", b"two\n")]


def test_two_bursts_at_once_the_held_one_waits_for_the_other() -> None:
    order, ingested = recorder()
    order.add("stdout", FULL)
    order.read_dry("stdout", len(FULL))
    order.add("stderr", FULL)  # held behind stdout, and itself backlogged
    order.read_dry("stderr", len(FULL))
    assert order.holding
    order.add("stdout", b"end\n")  # stdout is the one the others wait for: not held
    assert ingested == [("stdout", FULL), ("stdout", b"end\n")]
    order.read_dry("stdout", 4)
    assert ingested[-1] == ("stderr", FULL) and not order.holding


def test_a_deadline_releases_and_stops_the_holding() -> None:
    order, ingested = recorder()
    order.add("stdout", FULL)
    order.read_dry("stdout", len(FULL))  # a burst that happens to end on a large read
    order.add("stderr", b"late\n")
    order.expire()
    assert ingested[-1] == ("stderr", b"late\n") and not order.holding
    order.add("stderr", b"later\n")  # no longer held behind stdout's old burst
    assert ingested[-1] == ("stderr", b"later\n")


@given(
    st.lists(
        st.tuples(st.sampled_from(["stdout", "stderr"]), st.integers(0, 5000), st.booleans()),
        max_size=40,
    )
)
def test_every_chunk_is_ingested_once_each_stream_in_order(
    reads: list[tuple[str, int, bool]],
) -> None:
    order, ingested = recorder()
    sent: dict[str, list[bytes]] = {"stdout": [], "stderr": []}
    for number, (stream, size, expire) in enumerate(reads):
        if size:
            chunk = f"{number}:".encode() + b"." * size
            sent[stream].append(chunk)
            order.add(stream, chunk)
        order.read_dry(stream, size)
        if expire:
            order.expire()
    order.release()
    for stream, chunks in sent.items():
        assert [data for s, data in ingested if s == stream] == chunks


@pytest.fixture
async def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Client[Any]]:
    async with in_memory.serve(tmp_path / "data", monkeypatch, TOKEN_ENV) as (connected, _, _):
        yield connected


def stall_until(path: Path, timeout: float = 15.0) -> None:
    """Block the calling thread, which is the event loop's, until `path` exists."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.002)


async def call(client: Client[Any], tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert isinstance(result.structured_content, dict), result
    return result.structured_content


@pytest.mark.parametrize("lines", [40, 120])
async def test_a_traceback_after_a_burst_stays_last_when_the_reader_lags(
    client: Client[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: int
) -> None:
    # One read per wakeup: the wakeup ends in the middle of the burst, as it does when the
    # kernel moves the burst into the terminal late, on a loaded machine.
    monkeypatch.setattr(run, "READS_PER_WAKEUP", 1)
    gate = tmp_path / "gate"
    gate.mkdir()
    command = fixture_cmd("flood", str(lines), "--gate", str(gate))
    started = await call(
        client, "start_process", command=command, working_directory=str(tmp_path), wait_for="READY"
    )
    # The test runs on the server's event loop: while it waits here, nothing is read, and the
    # child writes its whole burst and then the traceback.
    (gate / "go").touch()
    stall_until(gate / "done")
    name = started["name"]
    status = await call(client, "get_process_status", name=name)
    deadline = time.monotonic() + 15
    while status["status"] == "running":
        assert time.monotonic() < deadline, status
        waited = await call(client, "wait_for_output", name=name, pattern="(?!)", timeout=0.2)
        status = waited["process"]
    page = await call(client, "get_process_output", name=name, lines=lines + 10)
    text = page["text"].split("\n")
    numbered = [line for line in text if line.startswith("line ")]
    assert numbered == [f"line {n:06d} ok the quick brown fox jumps" for n in range(1, lines + 1)]
    assert text[-2:] == ['    raise ValueError("boom")', "ValueError: boom"], text[-8:]
    assert text.index("Traceback (most recent call last):") == len(text) - 6
