"""The learned reasoner's training data: episodes of the corpus' delegation questions, as token sequences.

One episode is one token sequence in the text codec's vocabulary:

    <delegate> question </delegate> <call> tool(argument) </call> <tool_result> result </tool_result>
    [<call> tool(argument) </call> <tool_result> result </tool_result>] <answer> spoken answer <eos>

The model writes the calls, what follows each result (another <call>, or <answer>) and the answer; the
results are written by the sandboxed tools, so they are never a training target (`encode`'s mask). A
question about a gazetteer article takes two calls, `search(name)` then `open(id)` of the first hit when
its title names the subject; a name no document mentions gets "not found" after the search. The model
reads each result through `view`: a search's first hit as `id | title`, a passage's first
`PASSAGE_VIEW` characters. After a unit conversion or an answer read from a document it writes the UI surface
to show, as one line (`surface.line_of_trace`: `table|FROM|TO`, `card|DOC_ID|TITLE`). Sequences have a fixed
length, `LENGTH`; a training batch is cut to its longest episode (`batch`).

Training never reads the collection the tools serve: its search episodes ask about the articles of a
larger gazetteer (`TRAIN_ARTICLES`, another seed), indexed apart, so that the reasoner learns to copy a name
it has not seen into its search and to read the answer off the passage, rather than to remember names.
Held-out episodes ask about the served collection's gazetteer: every `HELD_OUT`-th question and
unanswerable name (`search_questions("eval")`; the corpus' held-out conversations ask the same ones).
"""
from __future__ import annotations

import dataclasses
import datetime
import functools

import numpy as np

from interaction.codecs import text
from interaction.data.scenarios import spoken_result, tool_question
from interaction.reasoner import rules, surface  # rules: the search plan the learned reasoner imitates
from interaction.tools import documents, registry, search

S = text.Special
LENGTH = 448  # tokens per episode; longer questions are refused
BUCKET = 64  # a batch's width is a multiple of this
EPOCH = datetime.datetime(2026, 1, 1)
MAX_CALLS = 3  # tool calls per episode
SEARCH_SHARE = 0.3  # episodes asking about the gazetteer
NOT_FOUND_SHARE = 0.2  # of those in training, about a name no document has (as in the held-out split)
HELD_OUT = 5  # every 5th gazetteer question and unanswerable name is held out of training
HIT_VIEW, PASSAGE_VIEW = 80, 150  # characters of a search's first hit and of an opened passage read back
TRAIN_SEED, TRAIN_ARTICLES = 1, 4000  # the gazetteer training's search episodes ask about


@dataclasses.dataclass(frozen=True)
class Episode:
    question: str
    calls: tuple[str, ...]  # tool(argument), in order
    results: tuple[str, ...]  # each call's full result
    answer: str
    tool: str  # the tool asked about: the first call's, or "not found" for a search that finds nothing
    day: int  # days after EPOCH: the clock's "now"
    surface: str = ""  # the surface line written after the answer ("": none)


def view(call: str, result: str) -> str:
    """What the model reads of a tool's result: a search's first hit as `id | title`, a passage's start, a
    conversion with its reading as spoken (`27.3588 km ≈ 27.4`). The answer says a conversion to one decimal;
    rounding a number it reads digit by digit is arithmetic the 2-layer model fails at while it copies, so
    the rounding is read as the rest of the tool's arithmetic is (docs/results.md)."""
    if call.startswith("search(") and " | " in result:
        return " | ".join(result.splitlines()[0].split(" | ")[:2])[:HIT_VIEW]
    if call.startswith("open("):
        return result[:PASSAGE_VIEW]
    said = spoken_result(result)  # the result itself where it is no number (an error)
    if call.startswith("units(") and said not in (result, result.split(" ")[0]):
        return f"{result} ≈ {said}"
    return result


def search_questions(split: str) -> list[str]:
    """The gazetteer questions, answerable and not, of `split` ("train" or "eval")."""
    asked = [q.question for q in documents.search_questions()] + documents.unanswerable(n=100)
    return [q for i, q in enumerate(asked) if (i % HELD_OUT == 0) == (split == "eval")]


