"""The background reasoner's runtime: never blocks the loop, supersedes, survives failures, lands on boundaries."""
import datetime
import pickle
import threading
import time
import types

import numpy as np
import pytest

from interaction.codecs import text, text_stream
from interaction.data import listening
from interaction.data.pipeline import SlotQueue, _text_slots
from interaction.reasoner import rules
from interaction.reasoner.base import Answer, CallableReasoner, Request, ScriptedReasoner
from interaction.reasoner.runtime import ReasonerRuntime

NOW = datetime.datetime(2026, 3, 4, 12, 0)
PAD = text.Special.PAD


class Gated:
    """A reasoner that answers only when the test opens its gate; records what it was asked."""

    def __init__(self):
        self.gate, self.started, self.asked = threading.Event(), threading.Event(), []

    def answer(self, request: Request, cancelled: threading.Event) -> Answer:
        self.asked.append(request)
        self.started.set()
        while not self.gate.wait(0.01):
            if cancelled.is_set():
                return Answer("cancelled", ok=False)
        return Answer(f"answer to {request.text}")


def wait_for(runtime, microturn, delivered: int, timeout_s: float = 90.0) -> list[np.ndarray]:
    """Micro-turns from `microturn` on until `delivered` answers have arrived (within `timeout_s`: a child
    process may take seconds to start on a loaded machine)."""
    rows = []
    deadline = time.monotonic() + timeout_s
    m = microturn
    while time.monotonic() < deadline:
        rows.append(runtime.arrived(m))
        m += 1
        if len(runtime.delivered) >= delivered:
            return rows
        threading.Event().wait(0.01)
    raise AssertionError("no answer arrived")


def decode(row) -> str:
    return text.decode([int(t) for t in row if t >= text.NUM_SPECIAL])


def test_the_loop_never_waits_and_answers_arrive_once_at_a_boundary():
    reasoner = Gated()
    rt = ReasonerRuntime(reasoner, text_in_slots=8, clock=lambda: NOW)
    rt.delegate("what is 2+2", "user: what is 2+2")
    assert reasoner.started.wait(5)
    for m in range(3):  # the reasoner is still thinking: the loop goes on with empty slots
        assert (rt.arrived(m) == PAD).all()
    reasoner.gate.set()
    rows = wait_for(rt, 3, delivered=1)
    (rid, landed, answer), = rt.delivered
    assert answer.text == "answer to what is 2+2" and landed == 3 + len(rows) - 1
    assert rows[-1][0] == text.Special.RESULT  # enters at the start of that micro-turn's slots
    spilled = [rows[-1]] + [rt.arrived(m) for m in range(landed + 1, landed + 6)]
    tokens = [int(t) for row in spilled for t in row if t != PAD]
    assert tokens == text.wrap(text.Special.RESULT, "answer to what is 2+2", text.Special.RESULT_END)
    assert reasoner.asked[0].context == "user: what is 2+2" and reasoner.asked[0].now == NOW
    assert (rt.arrived(100) == PAD).all()  # delivered once
    rt.close()


def test_a_new_request_supersedes_the_pending_one():
    reasoner = Gated()
    rt = ReasonerRuntime(reasoner, text_in_slots=8)
    rt.delegate("first", "")
    assert reasoner.started.wait(5)
    rt.delegate("second", "")
    reasoner.gate.set()
    wait_for(rt, 0, delivered=1)
    threading.Event().wait(0.1)
    for m in range(50, 60):
        rt.arrived(m)
    assert [a.text for _, _, a in rt.delivered] == ["answer to second"]
    rt.close()


def test_failures_become_error_answers():
    class Broken:
        def answer(self, request, cancelled):
            raise RuntimeError("model server down")

    rt = ReasonerRuntime(Broken(), text_in_slots=8)
    rt.delegate("anything", "")
    wait_for(rt, 0, delivered=1)
    (_, _, answer), = rt.delivered
    assert not answer.ok and "model server down" in answer.text
    rt.close()


def test_scripted_reasoner_uses_the_sandboxed_tools():
    plan = {"What is 17 times 23?": ("calculator", "17*23"), "Huge": ("calculator", "9**9**9"),
            "Code": ("calculator", "__import__('os').system('true')")}.__getitem__
    reasoner = ScriptedReasoner(plan)
    ask = lambda q: reasoner.answer(Request(q, "", NOW), threading.Event())
    good = ask("What is 17 times 23?")
    assert good.ok and good.text == "391" and good.trace == ({"call": "calculator(17*23)", "result": "391"},)
    for refused in ("Huge", "Code"):
        answer = ask(refused)
        assert not answer.ok and answer.text.startswith("error")
    assert not ask("No plan for this").ok
    cancelled = threading.Event()
    cancelled.set()
    assert ScriptedReasoner(plan, delay_s=10).answer(Request("Huge", "", NOW), cancelled).text == "cancelled"


