"""A client of the MCP tools (fastmcp in memory, or the MCP SDK over HTTP) driven from synchronous
code: hypothesis runs its examples synchronously, the clients are async."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastmcp import Client as MemoryClient

T = TypeVar("T")
CALL_LIMIT = 20.0  # seconds one call may take before the run counts as hung


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
                f"{tool}({shown(arguments)}) did not answer in {CALL_LIMIT:g} s:\n"
                + self.runner.tasks()
            ) from None

    def ok(self, tool: str, **arguments: Any) -> dict[str, Any]:
        result = self.call(tool, arguments)
        assert not result.is_error, f"{tool}({arguments}): {text(result)}"
        data = result.structured_content
        assert isinstance(data, dict), result
        return data

    def tools(self) -> dict[str, dict[str, Any]]:
        listed = self.runner.run(self.client.list_tools())
        listed = getattr(listed, "tools", listed)  # the MCP SDK wraps the list, fastmcp does not
        return {tool.name: tool.input_schema for tool in listed}


def text(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def shown(arguments: dict[str, Any]) -> dict[str, Any]:
    """Arguments with long strings cut, for messages."""
    return {
        k: (v[:80] + "…" if isinstance(v, str) and len(v) > 80 else v) for k, v in arguments.items()
    }
