"""Who holds the floor, micro-turn by micro-turn: the labels behind the model's speaking state and its
listening heads.

The speaking state is the model's own channel made explicit: micro-turn m is *voiced* when the model's
words (runs of them, short gaps bridged) reach into it or one of them starts in it. The text stream carries
it in the first slot of every row (`text.Special.VOICED` or PAD), so that PAD means silent and nothing else.

The listening targets follow Voice Activity Projection: per block m, once micro-turn m has been heard,
whether the user speaks in it, whether that speech is addressed to the model (not side talk), whether the
user's turn ends in it, and which share of each of the next `HORIZONS` seconds the user and the model
will speak. They come from the same word times and events that placed the audio, so they are exact.
"""
from __future__ import annotations

import numpy as np

from interaction import MICROTURN_SECONDS
from interaction.data.conversation import Conversation

FRAME_S = 0.02  # resolution of the activity grids
HORIZONS = (0.2, 0.6, 1.2, 2.0)  # seconds ahead of a block's end that the future-activity heads cover
WORD_BRIDGE_S = 0.4  # gaps between a speaker's words shorter than this are inside one utterance
USER_BRIDGE_S = 0.1  # the user's activity closes only the gaps between adjacent words
TURN_ENDS = ("user_turn", "interruption")  # events whose end is the end of a user's turn
# Where the floor is decided: turn ends, pause and interruption onsets, the ends of talk not for the model,
# and the ends of the model's own turns, false starts among them, and its resumption after a false yield.
DECISIONS = {"user_turn": "end", "interruption": "start", "pause": "start", "side_talk": "end",
             "background_speech": "end", "model_turn": "end", "false_start": "end",
             "false_yield": "end"}
NAMES = ("user_now", "addressed", "turn_end", *(f"user_{h}s" for h in HORIZONS), *(f"model_{h}s" for h in HORIZONS))

_PER_TURN = round(MICROTURN_SECONDS / FRAME_S)


def activity(words, frames: int, *, bridge: float = WORD_BRIDGE_S) -> np.ndarray:
    """(frames,) bool at `FRAME_S`: where a speaker's (start, end, text) words, gaps under `bridge` closed, are."""
    out = np.zeros(frames, bool)
    spans: list[list[float]] = []
    for a, b, _ in sorted(words):
        if spans and a - spans[-1][1] < bridge:
            spans[-1][1] = max(spans[-1][1], b)
        else:
            spans.append([a, b])
    for a, b in spans:
        out[max(int(round(a / FRAME_S)), 0) : int(round(b / FRAME_S))] = True
    return out


def turn_of(t: float) -> int:
    """The micro-turn that time `t` falls in."""
    return int(np.floor(t / MICROTURN_SECONDS + 1e-6))


def voiced_turns(model_words, n_turns: int) -> np.ndarray:
    """(n_turns,) bool: the micro-turns in which the model is speaking. A word's bytes enter the text stream
    in the micro-turn its start falls in, which is therefore voiced too."""
    voiced = activity(model_words, n_turns * _PER_TURN).reshape(n_turns, _PER_TURN).any(-1)
    for a, _, _ in model_words:
        if 0 <= turn_of(a) < n_turns:
            voiced[turn_of(a)] = True
    return voiced


def decision_turns(conv: Conversation, n_turns: int) -> np.ndarray:
    """(n_turns,) bool: the micro-turns in which a floor decision falls (`DECISIONS`)."""
    out = np.zeros(n_turns, bool)
    for kind, edge in DECISIONS.items():
        for e in conv.events_of(kind):
            m = turn_of(e.end if edge == "end" else e.start)
            if 0 <= m < n_turns:
                out[m] = True
    return out


def _future_share(act: np.ndarray, blocks: int) -> np.ndarray:
    """(blocks, len(HORIZONS)): the share of each horizon after block m's micro-turn that `act` covers."""
    padded = np.concatenate([act, np.zeros(round(max(HORIZONS) / FRAME_S) + _PER_TURN, bool)])
    csum = np.concatenate([[0], np.cumsum(padded)])
    ends = (np.arange(blocks) + 1) * _PER_TURN  # frame where micro-turn m ends
    cols = [(csum[ends + round(h / FRAME_S)] - csum[ends]) / round(h / FRAME_S) for h in HORIZONS]
    return np.stack(cols, -1).astype(np.float32)


def targets(conv: Conversation, n_turns: int) -> np.ndarray:
    """(n_turns - 1, len(NAMES)) float32 listening targets of blocks 0 .. n_turns - 2."""
    blocks, frames = n_turns - 1, n_turns * _PER_TURN
    user = activity(conv.user_words, frames, bridge=USER_BRIDGE_S)
    aside = np.zeros(frames, bool)
    for e in conv.events_of("side_talk"):
        aside[int(round(e.start / FRAME_S)) : int(round(e.end / FRAME_S)) + 1] = True
    per_turn = lambda a: a[: blocks * _PER_TURN].reshape(blocks, _PER_TURN).any(-1)
    turn_end = np.zeros(blocks, bool)
    for e in (e for kind in TURN_ENDS for e in conv.events_of(kind)):
        m = turn_of(e.end)
        if m < blocks:
            turn_end[m] = True
    model = activity(conv.model_words, frames)
    cols = [per_turn(user), per_turn(user & ~aside), turn_end]
    return np.concatenate([np.stack(cols, -1).astype(np.float32), _future_share(user, blocks),
                           _future_share(model, blocks)], axis=-1)
