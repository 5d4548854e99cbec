"""Every MCP tool, called with generated arguments (hypothesis): wrong types, huge strings, unicode,
negative and huge numbers, unknown names and pids, extra and missing keys, invalid and catastrophic
regexes. Every call must return a result or a clear tool error, the server must stay up, and a
sentinel process started before must keep running with its output intact.

The tools are listed from the server, so a new tool is fuzzed without changing this file. Most
examples go through fastmcp's in-memory client; a smaller run goes through the real HTTP transport.
The arguments and their guards are in fuzz_arguments.py, the synchronous client in fuzz_client.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Server, fixture_cmd
from fastmcp import Client as MemoryClient
from fuzz_arguments import Targets
from fuzz_client import Fuzzed, LoopThread, shown, text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client as HttpClient
from survivors import TAG_ENV, kill_tagged, new_tag

from persistproc.server.tools import build_mcp
from persistproc.supervisor import Supervisor

REGEX_TARGET_LINE = "a" * 30 + "!"  # what catastrophic patterns take exponential time on


# An exception's type name (ValueError, KeyError...) in a message means it leaked as it was.
LEAKED_TYPE = re.compile(r"\b[A-Z][A-Za-z]*(Error|Exception)\b|Traceback|internal error", re.I)


def check_result(tool: str, arguments: dict[str, Any], result: Any) -> None:
    described = shown(arguments)
    if result.is_error:
        message = text(result)
        assert message.strip(), f"{tool}({described}) failed without a message"
        leaked = LEAKED_TYPE.search(message.replace("validation error", ""))
        assert not leaked, f"{tool}({described}) leaked {leaked.group(0)!r}: {message[:500]}"
    else:
        assert isinstance(result.structured_content, dict), f"{tool}({described}): {result}"


# ----- the protected processes ------------------------------------------------------------------


def start_protected(fuzzed: Fuzzed, directory: Path) -> tuple[dict[str, Any], str, set[int]]:
    """The sentinel (an echo loop) and the regex target (ended, lines catastrophic patterns choke
    on); returns the sentinel's info, its output so far, and both pids."""
    sentinel = fuzzed.ok(
        "start_process",
        command=fixture_cmd("echo"),
        name="sentinel",
        working_directory=str(directory),
        wait_for="^READY$",
        wait_timeout=20,
    )
    assert sentinel["ready"] is True, sentinel
    target = fuzzed.ok(
        "start_process",
        command=f"for i in 1 2 3 4 5; do echo {REGEX_TARGET_LINE}; done",
        name="regex-target",
        working_directory=str(directory),
    )
    fuzzed.ok("wait_for_output", name="regex-target", pattern="(?!)", since=0, timeout=20)
    restore_targets(fuzzed, directory, [])
    before = fuzzed.ok("get_process_output", name="sentinel", since=0)["text"]
    return sentinel, before, {sentinel["pid"], target["pid"]}


def restore_targets(fuzzed: Fuzzed, directory: Path, listed: list[dict[str, Any]]) -> None:
    """Processes that are fair game for the fuzzer, one that has ended and one that runs, started
    again when a generated call removed them (calls on unknown names teach little)."""
    known = {p["name"] for p in listed}
    for name, command in (("fuzz-a", "echo fuzz-a"), ("fuzz-b", "sleep 1000")):
        if name not in known:
            fuzzed.ok("start_process", command=command, name=name, working_directory=str(directory))


def check_protected(fuzzed: Fuzzed, sentinel: dict[str, Any], before: str) -> None:
    status = fuzzed.ok("get_process_status", name="sentinel")
    assert status["status"] == "running" and status["pid"] == sentinel["pid"], status
    assert status["restarts"] == 0, status
    assert fuzzed.ok("get_process_output", name="sentinel", since=0)["text"] == before
    fuzzed.ok("send_input", name="sentinel", text="still here", keys=["enter"])
    waited = fuzzed.ok(
        "wait_for_output", name="sentinel", pattern="^echo: still here$", since=0, timeout=20
    )
    assert waited["matched"] is True, waited
    target = fuzzed.ok("get_process_output", name="regex-target", since=0)["text"]
    assert target == "\n".join([REGEX_TARGET_LINE] * 5)


def fuzz(fuzzed: Fuzzed, directory: Path, examples: int) -> Counter[str]:
    """Run `examples` generated calls; return how many each tool got."""
    sentinel, before, protected_pids = start_protected(fuzzed, directory)
    tools = fuzzed.tools()
    assert len(tools) >= 10, sorted(tools)
    targets = Targets(directory, protected_pids)
    per_tool = {
        (name, typed): targets.arguments(name, schema, typed)
        for name, schema in tools.items()
        for typed in (False, True)
    }
    cases: Counter[str] = Counter()
    slowest: list[Any] = [0.0, ""]

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def one_call(data: st.DataObject) -> None:
        tool = data.draw(st.sampled_from(sorted(tools)), label="tool")
        typed = data.draw(st.booleans(), label="typed")
        arguments = data.draw(per_tool[tool, typed], label="arguments")
        asked = time.monotonic()
        result = fuzzed.call(tool, arguments)
        took = time.monotonic() - asked
        if took > slowest[0]:
            slowest[:] = [took, f"{tool}({shown(arguments)}) -> {text(result)[:300]}"]
        check_result(tool, arguments, result)
        cases[tool] += 1
        cases["(errors)" if result.is_error else "(results)"] += 1
        listed = fuzzed.ok("list_processes")["processes"]  # still answering
        restore_targets(fuzzed, directory, listed)

    one_call()
    print(f"\nslowest call: {slowest[0]:.2f} s: {slowest[1]}")
    check_protected(fuzzed, sentinel, before)
    return cases


