"""Generative UI: the small component trees a reasoner may show beside its spoken answer.

A surface has the shape of Google's A2UI: a flat list of components, each with an `id` and a `component`
type, parents naming their children by id, and a `root`:

    {"surfaceId": "units-1", "root": "card", "components": [
        {"id": "card", "component": "Card", "title": "12 inches", "children": ["table"]},
        {"id": "table", "component": "Table", "rows": [["from", "12 inches"], ["to", "30.5 centimeters"]]}]}

`{"surfaceId": "units-1", "delete": true}` removes a surface; a newer surface with the same id replaces
it. Components (`COMPONENTS`): Card (title, children), Text (text, style), List (children), Table (rows,
header), Timer (seconds, label: a countdown), Link (text, and a document id `doc` or an http(s) `url`).
Every value is plain text or a number: nothing is markup, and the page builds text nodes from an
allow-list of these types only. `validate` refuses anything else with the reason: unknown types or
fields, ids that are missing, repeated, unreachable or cyclic, deep nesting, too many components, long
text, links that are not http(s).
"""
from __future__ import annotations

import itertools
import json
import re
from typing import Any

from interaction.tools import registry

MAX_COMPONENTS = 64
MAX_DEPTH = 8
MAX_TEXT = 500
MAX_ROWS, MAX_COLUMNS = 20, 6
MAX_TIMER_S = 24 * 3600
MAX_JSON_BYTES = 16 * 1024
STYLES = ("body", "heading", "caption")
_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")
_URL = re.compile(r"https?://[^\s\"'<>\\]{1,300}")

# type -> {field: (kind, required)}; kind: "text", "children", "rows", "seconds", "style", "doc", "url"
COMPONENTS: dict[str, dict[str, tuple[str, bool]]] = {
    "Card": {"title": ("text", False), "children": ("children", True)},
    "Text": {"text": ("text", True), "style": ("style", False)},
    "List": {"children": ("children", True)},
    "Table": {"rows": ("rows", True), "header": ("cells", False)},
    "Timer": {"seconds": ("seconds", True), "label": ("text", False)},
    "Link": {"text": ("text", True), "doc": ("doc", False), "url": ("url", False)},
}


class SurfaceError(ValueError):
    """A surface that does not fit the schema; the message says what is wrong."""


def _text(value, where: str) -> None:
    if not isinstance(value, str):
        raise SurfaceError(f"{where} must be text, not {type(value).__name__}")
    if len(value) > MAX_TEXT:
        raise SurfaceError(f"{where} is {len(value)} characters, over the {MAX_TEXT} allowed")


def _field(kind: str, value, where: str) -> None:
    if kind == "text":
        _text(value, where)
    elif kind == "style":
        if value not in STYLES:
            raise SurfaceError(f"{where} must be one of {', '.join(STYLES)}")
    elif kind == "children":
        if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
            raise SurfaceError(f"{where} must be a list of component ids")
    elif kind in ("rows", "cells"):
        rows = value if kind == "rows" else [value]
        if not isinstance(value, list) or not rows or len(rows) > MAX_ROWS:
            raise SurfaceError(f"{where} must be a list of 1 to {MAX_ROWS} rows")
        for i, row in enumerate(rows):
            if not isinstance(row, list) or not 1 <= len(row) <= MAX_COLUMNS:
                raise SurfaceError(f"{where} row {i} must be a list of 1 to {MAX_COLUMNS} cells")
            for j, cell in enumerate(row):
                _text(cell, f"{where}[{i}][{j}]")
    elif kind == "seconds":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_TIMER_S:
            raise SurfaceError(f"{where} must be a number of seconds in (0, {MAX_TIMER_S}]")
    elif kind == "doc":
        if not isinstance(value, str) or not _ID.fullmatch(value):
            raise SurfaceError(f"{where} must be a document id (letters, digits, '-', '_')")
    elif kind == "url":
        if not isinstance(value, str) or not _URL.fullmatch(value):
            raise SurfaceError(f"{where} must be an http:// or https:// address")