def test_external_callable_gets_request_and_context():
    seen = []
    reasoner = CallableReasoner(lambda r: seen.append((r.text, r.context, r.now)) or "Lima")
    assert reasoner.answer(Request("capital of Peru?", "user: capital of Peru?", NOW), threading.Event()).text == "Lima"
    assert seen == [("capital of Peru?", "user: capital of Peru?", NOW)]
    failing = CallableReasoner(lambda r: 1 / 0)
    assert not failing.answer(Request("x", "", NOW), threading.Event()).ok


def test_slot_queue_lays_tokens_as_the_offline_pipeline_does():
    items = [(0.0, [20, 21, 22]), (0.25, [30] * 9), (0.9, [40])]
    offline = _text_slots(items, n_turns=6, slots=4)
    live, queue = [], SlotQueue(4)
    for m in range(6):
        for t, tokens in items:
            if int(t / 0.2 + 1e-6) == m:
                queue.push(tokens)
        live.append(queue.take())
    np.testing.assert_array_equal(np.stack(live), offline)
    assert offline[1].tolist() == [30, 30, 30, 30] and offline[3].tolist() == [30, PAD, PAD, PAD]
    assert offline[4].tolist() == [40, PAD, PAD, PAD]


@pytest.fixture(autouse=True)
def _no_stray_threads():
    before = {t.name for t in threading.enumerate()}
    yield
    stray = [t for t in threading.enumerate()
             if t.name.startswith("reasoner") and t.name not in before and t.is_alive()]
    for t in stray:
        t.join(timeout=5)
    assert not [t for t in stray if t.is_alive()]


def test_live_session_hands_delegations_to_the_reasoner_and_feeds_its_answer(tiny_corpus):
    """A stand-in model that delegates over micro-turns 14-15: the reasoner gets the request and the conversation so
    far, and its answer enters the text-in slots of a later micro-turn, not before."""
    from experiments.configs import model as model_config
    from interaction.data import records
    from interaction.evals import runner
    from interaction.models.model import ModelSpec

    layout = ModelSpec.from_config(model_config.get_config("tiny")).layout
    conv = next(c for c in records.read(tiny_corpus / "eval.array_record") if c.kind == "turn_taking")
    seen = []

    def step(params, state, inputs, seeds, microturns, fresh):
        seen.append(np.asarray(inputs["text_in"])[0])
        toks = np.full((1, layout.text_out_slots), PAD, np.int32)
        request = text.wrap(text.Special.DELEGATE, "what is 2+2", text.Special.DELEGATE_END)
        if len(seen) in (15, 16):  # 13 tokens over two micro-turns of 8 slots
            part = request[:8] if len(seen) == 15 else request[8:]
            toks[0, : len(part)] = part
        mel = np.full((1, layout.frames, layout.dmel.n_mels), layout.dmel.log_min, np.float32)
        return state, {"mel": mel, "text_tokens": toks, "listen": np.zeros((1, len(listening.NAMES)), np.float32)}

    asked = []
    reasoner = CallableReasoner(lambda r: asked.append((r.text, r.context)) or "4")
    rt = ReasonerRuntime(reasoner, layout.text_in_slots)
    one_slot = types.SimpleNamespace(time=np.zeros(1, np.int32))  # all the runner reads of a state
    session = runner.conversation_session(conv, layout, seed=0, runtime=rt)
    ((_, out),) = runner.run_sessions(step, None, one_slot, [session], layout)
    rt.close()
    assert len(asked) == 1 and asked[0][0] == "what is 2+2"
    heard = [w for _, end, w in conv.user_words if end <= 3.2]  # heard by the end of micro-turn 15
    assert heard and asked[0][1] == "user: " + " ".join(heard)  # what the user had said by then; the model nothing
    (_, landed, answer), = rt.delivered
    assert answer.text == "4" and landed >= 16  # asked after micro-turn 15's step: lands at 16 at the earliest
    assert ([int(t) for t in seen[landed] if t != PAD][:3]
            == text.wrap(text.Special.RESULT, "4", text.Special.RESULT_END))
    assert all((row == PAD).all() or text.Special.RESULT not in row for row in seen[:landed])
    assert text_stream.delegations(out["tokens"]) == [{"time": 3.0, "request": "what is 2+2"}]


def test_fixed_latency_lands_answers_exactly_then_waiting_for_a_slow_reasoner():
    fast = ReasonerRuntime(CallableReasoner(lambda r: "now"), text_in_slots=8, latency_turns=3)
    fast.delegate("q", "", microturn=10)
    threading.Event().wait(0.2)  # answered long before it is due
    assert all((fast.arrived(m) == PAD).all() for m in (10, 11, 12))
    assert fast.arrived(13)[0] == text.Special.RESULT and fast.delivered[0][1] == 13
    fast.close()
    slow = Gated()
    rt = ReasonerRuntime(slow, text_in_slots=8, latency_turns=1)
    rt.delegate("q", "", microturn=0)
    threading.Timer(0.3, slow.gate.set).start()
    assert rt.arrived(1)[0] == text.Special.RESULT  # due: the loop waits for it (offline evaluation only)
    rt.close()
    with pytest.raises(ValueError, match="one micro-turn after"):
        ReasonerRuntime(slow, text_in_slots=8, latency_turns=0)
    with pytest.raises(ValueError, match="needs the micro-turn"):
        ReasonerRuntime(slow, text_in_slots=8, latency_turns=2).delegate("q", "")


