"""Runs the model on held-out inputs as live sessions would, and writes what it emitted.

Sessions run as slots of one batched streaming state, as the live engine's do: each slot is fed its own
input one micro-turn at a time (user audio, video and typed text / reasoner results of that micro-turn
only), a slot whose input has ended takes the next one and starts from an empty state, and every row is
computed as if alone (its own random key; no row reads another). The step's audio frames go through the
live server's Griffin-Lim decoder in 200 ms pieces as they are emitted, one batched call for every slot. The output
waveform is time-synchronous with the input: block m is played during micro-turn m + 1, and the vocoder's
own delay is kept, so latencies measured on it are what a listener would get. Every step's wall time is
recorded too (one step advances every slot).

Outputs land in Full-Duplex-Bench's per-sample layout, beside the exported inputs and labels:
`<task>/<id>/output.wav` plus `model_text.json` (the model's text stream as timed words, its delegation
requests and, when a live reasoner answered them, the answers with the time they entered text-in).
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import jax
import numpy as np

from interaction import MICROTURN_SECONDS, SAMPLE_RATE
from interaction.codecs import audio, text, text_stream, vocoder
from interaction.data import fdb_export, pipeline
from interaction.data.conversation import Conversation
from interaction.data.layout import MicroTurnLayout
from interaction.models import streaming
from interaction.reasoner.runtime import ReasonerRuntime


def conversation_so_far(conv: Conversation | None, model_words, now: float) -> str:
    """What both sides have said by `now`: the context a delegation hands the reasoner. The user's side is
    the conversation's transcript, the model's its `model_words` (start, end, text)."""
    user = [(a, "user", w) for a, b, w in (conv.user_words if conv is not None else ()) if b <= now]
    return text_stream.transcript(user + [(a, "model", w) for a, _, w in model_words])


@dataclasses.dataclass
class Session:
    """One input to stream: the step inputs of its micro-turns and the length its output must have."""
    name: str
    inputs: dict[str, np.ndarray]  # streaming.INPUTS, each (M, ...)
    samples: int  # output length at 16 kHz
    seed: int
    conv: Conversation | None = None  # a corpus conversation: the delegations' context and wall clock
    runtime: ReasonerRuntime | None = None  # answers the model's own delegations (else none are answered)


def conversation_session(conv: Conversation, layout: MicroTurnLayout, *, seed: int,
                         runtime: ReasonerRuntime | None = None) -> Session:
    """A held-out conversation as a session. Without a `runtime` the reasoner results in text-in are the
    corpus' own (at their labelled times); with one they are left out, and the runtime supplies its own."""
    features = pipeline.conversation_features(conv, layout, results=runtime is None)
    return Session(conv.id, {k: features[k] for k in streaming.INPUTS}, len(conv.user_audio), seed, conv, runtime)


def wave_session(name: str, wave: np.ndarray, layout: MicroTurnLayout, *, seed: int) -> Session:
    """A bare 16 kHz recording (a benchmark's input.wav) as a session: no video, no text."""
    return Session(name, pipeline.stream_inputs(wave, layout), len(wave), seed)


@dataclasses.dataclass
class _Running:
    session: Session
    reader: text_stream.TextStreamReader
    pieces: list
    tokens: list
    listen: list = dataclasses.field(default_factory=list)
    microturn: int = 0


