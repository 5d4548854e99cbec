"""End to end with a client persistproc did not write: the MCP Inspector's command line (Node.js),
installed from the npm registry, against a real server on a free port.

The install is cached between runs (in $XDG_CACHE_HOME or ~/.cache). The test is skipped only when
node or npm is missing or the registry cannot be reached; any other failure is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from conftest import Server, fixture_cmd

# 0.15.0 is the newest Inspector that runs on Node 20 (0.16 and later require Node >= 22.7.5).
INSPECTOR_VERSION = "0.15.0"
INSTALL_TIMEOUT = 300.0
CALL_TIMEOUT = 60.0
# npm's error codes when the registry cannot be reached (as opposed to a broken package).
NPM_INSTALL = ["npm", "install", "--no-audit", "--no-fund", "--no-save"]
UNREACHABLE = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT", "ECONNRESET", "ENETUNREACH")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "persistproc-tests" / f"mcp-inspector-{INSPECTOR_VERSION}"


def install_inspector() -> Path:
    """The mcp-inspector executable, installed with npm on first use."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed to run the MCP Inspector")
    target = cache_dir()
    executable = target / "node_modules" / ".bin" / "mcp-inspector"
    if executable.exists():
        return executable
    target.parent.mkdir(parents=True, exist_ok=True)
    # Install beside the target and rename: a half-finished install is never taken for a cached one.
    staging = Path(tempfile.mkdtemp(prefix="installing-", dir=target.parent))
    try:
        install = subprocess.run(
            [
                *NPM_INSTALL,
                "--prefix",
                str(staging),
                f"@modelcontextprotocol/inspector@{INSPECTOR_VERSION}",
            ],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
        if install.returncode != 0:
            if any(code in install.stderr for code in UNREACHABLE):
                pytest.skip(f"the npm registry cannot be reached: {install.stderr.strip()[-300:]}")
            pytest.fail(f"npm install failed ({install.returncode}):\n{install.stderr[-2000:]}")
        try:
            staging.rename(target)
        except OSError:
            if not executable.exists():  # another run finished first: use its install
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return executable


@pytest.fixture(scope="module")
def inspector() -> Path:
    return install_inspector()


def inspect(inspector: Path, server: Server, method: str, *arguments: str) -> Any:
    """Run the Inspector CLI once; returns the JSON it prints."""
    command = [str(inspector), "--cli", server.url, "--transport", "http", "--method", method]
    done = subprocess.run(
        [*command, *arguments],
        capture_output=True,
        text=True,
        timeout=CALL_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"{method} failed ({done.returncode}):\n{done.stderr[-2000:]}"
    try:
        return json.loads(done.stdout)
    except ValueError:
        pytest.fail(f"{method} printed no JSON:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def call(inspector: Path, server: Server, tool: str, **arguments: str) -> dict[str, Any]:
    """tools/call with --tool-arg k=v (the Inspector converts values by the tool's schema)."""
    words = ["--tool-name", tool]
    for key, value in arguments.items():
        words += ["--tool-arg", f"{key}={value}"]
    result: dict[str, Any] = inspect(inspector, server, "tools/call", *words)
    return result


def test_inspector_lists_the_tools(inspector: Path, server: Server) -> None:
    listing = inspect(inspector, server, "tools/list")
    tools = {tool["name"]: tool for tool in listing["tools"]}
    assert {"start_process", "get_process_output", "stop_process", "list_processes"} <= set(tools)
    start = tools["start_process"]
    assert start["inputSchema"]["required"] == ["command"]
    assert "description" in start["inputSchema"]["properties"]["wait_for"]


def test_inspector_starts_reads_and_stops_a_process(
    inspector: Path, server: Server, tmp_path: Path
) -> None:
    started = call(
        inspector,
        server,
        "start_process",
        command=fixture_cmd("echo"),
        working_directory=str(tmp_path),
        name="echo",
        wait_for="^READY$",
        wait_timeout="20",
    )
    assert started["isError"] is False, started
    info = started["structuredContent"]
    assert info["status"] == "running" and info["ready"] is True, info
    assert info["working_directory"] == str(tmp_path)

    output = call(inspector, server, "get_process_output", name="echo", lines="50")
    read = output["structuredContent"]
    assert output["isError"] is False and "READY" in read["text"].splitlines(), read
    assert read["cursor"] >= 1 and read["process"]["pid"] == info["pid"]

    # The pid arrives as text ("--tool-arg pid=123"): the server accepts the number it spells.
    stopped = call(inspector, server, "stop_process", pid=str(info["pid"]), timeout="5")
    assert stopped["isError"] is False, stopped
    assert stopped["structuredContent"]["status"] == "stopped"

    missing = call(inspector, server, "get_process_output", name="no-such-process")
    assert missing["isError"] is True
    assert "no process named 'no-such-process'" in missing["content"][0]["text"]