def validate(surface: Any) -> dict:
    """`surface` (a dict, or its JSON text) checked against the schema -> the dict; SurfaceError else."""
    if isinstance(surface, (str, bytes)):
        if len(surface) > MAX_JSON_BYTES:
            raise SurfaceError(f"the surface is {len(surface)} bytes, over the {MAX_JSON_BYTES} allowed")
        try:
            surface = json.loads(surface)
        except json.JSONDecodeError as err:
            raise SurfaceError(f"the surface is not valid JSON ({err.msg} at character {err.pos})") from None
    if not isinstance(surface, dict):
        raise SurfaceError("a surface is a JSON object")
    sid = surface.get("surfaceId")
    if not isinstance(sid, str) or not _ID.fullmatch(sid):
        raise SurfaceError("surfaceId must be 1-40 letters, digits, '-' or '_'")
    if surface.get("delete") is True:
        if set(surface) != {"surfaceId", "delete"}:
            raise SurfaceError("a deletion holds only surfaceId and delete")
        return surface
    if set(surface) - {"surfaceId", "root", "components"}:
        raise SurfaceError(f"unknown surface fields: {sorted(set(surface) - {'surfaceId', 'root', 'components'})}")
    if len(json.dumps(surface)) > MAX_JSON_BYTES:
        raise SurfaceError(f"the surface is over {MAX_JSON_BYTES} bytes as JSON")
    components = surface.get("components")
    if not isinstance(components, list) or not 1 <= len(components) <= MAX_COMPONENTS:
        raise SurfaceError(f"components must be a list of 1 to {MAX_COMPONENTS} components")
    by_id: dict[str, dict] = {}
    for i, c in enumerate(components):
        if not isinstance(c, dict):
            raise SurfaceError(f"component {i} is not an object")
        cid, kind = c.get("id"), c.get("component")
        if not isinstance(cid, str) or not _ID.fullmatch(cid):
            raise SurfaceError(f"component {i}: id must be 1-40 letters, digits, '-' or '_'")
        if cid in by_id:
            raise SurfaceError(f"component id {cid!r} is used twice")
        if kind not in COMPONENTS:
            raise SurfaceError(f"component {cid!r}: unknown type {kind!r}; types are {', '.join(COMPONENTS)}")
        fields = COMPONENTS[kind]
        extra = set(c) - {"id", "component"} - set(fields)
        if extra:
            raise SurfaceError(f"component {cid!r} ({kind}): unknown fields {sorted(extra)}")
        for name, (field_kind, required) in fields.items():
            if name in c:
                _field(field_kind, c[name], f"{cid}.{name}")
            elif required:
                raise SurfaceError(f"component {cid!r} ({kind}) needs {name}")
        if kind == "Link" and ("doc" in c) == ("url" in c):
            raise SurfaceError(f"component {cid!r} (Link) needs exactly one of doc and url")
        by_id[cid] = c
    root = surface.get("root")
    if root not in by_id:
        raise SurfaceError(f"root {root!r} is not a component id")
    seen: set[str] = set()
    stack = [(root, 1)]
    while stack:
        cid, depth = stack.pop()
        if cid not in by_id:
            raise SurfaceError(f"child {cid!r} is not a component id")
        if cid in seen:
            raise SurfaceError(f"component {cid!r} is reached twice (a cycle, or a child of two parents)")
        if depth > MAX_DEPTH:
            raise SurfaceError(f"the tree is deeper than {MAX_DEPTH} levels")
        seen.add(cid)
        stack.extend((child, depth + 1) for child in by_id[cid].get("children", ()))
    if len(seen) != len(by_id):
        raise SurfaceError(f"components not reachable from the root: {sorted(set(by_id) - seen)}")
    return surface


