"""A free-running session on a held-out conversation: what the model says, as audio and as a timeline.

The model hears the conversation's user channel (and sees its video and typed text) one micro-turn at a
time through the streaming step and answers with its own text and audio; nothing of the reference model
channel is fed in. The result is written as a stereo WAV (left: what the model heard, right: what it
said, scaled down if it would clip) and a timeline PNG whose model row is the model's output, with the
conversation's labelled events beside it for reference.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import matplotlib.image
import numpy as np
from flax import nnx

from interaction import MICROTURN_SECONDS, SAMPLE_RATE
from interaction.codecs import audio, text_stream, vocoder
from interaction.data import pipeline
from interaction.data.conversation import Conversation
from interaction.data.layout import MicroTurnLayout
from interaction.plots.timeline import render_timeline
from interaction.models import streaming

def make_sampler(graphdef: nnx.GraphDef, *, capacity_turns: int, flow_steps: int, temperature: float):
    """(params, inputs (1, T, ...), seed) -> outputs (1, T, ...) of a session from an empty state, run
    micro-turn by micro-turn through the streaming step the live server and the evaluation use."""
    step = streaming.make_step(graphdef, flow_steps=flow_steps, temperature=temperature)

    def run(params, inputs: dict, seed: int) -> dict:
        state = streaming.init_state(nnx.merge(graphdef, params), 1, capacity_turns)
        seeds = np.full(1, seed, np.uint32)
        outputs = []
        for m in range(inputs["user_audio"].shape[1]):
            turn = {k: v[:, m] for k, v in inputs.items()}
            state, out = step(params, state, turn, seeds, np.full(1, m, np.int32), np.full(1, m == 0))
            outputs.append(jax.device_get(out))
        return jax.tree.map(lambda *rows: np.stack(rows, axis=1), *outputs)

    return run


def session_inputs(conv: Conversation, layout: MicroTurnLayout, turns: int) -> tuple[dict, int]:
    """The first `turns` micro-turn inputs of `conv` (padded past its end), batch of one, and how many are real."""
    features = pipeline.conversation_features(conv, layout)
    real = min(turns, len(features["valid"]))
    win = pipeline.window(features, 0, turns, layout.dmel.log_min)
    return {k: win[k][None] for k in streaming.INPUTS}, real


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
                                model_words=text_stream.spoken_words(
                                    np.asarray(outputs["text_tokens"][0, :real_turns])))
    render_timeline(shown, png)
    return {"heard": heard, "said": said, "gain_db": 20 * np.log10(gain), "wav": wav, "png": png,
            "image": matplotlib.image.imread(png)}
