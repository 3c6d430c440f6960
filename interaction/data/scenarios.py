"""The eleven scenario kinds of a duplex conversation, each a function that writes onto a `Script`.

Every function places speech with timings drawn from the configured conversation statistics and labels
what happens as events (kinds in conversation.EVENT_KINDS), so evaluation and tests can check
behaviour against exact times: where the user pauses, when an interruption starts and where the model
stops, when a visual cue appears, when a timer is due, when a reasoner result arrives.
"""
from __future__ import annotations

import datetime
import re

import numpy as np

from interaction import MICROTURN_SECONDS
from interaction.data import lexicon as lx
from interaction.data import scene
from interaction.data.script import Script
from interaction.tools import knowledge, registry


def _user_turn(s: Script, t: float, text: str, **labels) -> tuple[float, float]:
    """The user's turn from t; sometimes (`timing.hesitation_prob`) it opens with a hesitation ("Um, so,"),
    a pause, and then the rest, as people start before they have found their words."""
    if s.rng.uniform() < s.timing.hesitation_prob:
        opener = s.phrase(lx.HESITATIONS).strip()
        h0, h1 = s.user(t, opener)
        p = s.pause()
        _, u1 = s.user(h1 + p, text)
        s.event("pause", h1, h1 + p, duration=round(p, 4))
        s.event("user_turn", h0, u1, text=f"{opener} {text}", **labels)
        return h0, u1
    u0, u1 = s.user(t, text)
    s.event("user_turn", u0, u1, text=text, **labels)
    return u0, u1


def _exchange(s: Script, t: float, question: str, answer: str, **labels) -> float:
    """User asks at t, the model answers after a gap; returns the end of the answer."""
    _, u1 = _user_turn(s, t, question, **labels)
    gap = s.gap()
    m0, m1 = s.model(u1 + gap, answer)
    s.event("model_turn", m0, m1, text=answer, gap=round(gap, 4))
    return m1


def _next_exchange(s: Script, model_end: float, question: str, answer: str) -> float:
    """The user's next turn: after a gap, or (sometimes) overlapping the model's last words."""
    if s.rng.uniform() < s.timing.overlap_prob:
        ov = s.overlap()
        return _exchange(s, model_end - ov, question, answer, overlap=round(ov, 4))
    return _exchange(s, model_end + s.gap(), question, answer)


def turn_taking(s: Script) -> None:
    t = _exchange(s, 0.3, *lx.fill_all(s.phrase(lx.USER_QUESTIONS), s.rng))
    for _ in range(int(s.rng.integers(1, 3))):
        t = _next_exchange(s, t, *s.phrase(lx.USER_FOLLOWUPS))


def pause(s: Script) -> None:
    first, second, answer = lx.fill_all(s.phrase(lx.PAUSED_TURNS), s.rng)
    a0, a1 = s.user(0.3, first)
    p = s.pause()
    b0, b1 = s.user(a1 + p, second)
    s.event("pause", a1, b0, duration=round(p, 4))
    s.false_start(a1, b0, answer)
    s.event("user_turn", a0, b1, text=f"{first} {second}")
    gap = s.gap()
    m0, m1 = s.model(b1 + gap, answer)
    s.event("model_turn", m0, m1, text=answer, gap=round(gap, 4))


def _long_model_turn(s: Script) -> tuple[float, float, float, str, str]:
    """The user asks for an explanation; the model starts a long answer. Returns (start, end, gap, ask, answer)."""
    ask, answer = lx.fill_all(s.phrase(lx.LONG_TURNS), s.rng)
    _, u1 = _user_turn(s, 0.3, ask)
    gap = s.gap()
    m0, m1 = s.model(u1 + gap, answer)
    return m0, m1, gap, ask, answer


def user_backchannel(s: Script) -> None:
    m0, m1, gap, ask, answer = _long_model_turn(s)
    s.event("model_turn", m0, m1, text=answer, gap=round(gap, 4))
    turn, t = s.events[-1], m0 + s.uniform(1.0, 2.0)
    then_interrupt = s.contrast_onsets()  # the user interrupts after the first backchannel
    while t < m1 - 1.0:
        bc = lx.pick(s.rng, lx.USER_BACKCHANNELS)
        b0, b1 = s.backchannel(t, bc)
        s.event("user_backchannel", b0, b1, text=bc, context=ask, overlap=round(b1 - b0, 4))
        yielded = s.false_yield(b0, b1, m0, answer)
        if yielded:  # the turn ends where it yielded; it goes on with the rest in a new one
            turn.end, m0, m1, answer = yielded
            s.event("model_turn", m0, m1, text=answer, gap=round(m0 - b1, 4))
            turn = s.events[-1]
        t = b1 + s.uniform(1.5, 3.0)
        if then_interrupt and m0 + 0.5 < t < m1 - 1.0:
            _interrupt(s, t, ask, turn)
            break