@functools.lru_cache(maxsize=1)
def training_collection() -> tuple[search.SearchIndex, list[str], list[str]]:
    """The index training's search episodes read and the questions they ask (answerable, and about names no
    document has): a gazetteer of its own, less any subject the served collection has."""
    served = " ".join(f"{d.title} {d.body}" for d in documents.default_collection()).lower()
    docs, questions = documents.gazetteer(TRAIN_SEED, TRAIN_ARTICLES)
    kept = [d for d in docs if d.title.lower() not in served]
    index = search.SearchIndex()
    index.add(kept)
    answerable = [q.question for q in questions if q.doc_id in {d.id for d in kept}]
    unknown = [q for q in documents.unanswerable(TRAIN_SEED, TRAIN_ARTICLES, n=TRAIN_ARTICLES // 5)
               if documents.read_question(q)[0].lower() not in served]
    return index, answerable, unknown


def make_episode(rng: np.random.Generator, split: str = "train", search_share: float = SEARCH_SHARE) -> Episode:
    """A question of the corpus' delegation kind, or (a `search_share` of them) of the gazetteer's, its tool
    calls, their real results and the answer."""
    day = int(rng.integers(0, 3650))
    if rng.random() < search_share:
        if split == "train":
            index, answerable, unknown = training_collection()
            asked = unknown if rng.random() < NOT_FOUND_SHARE else answerable
        else:
            index, asked = None, search_questions("eval")
        question = asked[int(rng.integers(len(asked)))]
        answer, trace = rules.search_and_read(question, index=index)
        tool = "search" if len(trace) > 1 else "not found"
        return Episode(question, tuple(t["call"] for t in trace), tuple(t["result"] for t in trace), answer, tool,
                       day, surface.line_of_trace(trace))
    question, tool, argument, template = tool_question(rng)
    call = registry.format_call(tool, argument)
    result = registry.run_tool(tool, argument, now=EPOCH + datetime.timedelta(days=day)).text
    return Episode(question, (call,), (result,), template.format(result=spoken_result(result)), tool, day,
                   surface.line_of_trace([{"call": call, "result": result}]))


def episode_time(e: Episode) -> datetime.datetime:
    """The wall clock the episode's tool result was computed at."""
    return EPOCH + datetime.timedelta(days=e.day)


def prompt_tokens(question: str) -> list[int]:
    return text.wrap(S.DELEGATE, question, S.DELEGATE_END) + [int(S.CALL)]


def encode(e: Episode) -> tuple[np.ndarray, np.ndarray]:
    """(tokens, target mask) of one episode, padded to LENGTH: the mask marks what the model must write."""
    parts = [(prompt_tokens(e.question), False)]
    for i, (call, result) in enumerate(zip(e.calls, e.results)):
        parts += [([int(S.CALL)] if i else [], True), (text.encode(call) + [int(S.CALL_END)], True),
                  (text.wrap(S.TOOL_RESULT, view(call, result), S.TOOL_RESULT_END), False)]
    shown = [int(S.SURFACE)] + text.encode(e.surface) if e.surface else []
    parts += [([int(S.ANSWER)] + text.encode(e.answer) + shown + [int(S.EOS)], True)]
    tokens = [t for p, _ in parts for t in p]
    mask = [m for p, m in parts for _ in p]
    if len(tokens) > LENGTH:
        raise ValueError(f"episode of {len(tokens)} tokens is longer than {LENGTH}: {e.question!r}")
    out = np.full(LENGTH, S.PAD, np.int32)
    out[: len(tokens)] = tokens
    target = np.zeros(LENGTH, bool)
    target[: len(mask)] = mask
    return out, target


def batch(rng: np.random.Generator, n: int, search_share: float = SEARCH_SHARE) -> dict[str, np.ndarray]:
    """`n` fresh episodes, cut after the longest one's last token, rounded up to a multiple of `BUCKET`. What
    is cut is padding, which no token before it reads, so the loss is the same; a jitted step compiles once
    per width."""
    tokens, masks = map(np.stack, zip(*(encode(make_episode(rng, search_share=search_share)) for _ in range(n))))
    used = int(np.flatnonzero((tokens != S.PAD).any(0))[-1]) + 1
    width = min(LENGTH, -(-used // BUCKET) * BUCKET)
    return {"tokens": tokens[:, :width], "target": masks[:, :width]}
