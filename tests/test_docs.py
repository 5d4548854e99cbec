"""The documentation is true: its snippets parse, its tool reference matches the server's tools, and
`persistproc mcp-config` prints what the agent-integration page shows."""

from __future__ import annotations

import importlib.util
import io
import json
import re
import shlex
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import redirect_stderr
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import Server, free_port
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport
from secure_server import server_starter

from persistproc import paths
from persistproc.cli import _implicit_run, _subcommands, build_parser, main
from persistproc.client.mcpconfig import FORMS, Endpoint, mcp_url, snippet
from persistproc.config import DEFAULT_PORT, TOKEN_ENV
from persistproc.server.tools import build_mcp
from persistproc.supervisor import Supervisor

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [*sorted(DOCS.glob("*.md")), ROOT / "README.md"]
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}
SHELL_OPERATORS = {"&&", "||", "|", ";", "&"}
# A backticked word shaped like a tool name (verb_noun ending in what the tools act on).
TOOL_MENTION = re.compile(
    r"`([a-z]+(?:_[a-z]+)*_(?:process|processes|output|screen|input|status))`"
)


def load_hook() -> ModuleType:
    """The MkDocs hook, loaded as MkDocs loads it: from its file, not as part of a package."""
    name = "persistproc_docs_reference"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, DOCS / "hooks" / "reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@dataclass
class Snippet:
    page: Path
    line: int  # where the block starts, 1-based
    language: str
    text: str

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def code_blocks(page: Path) -> Iterator[Snippet]:
    """Fenced blocks, also those indented inside lists and tabs."""
    lines = page.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = re.match(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)", lines[index])
        if not opening:
            index += 1
            continue
        indent, fence, language = opening.groups()
        body, start = [], index + 1
        index += 1
        while index < len(lines) and lines[index].strip() != fence:
            body.append(
                lines[index][len(indent) :] if lines[index].startswith(indent) else lines[index]
            )
            index += 1
        index += 1
        yield Snippet(page, start, language.lower(), "\n".join(body))


SNIPPETS = [block for page in PAGES for block in code_blocks(page)]
SHELL = [block for block in SNIPPETS if block.language in SHELL_LANGUAGES]
JSON = [block for block in SNIPPETS if block.language == "json"]


def shell_commands(text: str) -> Iterator[list[str]]:
    """Each simple command of a shell snippet as words (continuation lines joined)."""
    for line in text.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)  # raises on an unbalanced quote
        command: list[str] = []
        for word in [*words, ";"]:
            if word in SHELL_OPERATORS:
                if command:
                    yield command
                command = []
            else:
                command.append(word)


def persistproc_arguments(words: list[str]) -> list[str] | None:
    """The arguments of a persistproc invocation, or None when words run something else."""
    if words[:1] == ["persistproc"]:
        return words[1:]
    if words[1:3] == ["-m", "persistproc"] and words[0].startswith("python"):
        return words[3:]
    return None


def test_the_docs_have_snippets_to_check() -> None:
    assert len(SHELL) > 10 and len(JSON) >= 4
    assert all(block.text.strip() for block in SNIPPETS), [str(b) for b in SNIPPETS if not b.text]


@pytest.mark.parametrize("block", SHELL, ids=str)
def test_shell_snippets_parse_and_persistproc_commands_are_valid(block: Snippet) -> None:
    parser = build_parser()
    commands = set(_subcommands(parser))
    for words in shell_commands(block.text):
        arguments = persistproc_arguments(words)
        if arguments is None:
            continue
        errors = io.StringIO()
        try:
            with redirect_stderr(errors):
                parser.parse_args(_implicit_run(arguments, commands))
        except SystemExit as exit:
            assert exit.code == 0, f"{block}: {shlex.join(words)}\n{errors.getvalue()}"


@pytest.mark.parametrize("block", JSON, ids=str)
def test_json_snippets_are_valid_json(block: Snippet) -> None:
    try:
        json.loads(block.text)
    except ValueError as error:
        pytest.fail(f"{block}: {error}")


# ----- the tool reference ---------------------------------------------------------------------------


@pytest.fixture
async def served_tools(tmp_path: Path) -> list[str]:
    """The tool names a client gets from a server built here, independently of the docs hook."""
    async with Client(build_mcp(Supervisor(tmp_path / "data"))) as client:
        return [tool.name for tool in await client.list_tools()]


def test_every_served_tool_is_in_the_tool_reference_and_no_other(served_tools: list[str]) -> None:
    hook = load_hook()
    page = (DOCS / "tools.md").read_text(encoding="utf-8")
    assert hook.TOOLS_MARKER in page, "tools.md lost the marker the build fills"
    built = hook.on_page_markdown(page, None, None, None)
    assert hook.documented_tools(built) == served_tools
    for name in served_tools:
        section = built.split(f"### {name}\n", 1)[1].split("\n### ", 1)[0]
        assert "Parameters:" in section or "No parameters." in section


def test_docs_mention_only_tools_that_exist(served_tools: list[str]) -> None:
    unknown = {
        f"{page.relative_to(ROOT)}: {name}"
        for page in PAGES
        for name in TOOL_MENTION.findall(page.read_text(encoding="utf-8"))
        if name not in served_tools
    }
    assert not unknown


