"""A learned tool-calling reasoner: a small byte-level transformer (the interaction model's decoder blocks).

One episode is one token sequence in the text codec's vocabulary:

    <delegate> question </delegate> <call> tool(argument) </call> <tool_result> result </tool_result>
    <answer> spoken answer <eos>

The model writes the call and the answer; the tool result is written by the sandboxed tool, so it is
never a training target. Answering runs the model greedily until `</call>`, runs the tool (any failure
is an error result the model reads), then runs it again until `<eos>`. Sequences have a fixed length, so
one jitted forward serves every decoding step.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import threading
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import nnx

from interaction.codecs import text
from interaction.data.scenarios import spoken_result, tool_question
from interaction.models.embedders import embedding_table
from interaction.models.layers import param
from interaction.models.transformer import Decoder, DecoderSpec, MoESpec
from interaction.reasoner.base import Answer, Request
from interaction.tools import registry

S = text.Special
LENGTH = 160  # tokens per episode; longer questions are refused
_EPOCH = datetime.datetime(2026, 1, 1)
_LECUN = nnx.initializers.lecun_normal()


@dataclasses.dataclass(frozen=True)
class Episode:
    question: str
    call: str  # tool(argument)
    result: str
    answer: str
    tool: str
    day: int  # days after _EPOCH: the clock's "now"


def make_episode(rng: np.random.Generator) -> Episode:
    """A question of the corpus' delegation kind, its tool call, the tool's real result and the answer."""
    question, tool, argument, template = tool_question(rng)
    day = int(rng.integers(0, 3650))
    result = registry.run_tool(tool, argument, now=_EPOCH + datetime.timedelta(days=day)).text
    return Episode(question, registry.format_call(tool, argument), result,
                   template.format(result=spoken_result(result)), tool, day)


def episode_time(e: Episode) -> datetime.datetime:
    """The wall clock the episode's tool result was computed at."""
    return _EPOCH + datetime.timedelta(days=e.day)


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


class ReasonerModel(nnx.Module):
    def __init__(self, spec: DecoderSpec, *, rngs: nnx.Rngs):
        self.embed = embedding_table(text.VOCAB_SIZE, spec.embed, rngs=rngs)
        self.decoder = Decoder(spec, rngs=rngs)
        self.head = param(rngs, _LECUN, ("embed", "vocab"), (spec.embed, text.VOCAB_SIZE))

    def __call__(self, tokens: jax.Array) -> jax.Array:
        positions = jnp.broadcast_to(jnp.arange(tokens.shape[1]), tokens.shape)
        h, _ = self.decoder(self.embed(tokens), positions)
        return h @ self.head[...]


def loss_fn(model: ReasonerModel, b: dict) -> jax.Array:
    """Next-token cross-entropy on the tokens the model writes (call and answer)."""
    logits = model(b["tokens"][:, :-1])
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, b["tokens"][:, 1:])
    w = b["target"][:, 1:].astype(jnp.float32)
    return jnp.sum(ce * w) / jnp.maximum(w.sum(), 1.0)


