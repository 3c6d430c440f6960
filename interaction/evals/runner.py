"""Runs the model on held-out conversations as a live session would, and writes what it emitted.

Each conversation is fed one micro-turn at a time to the jitted streaming step (user audio, video and
typed text / reasoner results of that micro-turn only), and the step's audio frames go through the live
Griffin-Lim vocoder in 200 ms pieces as they are emitted. The output waveform is time-synchronous with the
input: block m is played during micro-turn m + 1, and the vocoder's own delay is kept, so latencies
measured on it are what a listener would get. Every step's wall time is recorded too.

Outputs land in Full-Duplex-Bench's per-sample layout, beside the exported inputs and labels:
`<task>/<id>/output.wav` plus `model_text.json` (the model's text stream as timed words, and its
delegation requests).
"""
from __future__ import annotations

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
from interaction.train.sample_session import spoken_words



def make_step(graphdef: nnx.GraphDef, *, flow_steps: int, temperature: float):
    """Jitted (params, state, inputs, rng) -> (state, outputs) for one micro-turn, state donated."""

    def run(params, state, inputs, rng):
        return streaming.step(nnx.merge(graphdef, params), state, inputs, rng, flow_steps=flow_steps,
                              temperature=temperature)

    return jax.jit(run, donate_argnums=1)


def delegations(tokens: np.ndarray) -> list[dict]:
    """Delegation requests in the emitted text stream: (T, S_out) tokens -> [{time, request}]."""
    out, current, start = [], None, 0.0
    for m, row in enumerate(np.asarray(tokens)):
        for tok in row:
            if tok == text.Special.DELEGATE:
                current, start = [], round((m + 1) * MICROTURN_SECONDS, 6)
            elif tok == text.Special.DELEGATE_END and current is not None:
                out.append({"time": start, "request": text.decode(current)})
                current = None
            elif current is not None and tok >= text.NUM_SPECIAL:
                current.append(int(tok))
    return out


def run_conversation(step, params, new_state, conv: Conversation, layout, *, seed: int) -> dict:
    """Streams one conversation from `new_state()`; returns its output wave, text tokens and step wall times."""
    features = pipeline.conversation_features(conv, layout)
    turns = len(features["valid"])
    state = new_state()
    voc = vocoder.StreamingGriffinLim(layout.dmel)
    pieces, tokens, times = [np.zeros(round(MICROTURN_SECONDS * SAMPLE_RATE), np.float32)], [], []
    key = jax.random.key(seed)
    for m in range(turns):
        inputs = {k: features[k][m][None] for k in streaming.INPUTS}
        t0 = time.perf_counter()
        state, out = step(params, state, inputs, jax.random.fold_in(key, m))
        mel, toks = jax.device_get((out["mel"][0], out["text_tokens"][0]))
        times.append(time.perf_counter() - t0)
        pieces.append(voc.push(mel))
        tokens.append(toks)
    wave = np.concatenate(pieces)[: len(conv.user_audio)]
    wave = np.pad(wave, (0, len(conv.user_audio) - len(wave)))
    return {"wave": wave, "tokens": np.stack(tokens), "step_s": np.asarray(times)}


def write_outputs(conv: Conversation, result: dict, root) -> Path:
    """Exports `conv`'s inputs and labels (`fdb_export`) and writes the model's output beside them."""
    folder = fdb_export.export_conversation(conv, root)
    n = len(audio.read_wav(folder / "input.wav", SAMPLE_RATE))
    wave = result["wave"][:n] * audio.fit_gain(result["wave"])
    audio.write_wav(folder / "output.wav", wave, SAMPLE_RATE)
    said = [w for w in spoken_words(result["tokens"]) if w[0] < n / SAMPLE_RATE]
    (folder / "model_text.json").write_text(json.dumps(
        {"words": [{"text": w, "timestamp": [a, b]} for a, b, w in said],
         "delegations": delegations(result["tokens"])}, indent=1, ensure_ascii=False))
    return folder
