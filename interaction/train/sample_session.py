"""A free-running session on a held-out conversation: what the model says, as audio and as a timeline.

The model hears the conversation's user channel (and sees its video and typed text) one micro-turn at a
time through the streaming step and answers with its own text and audio; nothing of the reference model
channel is fed in. The result is written as a stereo WAV (left: what the model heard, right: what it
said, scaled down if it would clip) and a timeline PNG whose model row is the model's output, with the conversation's labelled events
beside it for reference.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import matplotlib.image
import numpy as np
from flax import nnx

from interaction import MICROTURN_SECONDS, SAMPLE_RATE
from interaction.codecs import audio, text, vocoder
from interaction.data import pipeline
from interaction.data.conversation import Conversation
from interaction.data.layout import MicroTurnLayout
from interaction.data.timeline import render_timeline
from interaction.models import streaming

_SPACE = text.encode(" ")[0]


def make_sampler(graphdef: nnx.GraphDef, *, capacity_turns: int, flow_steps: int, temperature: float):
    """Jitted (params, inputs (1, T, ...), rng) -> outputs of `streaming.run_session` from an empty state."""

    def run(params, inputs, rng):
        model = nnx.merge(graphdef, params)
        state = streaming.init_state(model, 1, capacity_turns)
        return streaming.run_session(model, state, inputs, rng, flow_steps=flow_steps, temperature=temperature)[1]

    return jax.jit(run)


def session_inputs(conv: Conversation, layout: MicroTurnLayout, turns: int) -> tuple[dict, int]:
    """The first `turns` micro-turn inputs of `conv` (padded past its end), batch of one, and how many are real."""
    features = pipeline.conversation_features(conv, layout)
    real = min(turns, len(features["valid"]))
    win = pipeline.window(features, 0, turns, layout.dmel.log_min)
    return {k: win[k][None] for k in streaming.INPUTS}, real


def spoken_words(tokens: np.ndarray) -> list[tuple[float, float, str]]:
    """(T, S_out) emitted text tokens -> the words it says, timed by the micro-turn they are played in (block
    m -> m + 1). Special tokens and delegation requests (silent text for the reasoner) are not words."""
    words, current, start, requesting = [], [], 0.0, False
    for m, row in enumerate(np.asarray(tokens)):
        t = round((m + 1) * MICROTURN_SECONDS, 6)  # 0.6, not 0.6000000000000001
        for tok in row:
            if tok in (text.Special.DELEGATE, text.Special.DELEGATE_END):
                requesting = tok == text.Special.DELEGATE
            if tok < text.NUM_SPECIAL or requesting:  # silence, markers, a request being written
                continue
            if tok == _SPACE:
                if current:
                    words.append((start, round(t + MICROTURN_SECONDS, 6), text.decode(current)))
                current = []
                continue
            if not current:
                start = t
            current.append(int(tok))
    if current:
        words.append((start, round((len(tokens) + 1) * MICROTURN_SECONDS, 6), text.decode(current)))
    return words


def write(conv: Conversation, outputs: dict, real_turns: int, layout: MicroTurnLayout, out_dir, name: str) -> dict:
    """Decodes the model's mel frames, writes `<name>.wav` and `<name>.png`; returns the waves and image."""
    per_turn = round(MICROTURN_SECONDS * SAMPLE_RATE)
    mel = np.asarray(outputs["mel"][0, :real_turns]).reshape(-1, layout.dmel.n_mels)
    said = np.concatenate([np.zeros(per_turn, np.float32), vocoder.decode(mel, layout.dmel)])
    heard = conv.user_audio[: len(said)]
    said = said[: len(heard)]
    gain = audio.fit_gain(said)  # a weak model can be very loud
    said = said * gain
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    wav, png = out_dir / f"{name}.wav", out_dir / f"{name}.png"
    audio.write_wav(wav, np.stack([heard, said], axis=1), SAMPLE_RATE)
    shown = dataclasses.replace(conv, id=f"{conv.id}: model output ({name})", user_audio=heard, model_audio=said,
                                model_words=spoken_words(np.asarray(outputs["text_tokens"][0, :real_turns])))
    render_timeline(shown, png)
    return {"heard": heard, "said": said, "gain_db": 20 * np.log10(gain), "wav": wav, "png": png,
            "image": matplotlib.image.imread(png)}
