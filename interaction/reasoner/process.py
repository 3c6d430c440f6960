"""Runs any reasoner in its own process, at idle CPU priority, so that it cannot slow the micro-turn loop.

A reasoner on a thread of the loop's process shares its interpreter lock and its XLA thread pool: while it
decodes, the step's dispatch waits for the lock and the step's kernels share cores with the reasoner's
(on two CPU cores the step's p99 rose 1.3-1.7x: `python -m experiments.benchmark_step
--reasoner_busy`). In a child process scheduled `SCHED_IDLE` (Linux; `nice 19` elsewhere) with a
one-thread XLA, the reasoner only gets cycles the loop leaves idle, and the loop's side of a request is
a thread blocked on a pipe.

The child builds its reasoner by calling `factory()` (a picklable callable: a module-level function or a
`functools.partial` of one, e.g. `partial(learned.load, workdir)`). Requests go down a pipe tagged with an
id; cancelling a request raises a shared counter the child's `cancelled.is_set()` reads. If the child dies,
the request gets an error answer and the next one starts a fresh child: nothing reaches the loop.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import signal
import threading
from collections.abc import Callable, Iterator

from interaction.reasoner.base import Answer, Reasoner, Request

_POLL_S = 0.01
_CHILD_XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


class _SharedCancel:
    """The child's view of cancellation: request `rid` is cancelled once the shared counter reaches it."""

    def __init__(self, rid: int, cancelled_upto):
        self.rid, self._upto = rid, cancelled_upto

    def is_set(self) -> bool:
        return self._upto.value >= self.rid

    def wait(self, timeout: float | None = None) -> bool:
        waited = 0.0
        while not self.is_set():
            if timeout is not None and waited >= timeout:
                return False
            threading.Event().wait(_POLL_S)
            waited += _POLL_S
        return True


def _lower_priority() -> None:
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(19)


def _serve(factory_bytes: bytes, conn, cancelled_upto) -> None:
    """The child: idle priority, one XLA thread, then answer requests until told to stop (None)."""
    _lower_priority()
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_CHILD_XLA_FLAGS}".strip()
    reasoner: Reasoner = pickle.loads(factory_bytes)()
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        rid, request = message
        cancelled = _SharedCancel(rid, cancelled_upto)
        try:
            answer = Answer("cancelled", ok=False) if cancelled.is_set() else reasoner.answer(request, cancelled)
        except Exception as err:  # noqa: BLE001 - reported as an answer; the child serves on
            answer = Answer(f"error: {type(err).__name__}: {err}", ok=False)
        conn.send((rid, answer))


class ProcessReasoner:
    """A `Reasoner` whose work happens in a child process at idle priority (see the module docstring)."""

    def __init__(self, factory: Callable[[], Reasoner]):
        self._factory = pickle.dumps(factory)  # fails here, not in the child, when it cannot be pickled
        self._ctx = multiprocessing.get_context("spawn")
        self._cancelled_upto = self._ctx.Value("q", -1, lock=False)  # no lock a stopped child could hold
        self._next_id = 0
        self._process = self._conn = None
        self._start()

    def _start(self) -> None:
        self._conn, child = self._ctx.Pipe()
        self._process = self._ctx.Process(target=_serve, args=(self._factory, child, self._cancelled_upto),
                                          daemon=True, name="reasoner")
        self._process.start()
        child.close()

    def answer(self, request: Request, cancelled: threading.Event) -> Answer:
        if not self._process.is_alive():
            self._start()
        rid, self._next_id = self._next_id, self._next_id + 1
        try:
            self._conn.send((rid, request))
            while True:
                if cancelled.is_set():
                    self._cancelled_upto.value = rid
                    return Answer("cancelled", ok=False)
                if self._conn.poll(_POLL_S):
                    got, answer = self._conn.recv()
                    if got == rid:  # older ids are answers to requests cancelled before they finished
                        return answer
                elif not self._process.is_alive():
                    return self._lost()
        except (EOFError, OSError):
            return self._lost()

    def _lost(self) -> Answer:
        self._process.join(timeout=5)
        return Answer(f"error: the reasoner process exited (code {self._process.exitcode}); the next request "
                      "starts a new one", ok=False)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """The child is stopped (SIGSTOP) inside the block and continues (SIGCONT) after it."""
        pid = self._process.pid if self._process.is_alive() else None
        if pid is not None:
            os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass

    def close(self) -> None:
        self._cancelled_upto.value = self._next_id
        try:
            self._conn.send(None)
        except (OSError, ValueError):
            pass
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._conn.close()
