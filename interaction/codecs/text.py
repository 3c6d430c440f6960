"""Byte-level text tokens with the special tokens the streams need.

Why bytes rather than a trained subword model: the vocabulary is fixed and tiny (272 ids), so a model
trained on one corpus reads any other corpus, any language and any tool output with no out-of-vocabulary
case and no tokenizer file to ship beside a checkpoint. The price is length: about 3 bytes per 200 ms
of speech, which the fixed text slots of a micro-turn absorb (spill-over waits for the next turn).
"""
from __future__ import annotations

import enum

import numpy as np


class Special(enum.IntEnum):
    PAD = 0  # empty slot; silence in the model's text stream
    DELEGATE = 1  # model -> reasoner request opens
    DELEGATE_END = 2
    RESULT = 3  # reasoner result arriving in the text-in slots
    RESULT_END = 4
    CALL = 5  # reasoner tool call
    CALL_END = 6
    TOOL_RESULT = 7
    TOOL_RESULT_END = 8
    ANSWER = 9  # reasoner's final answer opens
    EOS = 10
    TYPED = 11  # typed user text in the text-in slots
    TYPED_END = 12
    VOICED = 13  # the model's speaking state in the first text-out slot of a micro-turn (PAD there: silent)
    SURFACE = 14  # reasoner's UI surface line, after its answer (`surface.from_line`)


NUM_SPECIAL = 16  # id 15 reserved
VOCAB_SIZE = NUM_SPECIAL + 256
_SILENT = (Special.PAD, Special.VOICED)  # state, not text: dropped by `decode`
_MARKUP = {s: f"<{s.name.lower()}>" for s in Special if s not in _SILENT}


def encode(text: str) -> list[int]:
    """UTF-8 bytes of `text`, shifted past the special ids."""
    return [b + NUM_SPECIAL for b in text.encode("utf-8")]


def wrap(special_open: Special, text: str, special_close: Special) -> list[int]:
    return [int(special_open), *encode(text), int(special_close)]


def decode(ids, markup: bool = True) -> str:
    """Token ids -> text. PAD and VOICED are dropped; other specials become `<name>` when `markup`, else dropped."""
    out, buf = [], bytearray()
    for i in np.asarray(ids).reshape(-1).tolist():
        if i >= NUM_SPECIAL:
            buf.append(i - NUM_SPECIAL)
            continue
        if i >= len(Special) or i < 0:
            raise ValueError(f"token id {i} is not a known special token")
        out.append(buf.decode("utf-8", errors="replace"))
        buf = bytearray()
        if markup and i not in _SILENT:
            out.append(_MARKUP[Special(i)])
    out.append(buf.decode("utf-8", errors="replace"))
    return "".join(out)
