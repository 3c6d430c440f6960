"""A rule-based reasoner for the corpus' question forms: the learned reasoner's ceiling, and an external one.

`answer(request, context)` reads a question of one of the forms the corpus asks (arithmetic, unit
conversion, knowledge base, clock), makes the tool call those forms imply, runs the sandboxed tool and
says the result as the corpus' answers do; a question about a gazetteer article is searched, its first hit
opened and the answer read from the passage (or "not found" said honestly). It is an ordinary callable,
so it plugs in as any external reasoner would: `CallableReasoner(rules.answer)`, or `python -m
experiments.evaluate --reasoner=interaction.reasoner.rules:answer`. A question it cannot read gets an error
answer. `respond` is the same with a UI surface beside the answer (`surface.py`): a unit conversion as a
two-row table, a search answer as a card naming its source, and a timer request ("set a timer for five
minutes") as a live countdown, whose answer ("Five minutes have passed.") is said when the time is up;
the live server's default reasoner.
"""
from __future__ import annotations

import re

from interaction.data.scenarios import CLOCK_QUESTIONS, UNIT_QUESTIONS, spoken_result
from interaction.reasoner import surface
from interaction.reasoner.base import Answer, Request
from interaction.tools import documents, knowledge, registry

_TIMES = re.compile(r"what is (\d+) times (\d+)\??")
_UNITS = re.compile(r"how many (\w+) are in (\d+) (\w+)\??")
_NUMBERS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve".split())}
_NUMBERS |= {"fifteen": 15, "twenty": 20, "thirty": 30}
_COUNT = "|".join(_NUMBERS)
_SPAN = rf"(\d+|an?|{_COUNT}) (second|minute|hour)s?"
_TIMERS = (re.compile(rf"(?:please )?(?:set|start) (?:a|an|the) timer for {_SPAN}(?:,? please)?[.!]?"),
           re.compile(rf"(?:(?:can|could) you )?(?:tell me|let me know) when {_SPAN} "
                      r"(?:have|has|are|is) (?:passed|gone by|up)[.?!]?"))
_UNIT_S = {"second": 1, "minute": 60, "hour": 3600}


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


def search_and_read(question: str, index=None) -> tuple[str, tuple[dict, ...]]:
    """The spoken answer to a question of a gazetteer form and its trace: `search` for the subject's name,
    `open` the first hit if its title names the subject, read the answer from the passage; otherwise "not
    found". `index`: the one the tools read (default: theirs)."""
    name, holds, template = documents.read_question(question)
    trace = []

    def call(tool, argument):
        result = registry.run_tool(tool, argument, index=index)
        trace.append({"call": registry.format_call(tool, argument), "result": result.text})
        return result

    hits = call("search", name)
    first = hits.text.splitlines()[0].split(" | ") if hits.ok and hits.text != "no results" else []
    if len(first) < 2 or name.lower() not in first[1].lower():
        return documents.NOT_FOUND.format(name), tuple(trace)
    passage = call("open", first[0])
    found = re.search(holds, passage.text) if passage.ok else None
    if found is None:
        return documents.NOT_FOUND.format(name), tuple(trace)
    return template.format(found.group(1)), tuple(trace)


def timer(question: str) -> tuple[int, str] | None:
    """(seconds, spoken length) for a timer request ("set a timer for five minutes", "tell me when ten seconds
    have passed"); None for any other."""
    said = " ".join(question.lower().split())
    m = next((m for m in (p.fullmatch(said) for p in _TIMERS) if m is not None), None)
    if m is None:
        return None
    count, unit = m.groups()
    n = int(count) if count.isdigit() else _NUMBERS.get(count, 1)
    if n < 1 or n * _UNIT_S[unit] > surface.MAX_TIMER_S:
        return None
    return n * _UNIT_S[unit], f"{count if count not in ('a', 'an') else 'one'} {unit}{'s' if n != 1 else ''}"


def respond(request: Request) -> Answer:
    """`answer` with its trace and a UI surface: a timer as a countdown, and whatever `surface.from_trace`
    makes of the tool calls (a unit conversion as a table, a searched answer as a card naming its source).
    ValueError for a question of no known form."""
    if (asked := timer(request.text)) is not None:
        seconds, said = asked
        shown = surface.card(surface.new_id("timer"), f"Timer: {said}",
                             {"component": "Timer", "seconds": seconds, "label": said})
        gone = "have" if said.split()[0] != "one" else "has"
        return Answer(f"{said[0].upper()}{said[1:]} {gone} passed.", surface=shown, after_s=seconds)
    if documents.read_question(request.text) is not None:
        text, trace = search_and_read(request.text)
        return Answer(text, trace=trace, surface=surface.from_trace(request.text, trace, text))
    tool, argument, template = plan(request.text)
    result = registry.run_tool(tool, argument, now=request.now)
    trace = ({"call": registry.format_call(tool, argument), "result": result.text},)
    if not result.ok:
        return Answer(result.text, ok=False, trace=trace)
    text = template.format(result=spoken_result(result.text))
    return Answer(text, trace=trace, surface=surface.from_trace(request.text, trace, text))


def answer(request: Request) -> str:
    """The spoken answer to `request`'s question (the conversation so far is not needed by these forms);
    ValueError for a question of no form these rules read."""
    return respond(request).text
