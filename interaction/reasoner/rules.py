"""A rule-based reasoner for the corpus' question forms: the learned reasoner's ceiling, and an external one.

`answer(request, context)` reads a question of one of the forms the corpus asks (arithmetic, unit
conversion, knowledge base, clock), makes the tool call those forms imply, runs the sandboxed tool and
says the result as the corpus' answers do; a question about a gazetteer article is searched, its first hit
opened and the answer read from the passage (or "not found" said honestly). It is an ordinary callable,
so it plugs in as any external reasoner would: `CallableReasoner(rules.answer)`, or `python -m
experiments.evaluate --reasoner=interaction.reasoner.rules:answer`. A question it cannot read gets an error
answer.
"""
from __future__ import annotations

import re

from interaction.data.scenarios import CLOCK_QUESTIONS, UNIT_QUESTIONS, spoken_result
from interaction.reasoner.base import Request
from interaction.tools import documents, knowledge, registry

_TIMES = re.compile(r"what is (\d+) times (\d+)\??")
_UNITS = re.compile(r"how many (\w+) are in (\d+) (\w+)\??")


def plan(question: str) -> tuple[str, str, str]:
    """(tool, argument, answer template with {result}) for a question of the corpus' forms; ValueError else."""
    q = " ".join(question.lower().split())
    if m := _TIMES.fullmatch(q):
        a, b = m.groups()
        return "calculator", f"{a}*{b}", f"{a} times {b} is {{result}}."
    if m := _UNITS.fullmatch(q):
        spoken, n, said_src = m.groups()
        for said, src, dst, target in UNIT_QUESTIONS:
            if (said, target) == (said_src, spoken):
                return "units", f"{n} {src} to {dst}", f"That is about {{result}} {spoken}."
    for asked, argument in CLOCK_QUESTIONS:
        if q == asked.lower():
            return "clock", argument, "It is {result}."
    if any(q == f.question.lower() for f in knowledge.FACTS):
        return "knowledge", question.strip(), "It is {result}."
    raise ValueError(f"not a question of a form these rules read: {question!r}")


def search_and_read(question: str) -> tuple[str, tuple[dict, ...]]:
    """The spoken answer to a question of a gazetteer form and its trace: `search` with the question, `open`
    the first hit if its title names the subject, read the answer from the passage; otherwise "not found"."""
    name, holds, template = documents.read_question(question)
    trace = []

    def call(tool, argument):
        result = registry.run_tool(tool, argument)
        trace.append({"call": registry.format_call(tool, argument), "result": result.text})
        return result

    hits = call("search", question)
    first = hits.text.splitlines()[0].split(" | ") if hits.ok and hits.text != "no results" else []
    if len(first) < 2 or name.lower() not in first[1].lower():
        return documents.NOT_FOUND.format(name), tuple(trace)
    passage = call("open", first[0])
    found = re.search(holds, passage.text) if passage.ok else None
    if found is None:
        return documents.NOT_FOUND.format(name), tuple(trace)
    return template.format(found.group(1)), tuple(trace)


def answer(request: Request) -> str:
    """The spoken answer to `request`'s question (the conversation so far is not needed by these forms)."""
    if documents.read_question(request.text) is not None:
        return search_and_read(request.text)[0]
    tool, argument, template = plan(request.text)
    result = registry.run_tool(tool, argument, now=request.now)
    if not result.ok:
        return result.text
    return template.format(result=spoken_result(result.text))
