"""What the model knows of its words, apart from how they sound: the bytes it predicts where the reference says
one, teacher-forced, and the words it says free-running.

Teacher-forced (the reference's text fed back), at every byte of the model's text stream: whether the likeliest
byte among the bytes is the reference's (the streaming step draws a byte among the bytes once it has chosen to
say one), counted by the byte's place in its word: the first, one inside, the space after it. The bytes inside
a word are also counted by their slot in the row: the first slot of a group reads the bytes just said through
the decoder alone, unless the depth head reads the group before (`TextDepth`). Free-running, the words it says:
the share found among the training split's words, and the share that repeat the word just said.
"""
from __future__ import annotations

import numpy as np

from interaction.codecs import text
from interaction.evals import intervals

PLACES = ("first", "inner", "space")  # a byte's place in its word
_SPACE = text.encode(" ")[0]
_STATE = (text.Special.PAD, text.Special.VOICED)


def byte_places(text_out: np.ndarray) -> np.ndarray:
    """(M, S_out) text-out rows -> (M, S_out) each slot's byte's place (an index of `PLACES`), -1 where no byte is
    (the speaking-state slot, PAD, a special; after a special such as a delegation's opener a word begins)."""
    rows = np.asarray(text_out)
    places = np.full(rows.shape, -1, np.int8)
    before = _SPACE
    for m, s in np.ndindex(rows.shape):
        t = int(rows[m, s])
        if s == 0 or t in _STATE:
            continue
        if t < text.NUM_SPECIAL:
            before = _SPACE
            continue
        places[m, s] = PLACES.index("space") if t == _SPACE else PLACES.index("first" if before == _SPACE else "inner")
        before = t
    return places


def byte_counts(logits: np.ndarray, text_out: np.ndarray) -> dict:
    """One conversation's (M, S_out, vocab) teacher-forced text logits and its (M, S_out) reference rows -> counts:
    `<place>_bytes`, `<place>_hits` of every place, and `inner_slot<s>_bytes`, `_hits` of every slot s."""
    places = byte_places(text_out)
    hit = np.asarray(logits)[..., text.NUM_SPECIAL :].argmax(-1) == np.asarray(text_out) - text.NUM_SPECIAL
    out = {}
    for k, name in enumerate(PLACES):
        out[f"{name}_bytes"], out[f"{name}_hits"] = float((places == k).sum()), float(hit[places == k].sum())
    inner = places == PLACES.index("inner")
    for s in range(1, places.shape[1]):
        at = inner[:, s]
        out[f"inner_slot{s}_bytes"], out[f"inner_slot{s}_hits"] = float(at.sum()), float(hit[:, s][at].sum())
    return out


def said_counts(tokens: np.ndarray, vocabulary: set[str]) -> dict:
    """A free-running conversation's (M, S_out) text-out tokens and the training split's words (lower case) ->
    counts: `words` said, of them `known` (among `vocabulary`) and `repeats` (the word just said again)."""
    words = text.decode(np.asarray(tokens)[:, 1:].reshape(-1), markup=False).split()
    return {"words": float(len(words)), "known": float(sum(w.lower() in vocabulary for w in words)),
            "repeats": float(sum(a == b for a, b in zip(words, words[1:])))}


def summarize(rows: list[dict]) -> dict:
    """Per-conversation counts -> rates with 95% intervals over conversations: `<place>_accuracy`,
    `inner_slot<s>_accuracy`, and, where the rows hold free-running counts, `known_words` and `repeated_words`."""
    pair = lambda num, den: intervals.rate([[r[num], r[den]] for r in rows])  # noqa: E731
    counted = [k[: -len("_bytes")] for k in rows[0] if k.endswith("_bytes")]  # places, then inner slots
    out = {f"{name}_accuracy": pair(f"{name}_hits", f"{name}_bytes") for name in counted}
    if "words" in rows[0]:
        out["known_words"], out["repeated_words"] = pair("known", "words"), pair("repeats", "words")
    return out