# ----- the two runs -----------------------------------------------------------------------------


@pytest.fixture
def runner() -> Iterator[LoopThread]:
    loop_thread = LoopThread()
    try:
        yield loop_thread
    finally:
        loop_thread.close()


@pytest.fixture
def tagged_children(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A tag in this process's environment: every child of an in-process supervisor inherits it."""
    tag = new_tag()
    monkeypatch.setenv(TAG_ENV, tag)
    yield tag


def test_fuzz_every_tool_in_memory(
    runner: LoopThread, tagged_children: str, tmp_path: Path
) -> None:
    supervisor = Supervisor(tmp_path / "data")
    runner.run(supervisor.load())

    @contextlib.asynccontextmanager
    async def connect() -> AsyncIterator[Any]:
        async with MemoryClient(build_mcp(supervisor)) as client:
            yield client

    fuzzed = Fuzzed(runner, connect)
    try:
        cases = fuzz(fuzzed, tmp_path, examples=1000)
    finally:
        fuzzed.close()
        try:
            runner.run(supervisor.shutdown())
        finally:
            leftovers = kill_tagged(tagged_children)
    print(
        f"\nin memory: {cases['(errors)'] + cases['(results)']} cases: {dict(sorted(cases.items()))}"
    )
    assert cases["(errors)"] + cases["(results)"] >= 1000
    assert not leftovers, leftovers


def test_fuzz_every_tool_over_http(runner: LoopThread, server: Server, tmp_path: Path) -> None:
    fuzzed = Fuzzed(runner, lambda: HttpClient(server.url))
    try:
        cases = fuzz(fuzzed, tmp_path, examples=150)
    finally:
        fuzzed.close()
    print(
        f"\nover HTTP: {cases['(errors)'] + cases['(results)']} cases: {dict(sorted(cases.items()))}"
    )
    assert server.proc.poll() is None, "the server died"
    assert cases["(errors)"] + cases["(results)"] >= 150


# ----- slow patterns ----------------------------------------------------------------------------


async def test_slow_patterns_do_not_hold_up_other_calls(
    tagged_children: str, tmp_path: Path
) -> None:
    """More catastrophic greps and waits at once than the default thread pool has threads: each
    is bounded in time, and meanwhile stop, status and plain reads answer at once (the scans run
    on threads of their own)."""
    supervisor = Supervisor(tmp_path / "data")
    await supervisor.load()
    slow = "(a|aa)+$"  # about 50 ms a line (the per-line regex time limit) on REGEX_TARGET_LINE
    try:
        async with MemoryClient(build_mcp(supervisor)) as client:

            async def call(tool: str, **arguments: Any) -> dict[str, Any]:
                result = await client.call_tool(tool, arguments, raise_on_error=False)
                assert not result.is_error, f"{tool}: {text(result)}"
                data = result.structured_content
                assert isinstance(data, dict)
                return data

            lines = 100  # five seconds of scanning per grep
            common = {"working_directory": str(tmp_path)}
            script = f"for i in $(seq {lines}); do echo {REGEX_TARGET_LINE}; done"
            await call("start_process", command=script, name="target", **common)
            await call("wait_for_output", name="target", pattern="(?!)", since=0, timeout=20)
            await call("start_process", command="sleep 1000", name="bystander", **common)
            burst = (os.cpu_count() or 1) + 4 + 2  # the default pool's size, and more
            scans = [
                call("get_process_output", name="target", grep=slow, lines=10_000)
                for _ in range(burst)
            ] + [
                call("wait_for_output", name="target", pattern=slow, since=0, timeout=0)
                for _ in range(4)
            ]
            started = time.monotonic()
            scanning = asyncio.gather(*scans)
            await asyncio.sleep(0.2)  # let the scans take their threads
            for tool in ("get_process_output", "get_process_status", "stop_process"):
                asked = time.monotonic()
                await call(tool, name="bystander")
                took = time.monotonic() - asked
                assert took < 2.5, f"{tool} waited {took:.1f} s behind slow patterns"
            results = await scanning
            elapsed = time.monotonic() - started
            assert all(r.get("line_count") == 0 or r.get("matched") is False for r in results)
            # each scan is bounded: at most lines x 50 ms, four at a time, generous for load
            assert elapsed < (len(scans) / 4 + 1) * lines * 0.05 * 4 + 10, elapsed
    finally:
        try:
            await supervisor.shutdown()
        finally:
            leftovers = kill_tagged(tagged_children)
    assert not leftovers, leftovers