def _interrupt(s: Script, t: float, ask: str, turn) -> None:
    """The user interrupts the model's turn (the `model_turn` event `turn`) at t: the model stops a latency
    later and, once the user is done, replies to the interruption."""
    text, reply = lx.fill_all(s.phrase(lx.INTERRUPTIONS), s.rng)
    i0, i1 = s.cut_in(t, text)
    stop = s.cut_model(i0 + s.stop_latency(max(0.15, i1 - i0)))
    latency = stop - i0
    turn.end = stop
    turn.data["interrupted"] = True
    s.event("interruption", i0, i1, text=text, context=ask, offset=round(t - turn.start, 4), overlap=round(latency, 4))
    s.event("model_stop", stop, stop, latency=round(latency, 4))
    gap = max(s.gap(), stop - i1 + MICROTURN_SECONDS)  # a silent micro-turn at least between the two
    r0, r1 = s.model(i1 + gap, reply)
    s.event("model_turn", r0, r1, text=reply, gap=round(gap, 4))


def interruption(s: Script) -> None:
    m0, m1, gap, ask, answer = _long_model_turn(s)
    t = m0 + s.uniform(s.timing.interrupt_min, s.timing.interrupt_max)
    s.event("model_turn", m0, m1, text=answer, gap=round(gap, 4))
    turn = s.events[-1]
    if s.contrast_onsets():  # backchannels first, which the model talks through
        for _ in range(int(s.rng.integers(1, 3))):
            bc = lx.pick(s.rng, lx.USER_BACKCHANNELS)
            b0, b1 = s.backchannel(t, bc)
            s.event("user_backchannel", b0, b1, text=bc, context=ask, overlap=round(b1 - b0, 4))
            t = b1 + s.uniform(s.timing.interrupt_min, s.timing.interrupt_max)
    _interrupt(s, t, ask, turn)


def side_talk(s: Script) -> None:
    q, a = lx.fill_all(s.phrase(lx.USER_QUESTIONS), s.rng)
    t = _exchange(s, 0.3, q, a)
    side = lx.fill(s.phrase(lx.SIDE_TALK), s.rng)
    tm = s.timing  # turned away from the microphone: quieter and muffled
    st0, st1 = s.user(t + s.uniform(0.5, 1.0), side, gain_db=tm.side_talk_db, lowpass_hz=tm.side_talk_lowpass_hz)
    s.event("side_talk", st0, st1, text=side, context=q)
    other = lx.pick(s.rng, s.other_voices)
    reply = lx.pick(s.rng, lx.SIDE_REPLIES)
    r0, r1 = s.user(st1 + s.gap(), reply, voice=other, gain_db=-12.0, words=False)
    s.event("background_speech", r0, r1, text=reply, level_db=-12.0, speaker=other.name)
    back = s.phrase(lx.RETURNS)
    _exchange(s, r1 + s.uniform(0.4, 1.0), back, lx.pick(s.rng, lx.RETURN_REPLIES))


def background_speech(s: Script) -> None:
    q, a = lx.fill_all(s.phrase(lx.USER_QUESTIONS), s.rng)
    t = _exchange(s, 0.3, q, a)
    other = lx.pick(s.rng, s.other_voices)
    level = -s.uniform(s.timing.background_db_min, s.timing.background_db_max)
    for start in sorted(s.uniform(0.0, t) for _ in range(2)):
        text = lx.pick(s.rng, lx.BACKGROUND)
        b0, b1 = s.user(start, text, voice=other, gain_db=level, words=False)
        s.event("background_speech", b0, b1, text=text, level_db=round(level, 2), speaker=other.name, context=q)
    _next_exchange(s, t, *s.phrase(lx.USER_FOLLOWUPS))


def model_backchannel(s: Script) -> None:
    story = lx.fill_all(s.phrase(lx.USER_STORIES), s.rng)
    t, start = 0.3, 0.3
    for k, sentence in enumerate(story):
        u0, u1 = s.user(t, sentence)
        if k == len(story) - 1:
            break
        gap = s.pause()
        s.event("pause", u1, u1 + gap, duration=round(gap, 4))
        if s.rng.uniform() < 0.6:
            bc = lx.pick(s.rng, lx.MODEL_BACKCHANNELS)
            b0, b1 = s.model(u1 + min(s.gap(), gap * 0.5), bc)
            s.event("model_backchannel", b0, b1, text=bc)
        else:
            s.false_start(u1, u1 + gap, lx.STORY_REPLIES)
        t = u1 + gap
    s.event("user_turn", start, u1, text=" ".join(story))
    gap = s.gap()
    reply = lx.pick(s.rng, lx.STORY_REPLIES)
    m0, m1 = s.model(u1 + gap, reply)
    s.event("model_turn", m0, m1, text=reply, gap=round(gap, 4))


