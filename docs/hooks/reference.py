"""MkDocs hook: fills the CLI and MCP tool reference pages at build time, so they cannot drift.

The CLI reference comes from `persistproc.cli.build_parser()`; the tool reference from the tool list
an MCP client gets from the server (fastmcp's in-memory client against a Supervisor on a temporary
data directory, which starts no process). The pages in docs/ hold a marker comment where the
generated text goes. The tests import this module too, so it needs nothing from MkDocs at import time.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLI_MARKER = "<!-- generated: cli reference -->"
TOOLS_MARKER = "<!-- generated: tool reference -->"
# Every command takes these; the page describes them once, under `persistproc`.
COMMON_OPTIONS = frozenset({"--host", "--port"})
HELP_WIDTH = 100  # usage lines wrap here whatever the terminal that runs the build


# ----- CLI ---------------------------------------------------------------------------------------


def _parser_with_fixed_width(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    kind = parser.formatter_class
    parser.formatter_class = lambda prog: kind(prog, width=HELP_WIDTH)
    return parser


def _usage(parser: argparse.ArgumentParser) -> str:
    prefix = "usage: "
    lines = _parser_with_fixed_width(parser).format_usage().strip().splitlines()
    # continuation lines are indented to follow "usage: ", which the page does not show
    return "\n".join(
        line.removeprefix(prefix if i == 0 else " " * len(prefix)) for i, line in enumerate(lines)
    )


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _argument_name(action: argparse.Action) -> str:
    if not action.option_strings:
        return str(action.metavar or action.dest)
    names = ", ".join(action.option_strings)
    if action.nargs == 0:
        return names
    metavar = action.metavar or action.dest.upper()
    return f"{names} {metavar}"


def _arguments(parser: argparse.ArgumentParser, skip: frozenset[str] = frozenset()) -> list[str]:
    """One list item per argument, positional ones first; options named in skip left out."""
    rows = []
    actions = sorted(parser._actions, key=lambda action: bool(action.option_strings))
    for action in actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        if action.help == argparse.SUPPRESS or skip.intersection(action.option_strings):
            continue
        text = _inline(action.help or "")
        if action.choices is not None:
            text += " (one of " + ", ".join(f"`{choice}`" for choice in action.choices) + ")"
        rows.append(f"- `{_argument_name(action)}`" + (f": {text}" if text else ""))
    return rows


def cli_reference() -> str:
    """Markdown for every command: usage, what it does, its arguments."""
    from persistproc.cli import build_parser

    parser = build_parser()
    sections = [
        "## persistproc",
        "",
        "```text",
        _usage(parser),
        "```",
        "",
        "Options that come before the command (`--host` and `--port` may also follow it):",
        "",
        *_arguments(parser),
        "",
        "From `persistproc --help`:",
        "",
        "```text",
        (parser.epilog or "").strip(),
        "```",
    ]
    for name, command in _subcommands(parser).items():
        sections += [
            "",
            f"## persistproc {name}",
            "",
            "```text",
            _usage(command),
            "```",
            "",
            _paragraphs(command.description or ""),
            "",
            *_arguments(command, skip=COMMON_OPTIONS),
        ]
    return "\n".join(sections) + "\n"


# ----- MCP tools ---------------------------------------------------------------------------------


@dataclass
class ToolList:
    instructions: str
    tools: list[Any]  # mcp Tool objects, as a client receives them


def list_tools() -> ToolList:
    """The tools as an MCP client sees them, from a server built in this process."""
    return asyncio.run(_list_tools())


async def _list_tools() -> ToolList:
    from fastmcp import Client

    from persistproc.server.tools import build_mcp
    from persistproc.supervisor import Supervisor

    with tempfile.TemporaryDirectory(prefix="persistproc-docs-") as data_dir:
        async with Client(build_mcp(Supervisor(Path(data_dir)))) as client:
            tools = await client.list_tools()
            instructions = client.instructions or ""
    return ToolList(instructions, list(tools))


def _schema_type(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return " or ".join(f"`{value!r}`".replace("'", '"') for value in schema["enum"])
    if "anyOf" in schema:
        kinds = [_schema_type(option) for option in schema["anyOf"] if option.get("type") != "null"]
        return " or ".join(kinds)
    kind = schema.get("type", "any")
    if kind == "array" and "items" in schema:
        return f"array of {_schema_type(schema['items'])}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"object of {_schema_type(schema['additionalProperties'])}"
    return str(kind)


def _parameter(name: str, schema: dict[str, Any], required: bool) -> str:
    details = [_schema_type(schema)]
    if required:
        details.append("required")
    elif schema.get("default") is not None:
        details.append(f"default `{_json_literal(schema['default'])}`")
    description = _inline(schema.get("description", ""))
    return f"- `{name}` ({', '.join(details)}): {description}"


def tool_reference(listing: ToolList | None = None) -> str:
    """Markdown for every tool: what it does and its parameters, from the live schemas."""
    listing = listing or list_tools()
    sections = []
    if listing.instructions:
        sections += [
            "### What the server tells agents",
            "",
            "The instructions the server sends every client when it connects; most clients pass them to"
            " the model:",
            "",
            *(f"> {_inline(line)}" if line else ">" for line in listing.instructions.splitlines()),
        ]
    for tool in listing.tools:
        schema = tool.input_schema or {}
        required = set(schema.get("required", []))
        properties: dict[str, Any] = schema.get("properties", {})
        sections += ["", f"### {tool.name}", "", _paragraphs(tool.description or ""), ""]
        if properties:
            sections.append("Parameters:")
            sections.append("")
            for name, property_schema in properties.items():
                sections.append(_parameter(name, property_schema, name in required))
        else:
            sections.append("No parameters.")
    return "\n".join(sections) + "\n"


def documented_tools(markdown: str) -> list[str]:
    """The tool names a reference page has a section for (`### name`)."""
    return re.findall(r"^### ([a-z][a-z0-9_]*)$", markdown, flags=re.MULTILINE)


# ----- text --------------------------------------------------------------------------------------


def _inline(text: str) -> str:
    """Help text as Markdown: `<cursor>` and `ctrl-<letter>` are text, not HTML tags, and the
    backslash of `ctrl-\\` escapes nothing."""
    parts = text.split("`")
    # even parts are prose, odd ones are code spans, which Markdown already shows literally
    return "`".join(
        html.escape(part, quote=False).replace("\\", "\\\\") if i % 2 == 0 else part
        for i, part in enumerate(parts)
    )


def _paragraphs(text: str) -> str:
    """A docstring or argparse description as Markdown paragraphs (blank lines kept)."""
    blocks = [" ".join(line.strip() for line in block.splitlines()) for block in text.split("\n\n")]
    return "\n\n".join(_inline(block) for block in blocks if block.strip())


def _json_literal(value: Any) -> str:
    return json.dumps(value)


# ----- the MkDocs hook ---------------------------------------------------------------------------


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_reference())
    if TOOLS_MARKER in markdown:
        markdown = markdown.replace(TOOLS_MARKER, tool_reference())
    return markdown


# Pages the navigation names that another part of the project writes; until one exists, the site
# shows this stand-in rather than failing to build.
STAND_INS = {
    "security.md": """# Security and reliability

- The server listens on loopback only, and refuses connections from other users of the machine.
- Every request must carry a loopback `Host` (others get 421). A browser `Origin` is refused (403)
  on the REST API and the attach WebSocket, and accepted on `/mcp` only when it is the server's own
  origin: a page served by one of your dev servers on another port cannot reach the tools.
- `persistproc --serve --token generate` (or `PERSISTPROC_TOKEN`) makes every route require a
  bearer token; the commands find it by themselves, and `persistproc mcp-config` puts it in the
  agent's settings.
- The process list and every log survive a server restart; stopping the server stops every process
  it runs, and a restarted server makes sure nothing of an earlier run outlived it.
""",
}


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    for path, text in STAND_INS.items():
        if files.get_file_from_path(path) is None:
            files.append(File.generated(config, path, content=text))
    return files