def test_cli_reference_has_every_command() -> None:
    hook = load_hook()
    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert hook.CLI_MARKER in page
    built = hook.on_page_markdown(page, None, None, None)
    for command in _subcommands(build_parser()):
        assert f"\n## persistproc {command}\n" in built
    assert "<letter>" not in built, "angle brackets must be escaped, or Markdown eats them as tags"


# ----- persistproc mcp-config -----------------------------------------------------------------------


def mcp_config(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str, str]:
    code = main(["mcp-config", *arguments])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def no_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No token in the environment, and a data directory without one: returns that directory."""
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.setenv("PERSISTPROC_DATA_DIR", str(tmp_path / "empty"))
    return tmp_path / "empty"


def test_mcp_config_forms_match_the_agent_integration_page(
    capsys: pytest.CaptureFixture[str], no_token: Path
) -> None:
    page = DOCS / "agents.md"
    documented_json = [json.loads(b.text) for b in JSON if b.page == page]
    documented_commands = [
        words for b in SHELL if b.page == page for words in shell_commands(b.text)
    ]
    for form in FORMS:
        code, out, _ = mcp_config(capsys, form)
        assert code == 0
        if form == "claude":
            assert shlex.split(out) in documented_commands
        else:
            assert json.loads(out) in documented_json, f"agents.md lacks the {form} form"


def test_mcp_config_follows_port_and_host(
    capsys: pytest.CaptureFixture[str], no_token: Path
) -> None:
    port = free_port()
    code, out, err = mcp_config(capsys, "json", "--port", str(port))
    server = json.loads(out)["mcpServers"]["persistproc"]
    assert code == 0 and server == {"type": "http", "url": f"http://127.0.0.1:{port}/mcp/"}
    assert f"no server answers on 127.0.0.1:{port}" in err  # nothing listens there
    assert mcp_url("::1", 8950) == "http://[::1]:8950/mcp/"


def test_mcp_config_without_form_prints_every_form(
    capsys: pytest.CaptureFixture[str], no_token: Path
) -> None:
    code, out, _ = mcp_config(capsys, "--port", str(free_port()))
    assert code == 0
    headings = [line for line in out.splitlines() if line.startswith("# ")]
    assert len(headings) == len(FORMS)
    assert out.count('"persistproc"') == 3 and out.count("claude mcp add") == 1


def test_mcp_config_carries_the_token_from_the_environment(
    capsys: pytest.CaptureFixture[str], no_token: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, "s3cret-token-for-the-docs-test")
    bearer = "Bearer s3cret-token-for-the-docs-test"
    port = str(free_port())
    code, out, err = mcp_config(capsys, "claude", "--port", port)
    words = shlex.split(out)
    assert code == 0 and words[-2:] == ["--header", f"Authorization: {bearer}"]
    assert words[5:7] == ["persistproc", f"http://127.0.0.1:{port}/mcp/"]  # not swallowed
    assert "holds the server's token" in err
    for form, key in (("cursor", "mcpServers"), ("vscode", "servers"), ("json", "mcpServers")):
        _, out, _ = mcp_config(capsys, form, "--port", port)
        assert json.loads(out)[key]["persistproc"]["headers"] == {"Authorization": bearer}


def test_mcp_config_reads_the_token_file_of_the_data_directory(
    capsys: pytest.CaptureFixture[str], no_token: Path, tmp_path: Path
) -> None:
    data_dir = paths.ensure_private_dir(tmp_path / "data")
    paths.token_file(data_dir).write_text("from-the-token-file-0123456789\n", encoding="utf-8")
    code = main(["--data-dir", str(data_dir), "mcp-config", "vscode", "--port", str(free_port())])
    server: dict[str, Any] = json.loads(capsys.readouterr().out)["servers"]["persistproc"]
    assert code == 0
    assert server["headers"] == {"Authorization": "Bearer from-the-token-file-0123456789"}


def test_mcp_config_names_a_running_server_without_complaint(
    capsys: pytest.CaptureFixture[str], no_token: Path, server: Server
) -> None:
    code, out, err = mcp_config(capsys, "cursor", "--port", str(server.port))
    assert code == 0 and err == ""
    assert json.loads(out)["mcpServers"]["persistproc"]["url"] == server.url


def test_mcp_config_refuses_an_unknown_form(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["mcp-config", "emacs"])
    assert exit.value.code == 2
    assert "invalid choice: 'emacs'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="expected one of claude"):
        snippet("emacs", Endpoint(mcp_url("127.0.0.1", DEFAULT_PORT), None))


async def test_the_printed_settings_connect_to_a_server_that_requires_a_token(
    capsys: pytest.CaptureFixture[str], no_token: Path, tmp_path: Path
) -> None:
    with server_starter(tmp_path) as start:
        server = start("--token", "generate")  # as agents.md shows it
        token = paths.token_file(server.data_dir).read_text(encoding="utf-8").strip()
        arguments = ["--data-dir", str(server.data_dir), "mcp-config", "json"]
        assert main([*arguments, "--port", str(server.port)]) == 0
        entry = json.loads(capsys.readouterr().out)["mcpServers"]["persistproc"]
        assert entry["headers"] == {"Authorization": f"Bearer {token}"}
        transport = StreamableHttpTransport(entry["url"], headers=entry["headers"])
        async with Client(transport) as client:
            assert "start_process" in [tool.name for tool in await client.list_tools()]
        # Without the header, the same URL is refused.
        request = urllib.request.Request(entry["url"], data=b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=10)
        refused.value.close()
        assert refused.value.code == 401
