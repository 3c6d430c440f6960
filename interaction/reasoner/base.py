"""What a background reasoner is: anything that turns a delegated request into an answer.

The interaction model delegates by writing a request in its text stream; the runtime hands the reasoner
that request, the conversation so far as text, and the wall-clock time. Implementations: `ScriptedReasoner`
(a fixed plan of tool calls, for tests), `CallableReasoner` (any external function, e.g. a hosted large
model, or `rules.answer`), the learned model (`learned.LearnedReasoner`), and `process.ProcessReasoner`,
which runs any of them in its own process. A reasoner may take as long as it likes; it should look at
`cancelled` now and then and give up when it is set (the user has moved on).
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import threading
from collections.abc import Callable
from typing import Protocol

from interaction.tools import registry


@dataclasses.dataclass(frozen=True)
class Request:
    text: str  # the delegated question, as the interaction model wrote it
    context: str  # the conversation so far, both sides, as text
    now: datetime.datetime  # wall clock when it was asked (the clock tool answers from it)


@dataclasses.dataclass(frozen=True)
class Answer:
    text: str
    ok: bool = True
    trace: tuple[dict, ...] = ()  # {"call": "name(argument)", "result": text}, in order
    surface: dict | None = None  # a UI surface to show beside the answer (`surface.py`), checked where shown
    after_s: float = 0.0  # > 0: a reminder (a timer going off), said this long after the request was made


class Reasoner(Protocol):
    def answer(self, request: Request, cancelled: threading.Event) -> Answer: ...


class ScriptedReasoner:
    """Answers by one tool call that `plan(request text)` names as (tool, argument); `delay_s` stands in
    for thinking time (ended early by cancellation). A plan that cannot be made, or a failing tool, gives
    an error answer, never an exception."""

    def __init__(self, plan: Callable[[str], tuple[str, str]], delay_s: float = 0.0):
        self.plan, self.delay_s = plan, delay_s

    def answer(self, request: Request, cancelled: threading.Event) -> Answer:
        if cancelled.wait(self.delay_s):
            return Answer("cancelled", ok=False)
        try:
            tool, argument = self.plan(request.text)
        except Exception as err:  # noqa: BLE001 - a plan that fails is an answer, not a crash
            return Answer(f"error: no plan for {request.text!r} ({err})", ok=False)
        result = registry.run_tool(tool, argument, now=request.now)
        trace = ({"call": f"{tool}({argument})", "result": result.text},)
        return Answer(result.text, ok=result.ok, trace=trace)


class CallableReasoner:
    """Any external function `fn(request) -> answer text` as a reasoner (the orchestration option): it gets
    the `Request` (the question, the conversation so far, the wall clock), e.g. to prompt a hosted model.
    It may return an `Answer` instead, to give a trace or a UI surface too."""

    def __init__(self, fn: Callable[[Request], str]):
        self.fn = fn

    def answer(self, request: Request, cancelled: threading.Event) -> Answer:
        try:
            out = self.fn(request)
            return out if isinstance(out, Answer) else Answer(str(out))
        except Exception as err:  # noqa: BLE001 - whatever the external side does, the loop goes on
            return Answer(f"error: {type(err).__name__}: {err}", ok=False)


class SerialReasoner:
    """One request at a time to a reasoner that several sessions share (a `ProcessReasoner` has one pipe):
    a request waits its turn, and gives up waiting when it is cancelled. Forwards `paused` when it has one."""

    def __init__(self, inner: Reasoner):
        self.inner = inner
        self._lock = threading.Lock()

    def answer(self, request: Request, cancelled: threading.Event) -> Answer:
        while not self._lock.acquire(timeout=0.05):
            if cancelled.is_set():
                return Answer("cancelled", ok=False)
        try:
            return self.inner.answer(request, cancelled)
        finally:
            self._lock.release()

    def paused(self) -> contextlib.AbstractContextManager:
        paused = getattr(self.inner, "paused", None)
        return paused() if paused is not None else contextlib.nullcontext()
