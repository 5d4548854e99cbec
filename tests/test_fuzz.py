"""Every MCP tool, called with generated arguments (hypothesis): wrong types, huge strings, unicode,
negative and huge numbers, unknown names and pids, extra and missing keys, invalid and catastrophic
regexes. Every call must return a result or a clear tool error, the server must stay up, and a
sentinel process started before must keep running with its output intact.

The tools are listed from the server, so a new tool is fuzzed without changing this file. Most
examples go through fastmcp's in-memory client; a smaller run goes through the real HTTP transport.

Guards, so that generated input cannot do harm or stall the run:
- start_process only runs a safe set of commands (`true`, echo/printf of generated text quoted by
  shlex, a short sleep, a program that does not exist); names, directories and environments are free,
  except environment variables that make a shell or the loader run code.
- The sentinel and the regex target are never the target of a tool that changes a process.
- A waiting time within the accepted range is at most 0.2 s (a wait for a line that never comes
  lasts that long); out-of-range values of every kind are still generated.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import math
import os
import re
import shlex
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from conftest import Server, fixture_cmd
from fastmcp import Client as MemoryClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client as HttpClient
from survivors import TAG_ENV, kill_tagged, new_tag

from persistproc.server.tools import build_mcp
from persistproc.supervisor import Supervisor

T = TypeVar("T")
PROTECTED = ("sentinel", "regex-target")
# Tools that only read: they may look at the protected processes. Any other tool, including one
# added later, is treated as one that changes what it targets.
READ_ONLY = {
    "list_processes",
    "get_process_status",
    "get_process_output",
    "get_process_screen",
    "wait_for_output",
}
CALL_LIMIT = 20.0  # seconds one call may take before the run counts as hung
CATASTROPHIC = ["(a+)+$", "(a|aa)+$", "(a*)*b", "(.*a){20}", "((a+)+)+!x", "(?:a|a)*$"]
INVALID_REGEX = ["(", ")", "[", "*", "a{2,1}", "(?P<x", "\\", "(?<=a+)b", "[z-a]", "(?", "a**"]
# Environment variables that make bash or the dynamic loader run something of their choosing.
UNSAFE_ENV = ("BASH_ENV", "ENV", "BASH_FUNC", "LD_", "PROMPT_COMMAND", "SHELLOPTS", "PERSISTPROC")
ABSENT = object()  # a parameter left out of a call
REGEX_TARGET_LINE = "a" * 30 + "!"  # what catastrophic patterns take exponential time on


# ----- strategies -------------------------------------------------------------------------------

huge_text = st.builds(
    lambda piece, count: piece * count,
    st.text(min_size=1, max_size=4),
    st.integers(min_value=1000, max_value=150_000),
)
any_text = st.one_of(st.text(max_size=40), huge_text, st.sampled_from(["", " ", "\x00", "\ud7ff"]))
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 2**31, 2**63, -(2**63), 10**30]),
    st.floats(allow_nan=False, allow_infinity=False),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, any_text)
wild = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=8,
)


def _bounded_wait(value: Any) -> bool:
    """False for a number that would be accepted as a long wait."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return True
    return not 0.2 < value <= 3600 or math.isnan(value)


def _safe_env_name(name: str) -> bool:
    return not name.upper().startswith(UNSAFE_ENV)


def commands() -> st.SearchStrategy[Any]:
    quoted = st.text(max_size=60).map(shlex.quote)
    return st.one_of(
        st.just("true"),
        st.just("sleep 0.1"),
        quoted.map(lambda text: f"echo {text}"),
        quoted.map(lambda text: f"printf '%s\\n' {text}"),
        quoted.map(lambda text: f"echo {text} >&2; exit 3"),
        st.just("persistproc-fuzz-no-such-program --flag"),
        st.just(""),
        wild,  # wrong types: refused before anything runs
    )


