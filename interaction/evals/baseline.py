"""A turn-based baseline: the user's turn ends after `threshold` seconds of silence, then it replies.

The reply is the next reference reply of the conversation (the reference model's turns and translations,
in order), decoded from its log-mel by the same Griffin-Lim vocoder as the model's output. The baseline
is half duplex: while it speaks it does not listen, so ends of turn detected meanwhile are ignored, and
it never stops for an interruption. A short threshold answers quickly and barges into pauses; a long
one waits politely and answers late: sweeping it traces the frontier the model is judged against.

Recognition runs once per reference reply (words relative to its start); a baseline output's words are
those replies' words shifted to where they are played.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from interaction import SAMPLE_RATE
from interaction.codecs import dmel, vocoder
from interaction.data.conversation import Word

THRESHOLDS = (0.2, 0.4, 0.6, 0.8, 1.0)
REPLY_KINDS = ("model_turn", "translation")
_EARLY_S = 0.5  # a reply may start this much before the user's speech ends (overlapping replies)


@dataclasses.dataclass
class Reply:
    start: float  # where the reference model said it
    text: str  # what it said
    wave: np.ndarray  # vocoded
    words: list[Word]  # recognized, relative to the reply's start


def reference_replies(events: list[dict], reference_wave: np.ndarray, cfg: dmel.DMelConfig, recognizer) -> list[Reply]:
    """The reference model's replies, each vocoded and recognized once."""
    out = []
    for e in sorted((e for e in events if e["kind"] in REPLY_KINDS), key=lambda e: e["timestamp"][0]):
        a, b = (int(round(t * SAMPLE_RATE)) for t in e["timestamp"])
        piece = reference_wave[a // cfg.hop * cfg.hop: b]  # a sample may end mid-reply: its audio ends there
        if len(piece) < cfg.hop:
            continue
        piece = np.pad(piece, (0, -len(piece) % cfg.hop))
        wave = vocoder.decode(np.asarray(dmel.log_mel(piece, cfg)), cfg)
        out.append(Reply(start=e["timestamp"][0], text=e.get("target") or e["text"], wave=wave,
                         words=recognizer.words(wave)))
    return out


def ends_of_turn(input_segments: Sequence[tuple[float, float]], threshold: float) -> list[tuple[float, float]]:
    """(speech end, detection time) for each input segment followed by at least `threshold` s of silence."""
    out = []
    for i, (_, end) in enumerate(input_segments):
        following = input_segments[i + 1][0] if i + 1 < len(input_segments) else np.inf
        if following - end >= threshold:
            out.append((end, end + threshold))
    return out


def respond(replies: Sequence[Reply], input_segments, threshold: float, n_samples: int) -> tuple[np.ndarray, list[Word]]:
    """The baseline's output wave and its (shifted) recognized words for one sample."""
    wave = np.zeros(n_samples, np.float32)
    words: list[Word] = []
    queue = list(replies)
    busy_until = -np.inf
    for speech_end, at in ends_of_turn(input_segments, threshold):
        if at < busy_until:
            continue  # speaking: not listening
        while queue and queue[0].start < speech_end - _EARLY_S:
            queue.pop(0)  # a reply to something earlier that the baseline never answered
        if not queue:
            break
        reply = queue.pop(0)
        a = int(round(at * SAMPLE_RATE))
        piece = reply.wave[: max(0, n_samples - a)]
        wave[a: a + len(piece)] = piece
        busy_until = at + len(reply.wave) / SAMPLE_RATE
        words += [(s + at, e + at, w) for s, e, w in reply.words if s + at < n_samples / SAMPLE_RATE]
    return wave, words
