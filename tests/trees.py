"""The process trees the reliability tests stop, and the calls they make to start them.

Survivors are counted two ways (tests/survivors.py): by the pids the fixtures print, and by a tag in
the environment every descendant inherits along with the server's run marker.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import psutil
from conftest import FIXTURES, fixture_cmd
from survivors import tag_env, watch

JOB_SHELL = shlex.join(["bash", "--noprofile", "--rcfile", str(FIXTURES / "job_shell.bash"), "-i"])
# The three trees: grandchildren in new groups and sessions; the same ignoring SIGTERM; an
# interactive shell (ignores SIGTERM) with jobs that ignore or trap it and one that left the session.
TREES = {
    "tree": fixture_cmd("tree"),
    "tree-ignoring-term": fixture_cmd("tree", "--ignore-term"),
    "job-shell": JOB_SHELL,
}
# bash takes its terminal from fd 2 for job control: on a stderr terminal of its own (not the
# controlling one) it runs without job control, every job in its group. Merged, the jobs get groups.
MERGED = {"job-shell"}
STOP_TIMEOUT = 1.0  # seconds between SIGTERM and SIGKILL: the fixtures that ignore TERM wait it out
WAIT = 20.0  # the most any condition may take here (the fixtures need milliseconds)


def text(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


async def call(client: Any, tool: str, **arguments: Any) -> dict[str, Any]:
    """A tool call that must succeed (either client: fastmcp in memory or the MCP SDK over HTTP)."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, f"{tool}({arguments}) failed: {text(result)}"
    data = result.structured_content
    assert isinstance(data, dict), result
    return data


async def start_tree(
    client: Any, kind: str, name: str, directory: Path, tag: str
) -> list[psutil.Process]:
    """Start one of TREES; return its root and every pid it printed, as watched processes."""
    started = await call(
        client,
        "start_process",
        command=TREES[kind],
        name=name,
        working_directory=str(directory),
        environment=tag_env(tag),
        wait_for="^READY$",
        wait_timeout=WAIT,
        merge_stderr=kind in MERGED,
    )
    assert started["ready"] is True, started
    page = await call(client, "get_process_output", name=name, grep="PIDS ", since=0)
    match = re.search(r"PIDS((?: \d+)+)$", page["text"])
    assert match, page
    return watch([started["pid"], *map(int, match.group(1).split())])