def visual_cue(s: Script) -> None:
    ask, ack = s.phrase(lx.IDLE_CHAT)
    t = _exchange(s, 0.3, ask, ack)
    s.shapes = [scene.random_shape(s.rng) for _ in range(int(s.rng.integers(1, 3)))]
    alive = list(range(len(s.shapes)))  # indices of the initial shapes still on screen
    colours = [x.colour for x in s.shapes]
    for _ in range(int(s.rng.integers(1, 3))):
        cue_t = round(t + s.uniform(1.0, 3.0), 1)
        action = str(s.rng.choice(["appear", "vanish", "recolour"] if len(alive) > 1 else ["appear", "recolour"]))
        if action == "appear":
            shape = scene.random_shape(s.rng, avoid_colours=colours)
            change = scene.Change(cue_t, action, shape)
            kind, colour = shape.kind, shape.colour
        else:
            idx = alive[int(s.rng.integers(len(alive)))]
            kind = s.shapes[idx].kind
            if action == "vanish":
                colour = colours[idx]
                alive.remove(idx)
                change = scene.Change(cue_t, action, idx)
            else:
                colour = str(s.rng.choice([c for c in scene.COLOURS if c != colours[idx]]))
                colours[idx] = colour
                change = scene.Change(cue_t, action, idx, colour=colour)
        s.changes.append(change)
        remark = lx.VISUAL_REMARKS[action].format(kind=kind, colour=colour)
        s.event("visual_cue", cue_t, cue_t, action=action, shape=kind, colour=colour)
        latency = float(np.clip(s.rng.lognormal(np.log(s.timing.remark_latency_median), 0.3), 0.2, 1.5))
        r0, r1 = s.model(s.user_busy_until(cue_t + latency), remark)
        s.event("model_remark", r0, r1, text=remark, latency=round(r0 - cue_t, 4))
        t = r1


def translation(s: Script) -> None:
    lang = str(s.rng.choice(sorted(lx.TRANSLATIONS)))
    ask = lx.TRANSLATE_ASK[lang]
    t = _exchange(s, 0.3, ask, lx.pick(s.rng, lx.TRANSLATE_ACK))
    voice = next(v for v in s.other_voices if v.language == lang)
    s.meta["source_language"] = lang
    pairs = lx.TRANSLATIONS[lang]
    order = s.rng.permutation(len(pairs))[: int(s.rng.integers(2, 4))]
    t += s.gap()
    model_free = 0.0
    for j in order:
        src, tgt = pairs[j]
        u0, u1 = s.user(t, src, voice=voice)
        lag = s.gap() + s.uniform(0.2, 0.6)
        m0, m1 = s.model(max(u1 + lag, model_free + 0.1), tgt)
        s.event("translation", m0, m1, source=src, target=tgt, source_start=round(u0, 4), source_end=round(u1, 4),
                lag=round(m0 - u1, 4), language=lang)
        model_free = m1
        t = u1 + s.pause() * 0.6  # the user goes on while the model translates


def _boundary(t: float) -> float:
    """The first micro-turn boundary at or after t: where a reasoner's result enters text-in."""
    return float(np.ceil(t / MICROTURN_SECONDS) * MICROTURN_SECONDS)


def timer(s: Script) -> None:
    n = int(s.rng.choice(s.timing.timer_seconds))
    request = s.phrase(lx.TIMER_REQUESTS).format(n=lx.NUMBER_WORDS[n])
    u0, u1 = s.user(0.3, request)
    s.event("user_turn", u0, u1, text=request)
    s.event("timer_request", u0, u1, text=request, seconds=n)
    gap = s.gap()
    ack = lx.pick(s.rng, lx.TIMER_ACKS)
    m0, m1 = s.model(u1 + gap, ack)
    s.event("model_turn", m0, m1, text=ack, gap=round(gap, 4))
    # The model has no clock beyond its context: it hands the count to the reasoner (a tool that keeps time),
    # which says when the time is up, counted from the hand-over; the model then says so.
    s.text(m0, "delegate", request)
    due = u1 + n
    s.event("timer_due", due, due, seconds=n)
    done = lx.pick(s.rng, lx.TIMER_DONE).format(n=lx.NUMBER_WORDS[n], N=lx.NUMBER_WORDS[n].capitalize())
    arrival = _boundary(m0 + n)
    s.text(arrival, "result", done)
    d0, d1 = s.model(s.user_busy_until(arrival + s.gap()), done)
    s.event("model_turn", d0, d1, text=done, timer=True)


# (the source unit as said, as the units tool reads it, the target unit for the tool, the target as said)
UNIT_QUESTIONS = (("miles", "miles", "km", "kilometres"), ("kilograms", "kg", "lb", "pounds"),
                  ("litres", "litres", "cups", "cups"), ("feet", "feet", "m", "metres"))