def to_text(surface: dict) -> str:
    """A surface as indented lines of text (what a terminal client prints)."""
    if surface.get("delete"):
        return f"[{surface['surfaceId']}] removed"
    by_id = {c["id"]: c for c in surface["components"]}
    lines = [f"[{surface['surfaceId']}]"]

    def walk(cid: str, depth: int) -> None:
        c, pad = by_id[cid], "  " * depth
        kind = c["component"]
        if kind == "Card":
            lines.append(pad + (c.get("title") or "(card)"))
        elif kind == "Text":
            lines.append(pad + c["text"])
        elif kind == "Table":
            for row in ([c["header"]] if "header" in c else []) + c["rows"]:
                lines.append(pad + " | ".join(row))
        elif kind == "Timer":
            lines.append(pad + f"timer: {c['seconds']:g} s" + (f" ({c['label']})" if c.get("label") else ""))
        elif kind == "Link":
            lines.append(pad + f"{c['text']} <{c.get('url') or 'doc:' + c['doc']}>")
        for child in c.get("children", ()):
            walk(child, depth + 1)

    walk(surface["root"], 0)
    return "\n".join(lines)


def card(surface_id: str, title: str, *body: dict) -> dict:
    """A surface: one Card titled `title` over `body` (components without ids; ids are given here)."""
    components = [{"id": f"c{i + 1}", **part} for i, part in enumerate(body)]
    root = {"id": "c0", "component": "Card", "title": title, "children": [c["id"] for c in components]}
    return validate({"surfaceId": surface_id, "root": "c0", "components": [root, *components]})


_ids = itertools.count(1)


def new_id(kind: str) -> str:
    """A surface id not given before in this process: `kind-N`."""
    return f"{kind}-{next(_ids)}"


def from_trace(question: str, trace, spoken: str) -> dict | None:
    """The surface a reasoner's tool calls make (`line_of_trace`, then `from_line`), or None."""
    line = line_of_trace(trace)
    return from_line(line, question, spoken) if line else None


# A surface in one line, as a learned reasoner writes it after its answer (`episodes`): a unit conversion as
# `table|FROM|TO`, an answer read from a document as `card|DOC_ID|TITLE`. `from_line` builds the tree.
LINE_SEPARATOR = "|"


def line_of_trace(trace) -> str:
    """The surface line a trace makes ("" for none): a unit conversion's table, or the card of an answer read
    from an opened document (its id, and its title from the search's first hit)."""
    calls = [(*registry.parse_call(t["call"]), t["result"]) for t in trace if registry.is_call(t["call"])]
    if len(calls) == 1 and calls[0][0] == "units" and not calls[0][2].startswith("error"):
        _, argument, result = calls[0]
        return LINE_SEPARATOR.join(["table", argument.partition(" to ")[0], result])
    opened = [argument for tool, argument, result in calls if tool == "open" and not result.startswith("error")]
    hits = [result for tool, _, result in calls if tool == "search" and " | " in result]
    if not opened or not hits:
        return ""
    return LINE_SEPARATOR.join(["card", opened[0], hits[0].splitlines()[0].split(" | ")[1]])


def from_line(line: str, question: str, spoken: str) -> dict | None:
    """The surface a line describes, or None where it describes none that is valid (a learned reasoner may
    write anything): `table|FROM|TO` a two-row table under the question, `card|DOC_ID|TITLE` a card with the
    spoken answer and a link to the document."""
    kind, _, rest = line.partition(LINE_SEPARATOR)
    first, _, second = rest.partition(LINE_SEPARATOR)
    try:
        if kind == "table" and first and second:
            return card(new_id("units"), question.strip()[:MAX_TEXT],
                        {"component": "Table", "rows": [["from", first[:MAX_TEXT]], ["to", second[:MAX_TEXT]]]})
        if kind == "card" and _ID.fullmatch(first) and second:
            return card(new_id("search"), second[:MAX_TEXT], {"component": "Text", "text": spoken[:MAX_TEXT]},
                        {"component": "Link", "text": f"source: {second}"[:MAX_TEXT], "doc": first})
    except SurfaceError:
        pass
    return None
