"""The subcommands' arguments and help: each one names its handler in commands.py."""

from __future__ import annotations

import argparse
from typing import Any

from persistproc.client.commands import (
    Handler,
    cmd_list,
    cmd_logs,
    cmd_remove,
    cmd_restart,
    cmd_screen,
    cmd_send,
    cmd_shutdown,
    cmd_status,
    cmd_stop,
    cmd_wait,
)
from persistproc.client.mcpconfig import FORMS as MCP_CONFIG_FORMS
from persistproc.client.mcpconfig import cmd_mcp_config
from persistproc.model import STREAMS


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {number}")
    return number


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {value!r}") from None
    if not number >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected 0 or more seconds, got {value}")
    return number


TARGET_HELP = "the process: its pid or its name (as `persistproc list` shows them)"


def add_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """Add every non-interactive subcommand; `common` carries the options they all take."""

    def command(name: str, handler: Handler, summary: str, details: str = "") -> Any:
        parser = subparsers.add_parser(
            name,
            parents=[common],
            help=summary,
            description=summary + (f"\n\n{details}" if details else ""),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.set_defaults(handler=handler)
        return parser

    def target(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("target", metavar="PID|NAME", help=TARGET_HELP)

    def as_json(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", help="print the server's JSON answer")

    p = command("list", cmd_list, "List every process the server knows, running or ended.")
    p.add_argument("-C", "--directory", help="only processes running in this directory or below it")
    as_json(p)

    p = command("status", cmd_status, "Show a process's state, ports, CPU and memory use, logs.")
    target(p)
    as_json(p)

    p = command(
        "logs",
        cmd_logs,
        "Print a process's output as clean text (no escape codes, progress bars collapsed).",
        "With -f, keep printing new lines until the process ends (Ctrl-C stops following).\n"
        "With --raw, print the raw log file instead: the bytes exactly as the program wrote them.",
    )
    target(p)
    p.add_argument(
        "-n", "--lines", type=_positive, help="the last N lines (default 100; --raw: all)"
    )
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new output")
    p.add_argument("--stream", choices=STREAMS, default="combined", help="default: combined")
    p.add_argument("--grep", metavar="RE", help="only lines matching this regular expression")
    p.add_argument("--raw", action="store_true", help="the raw log file's bytes, escape codes kept")

    p = command(
        "stop",
        cmd_stop,
        "Stop a process and everything it started.",
        "SIGTERM to the whole process tree, then SIGKILL once --timeout seconds have passed.",
    )
    target(p)
    p.add_argument("--force", action="store_true", help="SIGKILL at once")
    p.add_argument(
        "--timeout", type=_seconds, default=10.0, help="seconds before SIGKILL (default 10)"
    )
    as_json(p)

    p = command(
        "restart",
        cmd_restart,
        "Stop a process (if it runs) and start it again: same command, directory, environment.",
    )
    target(p)
    p.add_argument(
        "--wait-for", metavar="RE", help="then wait for a line matching this; exit 1 if none"
    )
    p.add_argument(
        "--wait-timeout", type=_seconds, default=30.0, help="seconds --wait-for waits (default 30)"
    )
    as_json(p)

    p = command("screen", cmd_screen, "Print what the process's terminal shows now.")
    target(p)
    as_json(p)

    p = command(
        "send",
        cmd_send,
        "Type text and keys into a process's terminal.",
        "The text is sent as it is, then the keys in order. Example: send web yes --key enter.\n"
        "Key names: enter, tab, escape, backspace, up, down, left, right, home, end, f1-f12,\n"
        "ctrl-<letter>, alt-<char>, and more (the server lists them when a name is unknown).",
    )
    target(p)
    p.add_argument(
        "text",
        nargs="?",
        metavar="TEXT",
        help="text to type (use -- before text that starts with -)",
    )
    p.add_argument(
        "-k", "--key", dest="keys", action="append", metavar="K", help="a key to press (repeatable)"
    )

    p = command(
        "wait",
        cmd_wait,
        "Wait until a line of the process's output matches a regular expression.",
        "Prints the line and exits 0; exits 1 if the process ends or the timeout passes first.\n"
        "Looks only at output that arrives after the call, unless --since gives a line number\n"
        "(--since 0: all output of the current run).",
    )
    target(p)
    p.add_argument("pattern", metavar="PATTERN", help="regular expression a clean line must match")
    p.add_argument("--timeout", type=_seconds, default=30.0, help="seconds to wait (default 30)")
    p.add_argument("--since", type=int, metavar="N", help="look at lines after line N")
    p.add_argument("--stream", choices=STREAMS, default="combined", help="default: combined")
    as_json(p)

    p = command("remove", cmd_remove, "Stop a process if it runs, forget it, delete its logs.")
    target(p)

    command(
        "shutdown",
        cmd_shutdown,
        "Stop the server and every process it runs.",
        "Returns once the server has stopped.",
    )

    p = command(
        "mcp-config",
        cmd_mcp_config,
        "Print the settings that connect an MCP client (an agent) to this server.",
        "FORM picks the client: claude (a `claude mcp add` command), cursor, vscode, or json\n"
        "(the mcpServers form most other clients read); without FORM, all four. The URL follows\n"
        "--host and --port; the token, if the server requires one, is $PERSISTPROC_TOKEN or the\n"
        "one the server wrote to its data directory (--data-dir before the command).",
    )
    p.add_argument(
        "form",
        nargs="?",
        choices=MCP_CONFIG_FORMS,
        metavar="FORM",
        help="claude, cursor, vscode or json",
    )