def run_sessions(step, params, state: streaming.StreamState, sessions: Iterable[Session], layout: MicroTurnLayout,
                 *, step_times: list[float] | None = None) -> Iterator[tuple[Session, dict]]:
    """Streams `sessions` through the slots of `state` (its batch size), yielding (session, result) as each
    ends: result holds its output `wave` (exactly `session.samples` long), text `tokens` (M, S_out) (the
    first slot its speaking state), `listen` (M, K) its listening heads' probabilities and, with a
    runtime, the `results` it delivered. `step` is `streaming.make_step`'s. Each step's wall time
    is appended to `step_times` (one step serves every slot at once).
    """
    slots = int(state.time.shape[0])
    pending = iter(sessions)
    running: list[_Running | None] = [None] * slots
    voc = vocoder.live_decoder(layout.dmel, slots)
    silence = np.zeros(round(MICROTURN_SECONDS * SAMPLE_RATE), np.float32)
    times = [] if step_times is None else step_times
    exhausted = False
    while True:
        fresh = np.zeros(slots, bool)
        for i in range(slots):
            if running[i] is None and not exhausted:
                session = next(pending, None)
                if session is None:
                    exhausted = True
                    break
                if len(session.inputs["user_audio"]) < 1:
                    raise ValueError(f"{session.name}: no micro-turn to run.")
                running[i] = _Running(session, text_stream.TextStreamReader(), [silence], [])
                fresh[i] = True
                voc.reset(i)
        if not any(running):
            return
        inputs = streaming.idle_inputs(layout, slots)
        seeds = np.zeros(slots, np.uint32)
        turns = np.zeros(slots, np.int32)
        for i, r in enumerate(running):
            if r is None:
                continue
            m = r.microturn
            for k in streaming.INPUTS:
                inputs[k][i] = r.session.inputs[k][m]
            if r.session.runtime is not None:
                r.session.runtime.queue.push(t for t in r.session.inputs["text_in"][m] if t != text.Special.PAD)
                inputs["text_in"][i] = r.session.runtime.arrived(m)
            seeds[i], turns[i] = np.uint32(r.session.seed % 2**32), m
        t0 = time.perf_counter()
        with contextlib.ExitStack() as quiet:
            for r in running:
                if r is not None and r.session.runtime is not None:
                    quiet.enter_context(r.session.runtime.quiet())
            state, out = step(params, state, inputs, seeds, turns, fresh)
            mel, toks, heard = jax.device_get((out["mel"], out["text_tokens"], out["listen"]))
        times.append(time.perf_counter() - t0)
        waves = voc.push(np.asarray(mel))
        for i, r in enumerate(running):
            if r is None:
                continue
            m = r.microturn
            r.pieces.append(waves[i])
            r.tokens.append(np.asarray(toks[i]))
            r.listen.append(np.asarray(heard[i]))
            runtime = r.session.runtime
            for d in r.reader.feed(toks[i])[1]:
                if runtime is not None:
                    now = (m + 1) * MICROTURN_SECONDS
                    context = conversation_so_far(r.session.conv, r.reader.spoken_words(), now)
                    runtime.delegate(d["request"], context, microturn=m, now=_wall_clock(r.session.conv, now))
            r.microturn += 1
            if r.microturn == len(r.session.inputs["user_audio"]):
                running[i] = None
                yield r.session, _result(r)


def _result(r: _Running) -> dict:
    out = {"wave": audio.fit_length(np.concatenate(r.pieces), r.session.samples), "tokens": np.stack(r.tokens),
           "listen": np.stack(r.listen)}
    if r.session.runtime is not None:
        out["results"] = [{"time": round(m * MICROTURN_SECONDS, 6), "text": a.text, "ok": a.ok, "trace": list(a.trace)}
                          for _, m, a in r.session.runtime.delivered]
    return out


def _wall_clock(conv: Conversation | None, t: float) -> datetime.datetime | None:
    start = None if conv is None else conv.meta.get("wall_clock_start")
    return None if start is None else datetime.datetime.fromisoformat(start) + datetime.timedelta(seconds=t)


def write_outputs(conv: Conversation, result: dict, root) -> Path:
    """Exports `conv`'s inputs and labels (`fdb_export`) and writes the model's output beside them."""
    folder = fdb_export.export_conversation(conv, root)
    write_output(folder, result, len(audio.read_wav(folder / "input.wav", SAMPLE_RATE)))
    return folder


def write_output(folder: Path, result: dict, samples: int, *, rate: int = SAMPLE_RATE, name: str = "output") -> None:
    """Writes the model's output as `<name>.wav` (`samples` long at `rate`, scaled down if it would clip) and
    its text stream as `<model_text>.json` beside it (`model_text.json` for `output`, else `<name>_text.json`)."""
    seconds = samples / rate
    wave = result["wave"] * audio.fit_gain(result["wave"])
    audio.write_wav(folder / f"{name}.wav", audio.fit_length(audio.resample_to(wave, SAMPLE_RATE, rate), samples), rate)
    reading = text_stream.read(result["tokens"])
    said = [w for w in reading.words if w[0] < seconds]
    written = {"words": [{"text": w, "timestamp": [a, b]} for a, b, w in said], "delegations": reading.requests}
    if "results" in result:
        written["results"] = result["results"]
    text_name = "model_text.json" if name == "output" else f"{name}_text.json"
    (folder / text_name).write_text(json.dumps(written, indent=1, ensure_ascii=False))