def test_a_timer_shows_its_countdown_at_once_and_is_said_when_due_whatever_comes_between():
    rt = ReasonerRuntime(CallableReasoner(rules.respond), text_in_slots=8, latency_turns=1)
    rt.delegate("Tell me when five seconds have passed.", "", microturn=3)
    assert (rt.arrived(3) == PAD).all() and (rt.arrived(4) == PAD).all()
    (_, ready), = rt.ready  # answered: the countdown can show, nothing is said yet
    assert ready.surface is not None and rt.reminders == 1 and not rt.delivered
    rt.delegate("What is 2 times 3?", "", microturn=10)  # a new request does not cancel the timer
    rows = {m: rt.arrived(m) for m in range(5, 40)}
    assert [(m, a.text) for _, m, a in rt.delivered] == [(11, "2 times 3 is 6."), (3 + 25, "Five seconds have passed.")]
    assert rows[28][0] == text.Special.RESULT and rt.reminders == 0
    rt.delegate("Set a timer for one second.", "", microturn=40)
    rt.close()  # a closed session's timers are dropped
    assert rt.reminders == 0


def test_rules_answer_the_corpus_questions_as_the_corpus_does():
    from interaction.data.scenarios import spoken_result, tool_question
    from interaction.tools import registry

    rng = np.random.default_rng(3)
    for _ in range(60):
        question, tool, argument, template = tool_question(rng)
        want = template.format(result=spoken_result(registry.run_tool(tool, argument, now=NOW).text))
        assert rules.answer(Request(question, "", NOW)) == want
    with pytest.raises(ValueError, match="not a question"):
        rules.plan("Why is the sky blue?")
    assert not CallableReasoner(rules.answer).answer(Request("Why?", "", NOW), threading.Event()).ok


# ---------------------------------------------------------------- the reasoner in its own process
# Reasoners built in the child process: module level, so that the child can import them.


class _Sleepy:
    """Answers with its process' scheduling policy; sleeps first on 'slow' (until cancelled); dies on 'die'."""

    def answer(self, request, cancelled):
        import os

        if request.text == "die":
            os._exit(3)
        if request.text == "slow" and cancelled.wait(60):
            return Answer("gave up", ok=False)
        return Answer(f"{request.text} in {os.getpid()} policy {os.sched_getscheduler(0)}")


def test_process_reasoner_answers_cancels_and_survives_its_child():
    import os

    from interaction.reasoner.process import ProcessReasoner

    reasoner = ProcessReasoner(_Sleepy)
    try:
        ask = lambda q, ev=None: reasoner.answer(Request(q, "", NOW), ev or threading.Event())
        first = ask("hello")
        assert first.ok and first.text.startswith("hello in ")
        pid = int(first.text.split()[2])
        assert pid != os.getpid() and first.text.endswith(f"policy {os.SCHED_IDLE}")  # it only gets idle cycles
        cancelled = threading.Event()
        threading.Timer(0.3, cancelled.set).start()
        assert ask("slow", cancelled).text == "cancelled"
        assert ask("next").text.startswith("next in ")  # the cancelled answer is discarded, not delivered late
        state = lambda: open(f"/proc/{pid}/stat").read().split(")")[-1].split()[0]  # noqa: E731
        settled = lambda want: any(threading.Event().wait(0.01) or (state() == "T") == want for _ in range(200))  # noqa: E731
        with ReasonerRuntime(reasoner, text_in_slots=8).quiet():  # what the loop wraps its step in
            assert settled(True)  # stopped (signals land within moments): it takes no CPU from the step
        assert settled(False) and ask("after").ok
        died = ask("die")
        assert not died.ok and "exited" in died.text
        again = ask("back")
        assert again.ok and int(again.text.split()[2]) != pid  # a fresh child took over
    finally:
        reasoner.close()
    with pytest.raises((AttributeError, pickle.PicklingError)):  # a factory the child could not rebuild fails at once
        ProcessReasoner(lambda: _Sleepy())


def test_process_reasoner_in_the_runtime():
    from interaction.reasoner.process import ProcessReasoner

    reasoner = ProcessReasoner(_Sleepy)
    rt = ReasonerRuntime(reasoner, text_in_slots=8)
    try:
        rt.delegate("slow", "")
        for m in range(5):
            assert (rt.arrived(m) == PAD).all()
        rt.delegate("quick", "")  # supersedes the slow one, which the child is told to drop
        wait_for(rt, 5, delivered=1)
        (_, _, answer), = rt.delivered
        assert answer.text.startswith("quick in ")
    finally:
        rt.close()
        reasoner.close()
