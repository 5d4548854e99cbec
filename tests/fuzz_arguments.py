"""Generated arguments for the MCP tools, from each tool's input schema (see test_fuzz.py).

Guards, so that generated input cannot do harm or stall a run:
- start_process only runs a safe set of commands (`true`, echo/printf of generated text quoted by
  shlex, a short sleep, a program that does not exist); names, directories and environments are
  free, except environment variables that make a shell or the loader run code.
- The protected processes are never the target of a tool that changes a process.
- A waiting time within the accepted range is at most 0.2 s (a wait for a line that never comes
  lasts that long); out-of-range values of every kind are still generated, and a timeout is never
  left out (its default is 30 s).
"""

from __future__ import annotations

import math
import shlex
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

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
CATASTROPHIC = ["(a+)+$", "(a|aa)+$", "(a*)*b", "(.*a){20}", "((a+)+)+!x", "(?:a|a)*$"]
INVALID_REGEX = ["(", ")", "[", "*", "a{2,1}", "(?P<x", "\\", "(?<=a+)b", "[z-a]", "(?", "a**"]
# Environment variables that make bash or the dynamic loader run something of their choosing.
UNSAFE_ENV = ("BASH_ENV", "ENV", "BASH_FUNC", "LD_", "PROMPT_COMMAND", "SHELLOPTS", "PERSISTPROC")
ABSENT = object()  # a parameter left out of a call


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