CLOCK_QUESTIONS = (("What day of the week is it?", "weekday"), ("What is the date today?", "date"))


def tool_question(rng: np.random.Generator) -> tuple[str, str, str, str]:
    """(question, tool, argument, spoken answer template with {result}): a question for the reasoner."""
    which = int(rng.integers(4))
    if which == 0:
        a, b = (int(x) for x in rng.integers(11, 99, size=2))
        return f"What is {a} times {b}?", "calculator", f"{a}*{b}", f"{a} times {b} is {{result}}."
    if which == 1:
        n = int(rng.integers(2, 30))
        said_src, src, dst, spoken = lx.pick(rng, UNIT_QUESTIONS)
        return (f"How many {spoken} are in {n} {said_src}?", "units", f"{n} {src} to {dst}",
                f"That is about {{result}} {spoken}.")
    if which == 2:
        fact = lx.pick(rng, knowledge.FACTS)
        return fact.question, "knowledge", fact.question, "It is {result}."
    q, arg = lx.pick(rng, CLOCK_QUESTIONS)
    return q, "clock", arg, "It is {result}."


def spoken_result(result: str) -> str:
    """Tool output as the model would say it: numbers rounded to one decimal, units dropped."""
    m = re.fullmatch(r"(-?[\d.]+)(?: \S+)?", result)
    if m and "." in m.group(1):
        return f"{float(m.group(1)):.1f}"
    return m.group(1) if m else result


def search_question(heldout: bool, rng: np.random.Generator) -> tuple[str, str, str, list[dict]]:
    """(question, result, spoken answer, trace) of a question about the gazetteer, of the learned reasoner's
    split (`episodes.search_questions`), answered as the rules reasoner does: search, open, read. The result
    is the fact read (what a correct answer says), or "could not find NAME" where no document has it."""
    from interaction.reasoner import episodes, rules  # the reasoner's split and plan (rules reads this module)
    from interaction.tools import documents

    asked = episodes.search_questions("eval" if heldout else "train")
    question = asked[int(rng.integers(len(asked)))]
    answer, trace = rules.search_and_read(question)
    name, holds, _ = documents.read_question(question)
    found = re.search(holds, trace[-1]["result"]) if len(trace) > 1 else None
    return question, found.group(1) if found else f"could not find anything about {name}", answer, list(trace)


def delegation(s: Script) -> None:
    start = datetime.datetime(2026, 1, 1) + datetime.timedelta(seconds=int(s.rng.integers(0, 365 * 86400)))
    s.meta["wall_clock_start"] = start.isoformat()
    searched = s.rng.uniform() < s.timing.search_delegation_share
    if searched:
        question, fact, answer, trace = search_question(s.heldout, s.rng)
    else:
        question, tool, argument, template = tool_question(s.rng)
    u0, u1 = s.user(0.3, question)
    s.event("user_turn", u0, u1, text=question)
    gap = s.gap()
    ack = lx.pick(s.rng, lx.DELEGATE_ACKS)
    a0, a1 = s.model(u1 + gap, ack)
    s.event("model_turn", a0, a1, text=ack, gap=round(gap, 4))
    s.text(a0, "delegate", question)
    latency = s.uniform(s.timing.reasoner_latency_min, s.timing.reasoner_latency_max)
    arrival = _boundary(a0 + latency)
    if searched:
        (tool, argument), result_text = registry.parse_call(trace[0]["call"]), fact
    else:
        result = registry.run_tool(tool, argument, now=start + datetime.timedelta(seconds=arrival))
        if not result.ok:
            raise RuntimeError(f"tool call {tool}({argument}) failed while generating: {result.text}")
        result_text, answer = result.text, template.format(result=spoken_result(result.text))
        trace = [{"call": registry.format_call(tool, argument), "result": result.text}]
    s.text(arrival, "result", answer)  # the reasoner's answer enters text-in; the model says it when it can
    s.event("delegation", a0, arrival, request=question, tool=tool, argument=argument, result=result_text,
            answer=answer, trace=trace)
    if s.rng.uniform() < 0.5:
        w0, w1 = s.user(a1 + s.gap() + s.uniform(0.0, 0.8), s.phrase(lx.WAIT_FILLERS))
        s.event("user_turn", w0, w1, text="filler")
    r0, r1 = s.model(s.user_busy_until(arrival + s.gap()), answer)
    s.event("model_turn", r0, r1, text=answer, delegated=True)


KINDS = {
    "turn_taking": turn_taking, "pause": pause, "user_backchannel": user_backchannel,
    "interruption": interruption, "side_talk": side_talk, "background_speech": background_speech,
    "model_backchannel": model_backchannel, "visual_cue": visual_cue, "translation": translation,
    "timer": timer, "delegation": delegation,
}
