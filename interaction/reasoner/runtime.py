"""Runs a reasoner beside the micro-turn loop, which never waits for it.

`delegate` starts a request on a worker thread and returns at once; a new request supersedes (cancels)
the one still running. Each micro-turn the loop calls `arrived(m)`: the answers finished by then, each
exactly once, wrapped as result tokens into the text-in queue, whose slots enter micro-turn m's input
segment (spilling into later micro-turns when an answer is longer than the slots). An answer that
finishes during micro-turn m therefore lands at the boundary of micro-turn m + 1, never inside a step.

With `latency_turns` set, an answer lands exactly that many micro-turns after the one its request was
made in (waiting for the reasoner if it is slower): what an offline evaluation needs to be reproducible
whatever the machine's speed. A live loop leaves it unset and takes answers as they come.

A reminder (an answer with `after_s`, a timer) lands that long after its request instead, counted in
micro-turns, and a new request does not cancel it; its surface (the countdown) is `ready` as soon as the
reasoner answers.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import datetime
import itertools
import math
import threading
from collections.abc import Callable

import numpy as np

from interaction.codecs import text
from interaction import MICROTURN_SECONDS
from interaction.data.pipeline import SlotQueue
from interaction.reasoner.base import Answer, Reasoner, Request


class ReasonerRuntime:
    def __init__(self, reasoner: Reasoner, text_in_slots: int,
                 clock: Callable[[], datetime.datetime] = datetime.datetime.now, latency_turns: int | None = None):
        if latency_turns is not None and latency_turns < 1:
            raise ValueError(f"latency_turns={latency_turns}: an answer can land one micro-turn after its request "
                             "at the earliest (or leave it unset: as soon as it is ready).")
        self.reasoner, self.clock, self.latency_turns = reasoner, clock, latency_turns
        self.queue = SlotQueue(text_in_slots)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="reasoner")
        self._ids = itertools.count()
        # request id -> (its answer to come, its cancellation, the micro-turn it must land in or None, the
        # micro-turn it was asked in or None)
        self._pending: dict[int, tuple[concurrent.futures.Future, threading.Event, int | None, int | None]] = {}
        self._reminders: list[tuple[int, int, Answer]] = []  # (micro-turn it lands in, request id, answer)
        self.ready: list[tuple[int, Answer]] = []  # (request id, answer) as each answer is ready: its surface shows
        self.delivered: list[tuple[int, int, Answer]] = []  # (request id, micro-turn it entered, answer)

    def delegate(self, request_text: str, context: str, *, microturn: int | None = None,
                 now: datetime.datetime | None = None) -> int:
        """Starts answering `request_text`, asked in `microturn` (needed with `latency_turns`) at wall time
        `now` (default: the runtime's clock); cancels any request still pending. Returns the request's id."""
        if self.latency_turns is not None and microturn is None:
            raise ValueError("with latency_turns set, delegate needs the micro-turn the request was made in.")
        self.cancel()
        request = Request(request_text, context, now or self.clock())
        cancelled = threading.Event()
        rid = next(self._ids)
        due = None if self.latency_turns is None else microturn + self.latency_turns
        self._pending[rid] = (self._pool.submit(self._answer, request, cancelled), cancelled, due, microturn)
        return rid

    def _answer(self, request: Request, cancelled: threading.Event) -> Answer:
        try:
            return self.reasoner.answer(request, cancelled)
        except Exception as err:  # noqa: BLE001 - a broken reasoner must not reach the loop
            return Answer(f"error: {type(err).__name__}: {err}", ok=False)

    @property
    def pending(self) -> int:
        """Requests delegated and not yet delivered or cancelled."""
        return len(self._pending)

    def cancel(self) -> None:
        """Drops every pending request: one not started never runs, a running one is told to stop and its
        answer is discarded."""
        for future, cancelled, _, _ in self._pending.values():
            cancelled.set()
            future.cancel()
        self._pending.clear()

    def arrived(self, microturn: int) -> np.ndarray:
        """The text-in slots of `microturn`: answers finished by now (or, with `latency_turns`, due now) and
        reminders due now enter the queue, which gives one micro-turn's worth of tokens. Never blocks without
        `latency_turns`."""
        for rid, (future, _, due, asked) in list(self._pending.items()):
            if future.done() if due is None else microturn >= due:
                del self._pending[rid]
                answer = future.result()
                self.ready.append((rid, answer))
                if answer.after_s > 0:
                    start = microturn if asked is None else asked
                    lands = max(microturn, start + math.ceil(answer.after_s / MICROTURN_SECONDS - 1e-9))
                    self._reminders.append((lands, rid, answer))
                else:
                    self._enter(rid, microturn, answer)
        for reminder in sorted(self._reminders, key=lambda r: r[:2]):
            if reminder[0] <= microturn:
                self._reminders.remove(reminder)
                self._enter(reminder[1], microturn, reminder[2])
        return self.queue.take()

    def _enter(self, rid: int, microturn: int, answer: Answer) -> None:
        self.queue.push(text.wrap(text.Special.RESULT, answer.text, text.Special.RESULT_END))
        self.delivered.append((rid, microturn, answer))

    def quiet(self) -> contextlib.AbstractContextManager:
        """Wrap the loop's step in this: a reasoner that can pause (`ProcessReasoner`) is stopped meanwhile."""
        paused = getattr(self.reasoner, "paused", None)
        return paused() if paused is not None else contextlib.nullcontext()

    @property
    def reminders(self) -> int:
        """Reminders (timers) answered and not yet due."""
        return len(self._reminders)

    def close(self) -> None:
        self.cancel()
        self._reminders.clear()
        self._pool.shutdown(wait=True)
