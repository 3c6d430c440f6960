"""Runs the model on held-out conversations as a live session would, and writes what it emitted.

Each conversation is fed one micro-turn at a time to the jitted streaming step (user audio, video and
typed text / reasoner results of that micro-turn only), and the step's audio frames go through the live
Griffin-Lim vocoder in 200 ms pieces as they are emitted. The output waveform is time-synchronous with the
input: block m is played during micro-turn m + 1, and the vocoder's own delay is kept, so latencies
measured on it are what a listener would get. Every step's wall time is recorded too.

Outputs land in Full-Duplex-Bench's per-sample layout, beside the exported inputs and labels:
`<task>/<id>/output.wav` plus `model_text.json` (the model's text stream as timed words, its delegation
requests and, when a live reasoner answered them, the answers with the time they entered text-in).
"""
from __future__ import annotations

import contextlib
import datetime
import json
import time
from pathlib import Path

import jax
import numpy as np
from flax import nnx

from interaction import MICROTURN_SECONDS, SAMPLE_RATE
from interaction.codecs import audio, text, vocoder
from interaction.data import fdb_export, pipeline
from interaction.data.conversation import Conversation
from interaction.models import streaming
from interaction.reasoner.runtime import ReasonerRuntime
from interaction.train.sample_session import spoken_words



def make_step(graphdef: nnx.GraphDef, *, flow_steps: int, temperature: float):
    """Jitted (params, state, inputs, rng) -> (state, outputs) for one micro-turn, state donated."""

    def run(params, state, inputs, rng):
        return streaming.step(nnx.merge(graphdef, params), state, inputs, rng, flow_steps=flow_steps,
                              temperature=temperature)

    return jax.jit(run, donate_argnums=1)


class DelegationReader:
    """Reads delegation requests out of the emitted text stream as it comes, micro-turn by micro-turn."""

    def __init__(self):
        self._current: list[int] | None = None
        self._start = 0.0

    def feed(self, row, microturn: int) -> list[dict]:
        """Requests completed in this micro-turn's (S_out,) tokens: [{time (when it opened), request}]."""
        done = []
        for tok in np.asarray(row):
            if tok == text.Special.DELEGATE:
                self._current, self._start = [], round((microturn + 1) * MICROTURN_SECONDS, 6)
            elif tok == text.Special.DELEGATE_END and self._current is not None:
                done.append({"time": self._start, "request": text.decode(self._current)})
                self._current = None
            elif self._current is not None and tok >= text.NUM_SPECIAL:
                self._current.append(int(tok))
        return done


def delegations(tokens: np.ndarray) -> list[dict]:
    """Delegation requests in a whole emitted text stream: (T, S_out) tokens -> [{time, request}]."""
    reader = DelegationReader()
    return [d for m, row in enumerate(np.asarray(tokens)) for d in reader.feed(row, m)]


def conversation_so_far(conv: Conversation, said: list[np.ndarray], now: float) -> str:
    """What both sides have said by `now`, as "user: ..." / "model: ..." lines in time order: the
    context a delegation hands the reasoner. The user's side is the conversation's transcript."""
    words = [(a, "user", w) for a, b, w in conv.user_words if b <= now]
    if said:
        words += [(a, "model", w) for a, _, w in spoken_words(np.stack(said))]
    lines: list[list[str]] = []
    for _, who, w in sorted(words):
        if not lines or lines[-1][0] != who:
            lines.append([who])
        lines[-1].append(w)
    return "\n".join(f"{who}: {' '.join(ws)}" for who, *ws in lines)


def run_conversation(step, params, new_state, conv: Conversation, layout, *, seed: int,
                     runtime: ReasonerRuntime | None = None) -> dict:
    """Streams one conversation from `new_state()`; returns its output wave, text tokens and step wall times.

    Without a `runtime` the reasoner results are the corpus' own (at their labelled times). With one, the
    model's delegations go to that reasoner with the conversation so far, and its answers enter text-in
    when they arrive (typed text shares the same slot queue). The reasoner's clock reads the conversation's
    own wall time (its `wall_clock_start` plus session time) when it has one.
    """
    features = pipeline.conversation_features(conv, layout, results=runtime is None)
    reader = DelegationReader()
    turns = len(features["valid"])
    state = new_state()
    voc = vocoder.StreamingGriffinLim(layout.dmel)
    pieces, tokens, times = [np.zeros(round(MICROTURN_SECONDS * SAMPLE_RATE), np.float32)], [], []
    key = jax.random.key(seed)
    for m in range(turns):
        inputs = {k: features[k][m][None] for k in streaming.INPUTS}
        t0 = time.perf_counter()
        if runtime is not None:
            runtime.queue.push(t for t in features["text_in"][m] if t != text.Special.PAD)
            inputs["text_in"] = runtime.arrived(m)[None]
        with runtime.quiet() if runtime is not None else contextlib.nullcontext():
            state, out = step(params, state, inputs, jax.random.fold_in(key, m))
            mel, toks = jax.device_get((out["mel"][0], out["text_tokens"][0]))
        times.append(time.perf_counter() - t0)
        pieces.append(voc.push(mel))
        tokens.append(toks)
        if runtime is not None:
            for d in reader.feed(toks, m):
                now = (m + 1) * MICROTURN_SECONDS
                runtime.delegate(d["request"], conversation_so_far(conv, tokens, now), microturn=m,
                                 now=_wall_clock(conv, now))
    wave = np.concatenate(pieces)[: len(conv.user_audio)]
    wave = np.pad(wave, (0, len(conv.user_audio) - len(wave)))
    out = {"wave": wave, "tokens": np.stack(tokens), "step_s": np.asarray(times)}
    if runtime is not None:
        out["results"] = [{"time": round(m * MICROTURN_SECONDS, 6), "text": a.text, "ok": a.ok, "trace": list(a.trace)}
                          for _, m, a in runtime.delivered]
    return out


def _wall_clock(conv: Conversation, t: float) -> datetime.datetime | None:
    start = conv.meta.get("wall_clock_start")
    return None if start is None else datetime.datetime.fromisoformat(start) + datetime.timedelta(seconds=t)


def write_outputs(conv: Conversation, result: dict, root) -> Path:
    """Exports `conv`'s inputs and labels (`fdb_export`) and writes the model's output beside them."""
    folder = fdb_export.export_conversation(conv, root)
    n = len(audio.read_wav(folder / "input.wav", SAMPLE_RATE))
    wave = result["wave"][:n] * audio.fit_gain(result["wave"])
    audio.write_wav(folder / "output.wav", wave, SAMPLE_RATE)
    said = [w for w in spoken_words(result["tokens"]) if w[0] < n / SAMPLE_RATE]
    written = {"words": [{"text": w, "timestamp": [a, b]} for a, b, w in said],
               "delegations": delegations(result["tokens"])}
    if "results" in result:
        written["results"] = result["results"]
    (folder / "model_text.json").write_text(json.dumps(written, indent=1, ensure_ascii=False))
    return folder