def train(spec: DecoderSpec, *, steps: int, batch_size: int, lr: float, seed: int = 0, log=None):
    """Trains from scratch on freshly drawn episodes; returns (graphdef, params, losses)."""
    graphdef, params = nnx.split(ReasonerModel(spec, rngs=nnx.Rngs(seed)))
    tx = optax.chain(optax.clip_by_global_norm(1.0),
                     optax.adamw(optax.warmup_cosine_decay_schedule(0.0, lr, min(200, steps // 10), steps, lr * 0.1)))
    opt = tx.init(params)

    @jax.jit
    def step(params, opt, b):
        loss, grads = jax.value_and_grad(lambda p: loss_fn(nnx.merge(graphdef, p), b))(params)
        updates, opt = tx.update(grads, opt, params)
        return optax.apply_updates(params, updates), opt, loss

    rng, losses = np.random.default_rng(seed), []
    for i in range(steps):
        params, opt, loss = step(params, opt, batch(rng, batch_size))
        losses.append(float(loss))
        if log is not None and (i + 1) % 100 == 0:
            log(i + 1, float(np.mean(losses[-100:])))
    return graphdef, params, losses


class LearnedReasoner:
    """The trained model behind the `Reasoner` interface."""

    def __init__(self, graphdef, params):
        self.params = params
        self._logits = jax.jit(lambda p, t: nnx.merge(graphdef, p)(t))

    def _continue(self, tokens: list[int], stop: int, cancelled: threading.Event) -> list[int] | None:
        """Greedy tokens after `tokens` up to and excluding `stop`; None when cancelled or out of room."""
        out = []
        buffer = np.full((1, LENGTH), S.PAD, np.int32)
        buffer[0, : len(tokens)] = tokens
        for i in range(len(tokens), LENGTH):
            if cancelled.is_set():
                return None
            nxt = int(np.argmax(np.asarray(self._logits(self.params, buffer))[0, i - 1]))
            if nxt == stop:
                return out
            out.append(nxt)
            buffer[0, i] = nxt
        return None

    def call_for(self, question: str, cancelled: threading.Event | None = None) -> str | None:
        """The tool call the model writes for `question` (text), or None."""
        call = self._continue(prompt_tokens(question), S.CALL_END, cancelled or threading.Event())
        return None if call is None else text.decode([t for t in call if t >= text.NUM_SPECIAL])

    def answer(self, request: Request, cancelled: threading.Event) -> Answer:
        prompt = prompt_tokens(request.text)
        if len(prompt) >= LENGTH // 2:
            return Answer(f"error: the request is too long ({len(prompt)} tokens)", ok=False)
        call = self._continue(prompt, S.CALL_END, cancelled)
        if call is None:
            return Answer("cancelled" if cancelled.is_set() else "error: no tool call written", ok=False)
        call_text = text.decode([t for t in call if t >= text.NUM_SPECIAL])
        try:
            result = registry.run_tool(*registry.parse_call(call_text), now=request.now)
        except Exception as err:  # noqa: BLE001 - a malformed call is an error result, like a failed tool
            result = registry.ToolResult(False, f"error: {err}")
        so_far = prompt + call + [int(S.CALL_END)] + text.wrap(S.TOOL_RESULT, result.text, S.TOOL_RESULT_END)
        spoken = self._continue(so_far + [int(S.ANSWER)], S.EOS, cancelled)
        trace = ({"call": call_text, "result": result.text},)
        if spoken is None:
            return Answer("cancelled" if cancelled.is_set() else "error: no answer written", ok=False, trace=trace)
        return Answer(text.decode([t for t in spoken if t >= text.NUM_SPECIAL]), ok=result.ok, trace=trace)


def save(workdir, spec: DecoderSpec, params) -> None:
    """Writes a trained reasoner: `spec.json` and `params/` (orbax) under `workdir`."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    with ocp.StandardCheckpointer() as saver:
        saver.save((workdir / "params").absolute(), params, force=True)
    (workdir / "spec.json").write_text(json.dumps(dataclasses.asdict(spec), indent=1))


def load(workdir) -> LearnedReasoner:
    """The reasoner `experiments.train_reasoner` wrote under `workdir`."""
    workdir = Path(workdir)
    if not (workdir / "spec.json").exists() or not (workdir / "params").is_dir():
        raise FileNotFoundError(f"no trained reasoner under {workdir} (spec.json and params/): train one with "
                                f"`python -m experiments.train_reasoner --workdir={workdir}`.")
    fields = json.loads((workdir / "spec.json").read_text())
    spec = DecoderSpec(**{**fields, "moe": MoESpec(**fields["moe"]) if fields.get("moe") else None})
    graphdef, abstract = nnx.split(nnx.eval_shape(lambda: ReasonerModel(spec, rngs=nnx.Rngs(0))))
    with ocp.StandardCheckpointer() as loader:
        params = loader.restore((workdir / "params").absolute(), abstract)
    return LearnedReasoner(graphdef, params)


def untrained(spec: DecoderSpec, seed: int = 0) -> LearnedReasoner:
    """A freshly initialised reasoner: the learned one's cost without its skill (for timing)."""
    return LearnedReasoner(*nnx.split(ReasonerModel(spec, rngs=nnx.Rngs(seed))))
