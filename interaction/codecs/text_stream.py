"""The one reader of the model's emitted text stream: spoken text, timed words and delegation requests.

Each row of the stream is one micro-turn's text-out tokens. Block m's row is played during micro-turn
m + 1, so what it says is timed from (m + 1) x 200 ms. Bytes between `DELEGATE` and `DELEGATE_END` are a
request to the background reasoner, not speech; every other special id (the speaking state, PAD) is
silence. Training samples, the evaluation runner and live sessions all read the stream through this.
"""
from __future__ import annotations

import codecs
import dataclasses

import numpy as np

from interaction import MICROTURN_SECONDS
from interaction.codecs import text

_SPACE = text.encode(" ")[0]


def _seconds(microturns: int) -> float:
    return round(microturns * MICROTURN_SECONDS, 6)  # 0.6, not 0.6000000000000001


class TextStreamReader:
    """Fed the rows of one session's text stream in order; keeps its words and its open request."""

    def __init__(self):
        self.microturn = 0  # rows read so far
        self.words: list[tuple[float, float, str]] = []  # finished words: (start, end, text) in seconds
        self._word: list[int] = []
        self._word_start = 0.0
        self._request: list[int] | None = None
        self._request_start = 0.0
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, row) -> tuple[str, list[dict]]:
        """One micro-turn's (S_out,) tokens -> (the spoken text they add, decoded as UTF-8 across micro-turns;
        the delegation requests they complete, [{time (when it opened), request}])."""
        now = _seconds(self.microturn + 1)
        spoken, done = bytearray(), []
        for tok in np.asarray(row).tolist():
            if tok == text.Special.DELEGATE:
                self._request, self._request_start = [], now
            elif tok == text.Special.DELEGATE_END:
                if self._request is not None:
                    done.append({"time": self._request_start, "request": text.decode(self._request)})
                self._request = None
            elif tok < text.NUM_SPECIAL:
                continue
            elif self._request is not None:
                self._request.append(tok)
            else:
                spoken.append(tok - text.NUM_SPECIAL)
                if tok == _SPACE:
                    if self._word:
                        self.words.append((self._word_start, _seconds(self.microturn + 2), text.decode(self._word)))
                    self._word = []
                else:
                    if not self._word:
                        self._word_start = now
                    self._word.append(tok)
        self.microturn += 1
        return self._utf8.decode(bytes(spoken)), done

    def spoken_words(self) -> list[tuple[float, float, str]]:
        """Every word said so far, the one still being said ending with the last micro-turn read."""
        if not self._word:
            return list(self.words)
        return [*self.words, (self._word_start, _seconds(self.microturn + 1), text.decode(self._word))]


@dataclasses.dataclass
class Reading:
    words: list[tuple[float, float, str]]
    requests: list[dict]


def read(tokens) -> Reading:
    """A whole (T, S_out) text stream: its timed words and its delegation requests."""
    reader, requests = TextStreamReader(), []
    for row in np.asarray(tokens):
        requests += reader.feed(row)[1]
    return Reading(reader.spoken_words(), requests)


def spoken_words(tokens) -> list[tuple[float, float, str]]:
    """(T, S_out) emitted text tokens -> the words it says, timed by the micro-turn they are played in."""
    return read(tokens).words


def delegations(tokens) -> list[dict]:
    """Delegation requests in a whole emitted text stream: (T, S_out) tokens -> [{time, request}]."""
    return read(tokens).requests


def transcript(entries) -> str:
    """(time, speaker, text) entries -> "speaker: ..." lines in time order, a speaker's adjacent entries on
    one line: the conversation so far, as the background reasoner is handed it."""
    lines: list[list[str]] = []
    for _, who, said in sorted(entries):
        if not lines or lines[-1][0] != who:
            lines.append([who])
        lines[-1].append(said)
    return "\n".join(f"{who}: {' '.join(said)}" for who, *said in lines)
