"""Runs a reasoner beside the micro-turn loop, which never waits for it.

`delegate` starts a request on a worker thread and returns at once; a new request supersedes (cancels)
the one still running. Each micro-turn the loop calls `arrived(m)`: the answers finished by then, each
exactly once, wrapped as result tokens into the text-in queue, whose slots enter micro-turn m's input
segment (spilling into later micro-turns when an answer is longer than the slots). An answer that
finishes during micro-turn m therefore lands at the boundary of micro-turn m + 1, never inside a step.
"""
from __future__ import annotations

import concurrent.futures
import datetime
import itertools
import threading
from collections.abc import Callable

import numpy as np

from interaction.codecs import text
from interaction.data.pipeline import SlotQueue
from interaction.reasoner.base import Answer, Reasoner, Request


class ReasonerRuntime:
    def __init__(self, reasoner: Reasoner, text_in_slots: int,
                 clock: Callable[[], datetime.datetime] = datetime.datetime.now):
        self.reasoner, self.clock = reasoner, clock
        self.queue = SlotQueue(text_in_slots)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="reasoner")
        self._ids = itertools.count()
        self._pending: dict[int, tuple[concurrent.futures.Future, threading.Event]] = {}
        self.delivered: list[tuple[int, int, Answer]] = []  # (request id, micro-turn it entered, answer)

    def delegate(self, request_text: str, context: str) -> int:
        """Starts answering `request_text`; cancels any request still pending. Returns the request's id."""
        self.cancel()
        request = Request(request_text, context, self.clock())
        cancelled = threading.Event()
        rid = next(self._ids)
        self._pending[rid] = (self._pool.submit(self._answer, request, cancelled), cancelled)
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
        for future, cancelled in self._pending.values():
            cancelled.set()
            future.cancel()
        self._pending.clear()

    def arrived(self, microturn: int) -> np.ndarray:
        """The text-in slots of `microturn`: answers finished by now enter the queue, which gives one
        micro-turn's worth of tokens. Never blocks."""
        for rid, (future, _) in list(self._pending.items()):
            if future.done():
                del self._pending[rid]
                answer = future.result()
                self.queue.push(text.wrap(text.Special.RESULT, answer.text, text.Special.RESULT_END))
                self.delivered.append((rid, microturn, answer))
        return self.queue.take()

    def close(self) -> None:
        self.cancel()
        self._pool.shutdown(wait=True)
