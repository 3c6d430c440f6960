"""The learned reasoner's training data: episodes of the corpus' delegation questions, as token sequences.

One episode is one token sequence in the text codec's vocabulary:

    <delegate> question </delegate> <call> tool(argument) </call> <tool_result> result </tool_result>
    <answer> spoken answer <eos>

The model writes the call and the answer; the tool result is written by the sandboxed tool, so it is
never a training target (`encode`'s mask). Sequences have a fixed length, `LENGTH`.
"""
from __future__ import annotations

import dataclasses
import datetime

import numpy as np

from interaction.codecs import text
from interaction.data.scenarios import spoken_result, tool_question
from interaction.tools import registry

S = text.Special
LENGTH = 160  # tokens per episode; longer questions are refused
EPOCH = datetime.datetime(2026, 1, 1)


@dataclasses.dataclass(frozen=True)
class Episode:
    question: str
    call: str  # tool(argument)
    result: str
    answer: str
    tool: str
    day: int  # days after EPOCH: the clock's "now"


def make_episode(rng: np.random.Generator) -> Episode:
    """A question of the corpus' delegation kind, its tool call, the tool's real result and the answer."""
    question, tool, argument, template = tool_question(rng)
    day = int(rng.integers(0, 3650))
    result = registry.run_tool(tool, argument, now=EPOCH + datetime.timedelta(days=day)).text
    return Episode(question, registry.format_call(tool, argument), result,
                   template.format(result=spoken_result(result)), tool, day)


def episode_time(e: Episode) -> datetime.datetime:
    """The wall clock the episode's tool result was computed at."""
    return EPOCH + datetime.timedelta(days=e.day)


def prompt_tokens(question: str) -> list[int]:
    return text.wrap(S.DELEGATE, question, S.DELEGATE_END) + [int(S.CALL)]


def encode(e: Episode) -> tuple[np.ndarray, np.ndarray]:
    """(tokens, target mask) of one episode, padded to LENGTH: the mask marks what the model must write."""
    parts = [(prompt_tokens(e.question), False), (text.encode(e.call) + [int(S.CALL_END)], True),
             (text.wrap(S.TOOL_RESULT, e.result, S.TOOL_RESULT_END) + [int(S.ANSWER)], False),
             (text.encode(e.answer) + [int(S.EOS)], True)]
    tokens = [t for p, _ in parts for t in p]
    mask = [m for p, m in parts for _ in p]
    if len(tokens) > LENGTH:
        raise ValueError(f"episode of {len(tokens)} tokens is longer than {LENGTH}: {e.question!r}")
    out = np.full(LENGTH, S.PAD, np.int32)
    out[: len(tokens)] = tokens
    target = np.zeros(LENGTH, bool)
    target[: len(mask)] = mask
    return out, target


def batch(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    tokens, masks = zip(*(encode(make_episode(rng)) for _ in range(n)))
    return {"tokens": np.stack(tokens), "target": np.stack(masks)}
