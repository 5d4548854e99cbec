"""The `persistproc` command: `--serve` runs the server; subcommands talk to a running one."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from persistproc import __version__, paths
from persistproc.client.api import Client
from persistproc.client.commands import run as run_command
from persistproc.client.interactive import add_interactive_commands
from persistproc.client.options import add_commands
from persistproc.config import DEFAULT_HOST, parse_port, port_from_env
from persistproc.hostcheck import is_loopback_host

DESCRIPTION = """Run development processes under pseudo-terminals and share them between people and
AI agents (MCP at http://127.0.0.1:8947/mcp/).

Start the server with `persistproc --serve`; the commands below talk to it."""

EPILOG = """environment:
  PERSISTPROC_PORT       port to serve on or talk to (default 8947)
  PERSISTPROC_DATA_DIR   where process lists and logs are kept
  NO_COLOR               set to turn colors off

exit status:
  0    success
  1    failure: an error from the server, no such process, no server running, `wait` or
       `restart --wait-for` saw no matching line, or the server could not start
  2    bad usage
  130  interrupted (Ctrl-C)

`persistproc COMMAND --help` describes each command."""

HOST_HELP = f"address to listen on (--serve) or to connect to (default {DEFAULT_HOST})"
PORT_HELP = "port to listen on or connect to (default $PERSISTPROC_PORT or 8947)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="persistproc",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"persistproc {__version__}")
    parser.add_argument("--serve", action="store_true", help="run the server in the foreground")
    parser.add_argument("--host", default=DEFAULT_HOST, help=HOST_HELP)
    parser.add_argument("--port", help=PORT_HELP)
    parser.add_argument(
        "--data-dir",
        help="data directory (default $PERSISTPROC_DATA_DIR or the platform's user data directory)",
    )
    # --host and --port are accepted after the subcommand too. SUPPRESS keeps a subcommand that
    # was not given them from overwriting the values parsed before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--host", default=argparse.SUPPRESS, help=HOST_HELP)
    common.add_argument("--port", default=argparse.SUPPRESS, help=PORT_HELP)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    add_commands(subparsers, common)
    add_interactive_commands(subparsers, common)
    return parser


_TOP_OPTIONS_WITH_VALUE = {"--host", "--port", "--data-dir"}


def _implicit_run(argv: list[str], commands: set[str]) -> list[str]:
    """`persistproc npm run dev` means `persistproc run npm run dev`."""
    index = 0
    while index < len(argv):
        word = argv[index]
        if word in _TOP_OPTIONS_WITH_VALUE:
            index += 2
        elif word.split("=", 1)[0] in _TOP_OPTIONS_WITH_VALUE:
            index += 1
        elif word in commands or word in {"-h", "--help", "--version", "--serve"}:
            return argv
        elif word == "--" or not word.startswith("-") or word.split("=")[0] in _RUN_OPTIONS:
            return [*argv[:index], "run", *argv[index:]]
        else:
            return argv
    return argv


_RUN_OPTIONS = {"--name", "--detach", "--no-server-start", "--detach-key"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    commands = set(_subcommands(parser))
    args = parser.parse_args(_implicit_run(words, commands))
    try:
        port = parse_port(args.port) if args.port is not None else port_from_env()
    except ValueError as error:
        parser.error(str(error))
    if args.serve:
        if args.command is not None:
            parser.error(f"--serve runs the server; it cannot be combined with {args.command!r}")
        if not is_loopback_host(args.host):
            parser.error(
                f"--host {args.host}: persistproc runs commands for whoever reaches it, so it"
                " listens on loopback only (127.0.0.1, ::1, localhost)"
            )
        from persistproc.server.main import serve  # the server's imports are heavy; load on demand

        return serve(args.host, port, paths.data_dir(args.data_dir))
    if args.command is None:
        parser.print_help()
        return 2
    return run_command(args, Client(args.host, port))


def _subcommands(parser: argparse.ArgumentParser) -> list[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []


if __name__ == "__main__":
    sys.exit(main())
