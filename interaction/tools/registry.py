"""The single entry point for tool calls, and the `name(argument)` text form used in tool traces.

`run_tool` never raises: every failure becomes an error result, so a reasoner (or a corpus
generator) can show the model what a refused call looks like.
"""
from __future__ import annotations

import dataclasses
import datetime
import re

from interaction.tools import calculator, clock, knowledge, search, units
from interaction.tools.errors import ToolError

TOOL_NAMES = ("calculator", "units", "knowledge", "clock", "search", "open")
MAX_ARGUMENT = 200

_CALL = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\((.*)\)\s*", re.DOTALL)


@dataclasses.dataclass(frozen=True)
class ToolResult:
    ok: bool
    text: str


def run_tool(name: str, argument: str, now: datetime.datetime | None = None,
             index: search.SearchIndex | None = None) -> ToolResult:
    """Runs tool `name` on `argument`; `now` is required by the clock; `index` is what `search` and `open`
    read (default: `search.default_index()`). Never raises."""
    try:
        return ToolResult(True, _dispatch(name, argument, now, index))
    except Exception as error:  # noqa: BLE001 - any failure is reported, never propagated
        return ToolResult(False, f"error: {str(error) or type(error).__name__}")


def format_call(name: str, argument: str) -> str:
    """'calculator(17*23)'."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ToolError(f"not a tool name: {name!r}")
    return f"{name}({argument})"


def is_call(text: str) -> bool:
    """Whether `text` has the form `parse_call` reads."""
    return _CALL.fullmatch(text) is not None


def parse_call(text: str) -> tuple[str, str]:
    """Inverse of `format_call`: 'calculator(sqrt(16))' -> ('calculator', 'sqrt(16)')."""
    match = _CALL.fullmatch(text)
    if match is None:
        raise ToolError(f"not a tool call: {text[:80]!r}; expected name(argument)")
    return match.group(1), match.group(2)


def _dispatch(name: str, argument: str, now: datetime.datetime | None, index: search.SearchIndex | None) -> str:
    if name not in TOOL_NAMES:
        raise ToolError(f"unknown tool {name!r}; tools are {', '.join(TOOL_NAMES)}")
    if not isinstance(argument, str):
        raise ToolError(f"argument must be text, not {type(argument).__name__}")
    if len(argument) > MAX_ARGUMENT:
        raise ToolError(f"argument longer than {MAX_ARGUMENT} characters")
    if name == "calculator":
        return calculator.evaluate(argument)
    if name == "units":
        return units.parse_and_convert(argument)
    if name == "knowledge":
        return knowledge.KNOWLEDGE_BASE.lookup(argument)
    if name == "search":
        return (index or search.default_index()).search(argument)
    if name == "open":
        return (index or search.default_index()).open(argument)
    if now is None:
        raise ToolError("the clock needs the current time")
    return clock.answer(argument, now)