def plausible(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of the type the schema names (then checked by the tool itself)."""
    options = schema.get("anyOf", [schema])
    strategies: list[st.SearchStrategy[Any]] = []
    for option in options:
        kind = option.get("type")
        if "enum" in option:
            strategies.append(st.sampled_from(option["enum"]))
        elif kind == "string":
            strategies.append(any_text)
        elif kind == "integer":
            strategies.append(st.integers(min_value=-(2**65), max_value=2**65))
        elif kind == "number":
            strategies.append(numbers)
        elif kind == "boolean":
            strategies.append(st.booleans())
        elif kind == "null":
            strategies.append(st.none())
        elif kind == "array":
            strategies.append(st.lists(any_text, max_size=5))
        elif kind == "object":
            strategies.append(st.dictionaries(any_text, any_text, max_size=4))
    return st.one_of(*strategies) if strategies else wild


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """good four times in five, else bad."""
    return st.integers(min_value=0, max_value=4).flatmap(lambda n: bad if n == 0 else good)


class Targets:
    """What the fuzzer knows of the server: protected names and pids, and names it has used."""

    def __init__(self, tmp: Path, protected_pids: set[int]) -> None:
        self.tmp = tmp
        self.protected_pids = protected_pids

    def argument(
        self, tool: str, key: str, schema: dict[str, Any], typed: bool
    ) -> st.SearchStrategy[Any]:
        """A value of the right type (so calls get past the schema into the tools); unless typed,
        one in five times anything at all."""
        changes = tool not in READ_ONLY
        names = ["fuzz-a", "fuzz-b", "no-such-process", *([] if changes else PROTECTED)]
        if key == "command":
            value: st.SearchStrategy[Any] = commands()
        elif key in ("pattern", "grep", "wait_for"):
            value = st.one_of(
                st.sampled_from(CATASTROPHIC + INVALID_REGEX + ["READY", "^a+!$", "."]), any_text
            )
        elif key == "name":
            value = st.one_of(st.sampled_from(names), st.sampled_from(names), any_text)
        elif key == "working_directory":
            value = st.one_of(
                st.sampled_from([str(self.tmp), "/", "relative/dir", "/no/such/dir", "~"]),
                any_text,
            )
        elif key == "environment":
            value = st.dictionaries(
                st.text(min_size=1, max_size=20).filter(_safe_env_name),
                st.one_of(any_text, wild),
                max_size=4,
            )
        else:
            value = plausible(schema)
        if not typed:
            value = mostly(value, wild)
        if "timeout" in key or key == "wait_for":
            value = value.filter(_bounded_wait)
        if changes:
            value = value.filter(self._not_protected)
        return value

    def _not_protected(self, value: Any) -> bool:
        if isinstance(value, str):
            return value not in PROTECTED
        if isinstance(value, int) and not isinstance(value, bool):
            return value not in self.protected_pids
        return True

    def arguments(
        self, tool: str, schema: dict[str, Any], typed: bool
    ) -> st.SearchStrategy[dict[str, Any]]:
        """Each known parameter present four times in five (so required ones go missing too), and
        now and then an unknown one. Typed: every value of its type, required ones present, no
        unknown keys."""
        properties: dict[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", [])) if typed else set()
        # a left-out timeout means the default wait (30 s) on a process that may run for ever
        required |= {key for key in properties if "timeout" in key}
        present = {
            key: self.argument(tool, key, sub, typed)
            if key in required
            else mostly(self.argument(tool, key, sub, typed), st.just(ABSENT))
            for key, sub in sorted(properties.items())
        }
        extra = st.dictionaries(
            st.text(min_size=1, max_size=12).filter(lambda k: k not in properties),
            wild,
            min_size=1,
            max_size=2,
        )
        return st.builds(
            lambda known, unknown: {
                **unknown,
                **{k: v for k, v in known.items() if v is not ABSENT},
            },
            st.fixed_dictionaries(present),
            st.just({}) if typed else mostly(st.just({}), extra),
        )


# ----- running a client on a loop of its own ------------------------------------------------------


class LoopThread:
    """An event loop in a thread, so that hypothesis's synchronous examples can call async code.
    The client's context is entered and left by one task of that loop, as anyio requires."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz-loop", daemon=True)
        self.thread.start()

    def run(self, coroutine: Awaitable[T], timeout: float = CALL_LIMIT) -> T:
        async def wrapped() -> T:
            return await coroutine

        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result(timeout)

    def tasks(self) -> str:
        """Where each task of the loop waits: for a message when a call hangs."""

        async def describe() -> str:
            out = io.StringIO()
            for task in asyncio.all_tasks():
                task.print_stack(limit=8, file=out)
            return out.getvalue()

        return asyncio.run_coroutine_threadsafe(describe(), self.loop).result(10)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class Fuzzed:
    """A connected client (in memory or over HTTP) held open by one task until close()."""

    def __init__(self, runner: LoopThread, connect: Callable[[], Any]) -> None:
        self.runner = runner
        self.client: Any = None
        self.cases: Counter[str] = Counter()
        self._opened = threading.Event()
        self._done: asyncio.Event | None = None
        self._task = asyncio.run_coroutine_threadsafe(self._hold(connect), runner.loop)
        assert self._opened.wait(30), "the client did not connect"

    async def _hold(self, connect: Callable[[], Any]) -> None:
        self._done = asyncio.Event()
        async with connect() as client:
            self.client = client
            self._opened.set()
            await self._done.wait()

    def close(self) -> None:
        assert self._done is not None
        self.runner.loop.call_soon_threadsafe(self._done.set)
        self._task.result(30)

    def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        async def go() -> Any:
            if isinstance(self.client, MemoryClient):
                return await self.client.call_tool(tool, arguments, raise_on_error=False)
            return await self.client.call_tool(tool, arguments)

        try:
            return self.runner.run(go())
        except TimeoutError:
            raise AssertionError(
                f"{tool}({_shown(arguments)}) did not answer in {CALL_LIMIT:g} s:\n"
                + self.runner.tasks()
            ) from None

    def ok(self, tool: str, **arguments: Any) -> dict[str, Any]:
        result = self.call(tool, arguments)
        assert not result.is_error, f"{tool}({arguments}): {_text(result)}"
        data = result.structured_content
        assert isinstance(data, dict), result
        return data

    def tools(self) -> dict[str, dict[str, Any]]:
        listed = self.runner.run(self.client.list_tools())
        listed = getattr(listed, "tools", listed)  # the MCP SDK wraps the list, fastmcp does not
        return {tool.name: tool.input_schema for tool in listed}


def _text(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


# An exception's type name (ValueError, KeyError...) in a message means it leaked as it was.
LEAKED_TYPE = re.compile(r"\b[A-Z][A-Za-z]*(Error|Exception)\b|Traceback|internal error", re.I)


def _shown(arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (v[:80] + "…" if isinstance(v, str) and len(v) > 80 else v) for k, v in arguments.items()
    }


def check_result(tool: str, arguments: dict[str, Any], result: Any) -> None:
    shown = _shown(arguments)
    if result.is_error:
        message = _text(result)
        assert message.strip(), f"{tool}({shown}) failed without a message"
        leaked = LEAKED_TYPE.search(message.replace("validation error", ""))
        assert not leaked, f"{tool}({shown}) leaked {leaked.group(0)!r}: {message[:500]}"
    else:
        assert isinstance(result.structured_content, dict), f"{tool}({shown}): {result}"


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
            slowest[:] = [took, f"{tool}({_shown(arguments)}) -> {_text(result)[:300]}"]
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
        cases = fuzz(fuzzed, tmp_path, examples=60)
    finally:
        fuzzed.close()
    print(
        f"\nover HTTP: {cases['(errors)'] + cases['(results)']} cases: {dict(sorted(cases.items()))}"
    )
    assert server.proc.poll() is None, "the server died"
    assert cases["(errors)"] + cases["(results)"] >= 60


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
                assert not result.is_error, f"{tool}: {_text(result)}"
                data = result.structured_content
                assert isinstance(data, dict)
                return data

            lines = 60  # three seconds of scanning per grep
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
                assert took < 2.0, f"{tool} waited {took:.1f} s behind slow patterns"
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
