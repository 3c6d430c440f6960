"""A learned tool-calling reasoner: a small byte-level transformer (the interaction model's decoder blocks)
over the episodes of `episodes`, behind the `Reasoner` interface.

Answering runs the model greedily until `</call>`, runs the tool (any failure is an error result the
model reads), then runs it again until `<eos>`. Sequences have a fixed length, so one jitted forward
serves every decoding step. Training is in `training`.
"""
from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

from interaction.codecs import text
from interaction.models.embedders import embedding_table
from interaction.models.layers import param
from interaction.models.transformer import DecoderSpec, make_decoder, moe_spec
from interaction.reasoner import surface
from interaction.reasoner.base import Answer, Request
from interaction.reasoner.episodes import LENGTH, MAX_CALLS, S, prompt_tokens, view
from interaction.tools import registry

_LECUN = nnx.initializers.lecun_normal()


class ReasonerModel(nnx.Module):
    """Next-token log-probabilities over the episode's bytes. With `copy`, a pointer mixes into them: the
    model attends from each position to the earlier ones and may copy the token that followed the one it
    attends to, by a learned gate (a pointer-generator, its pointer shifted by one). Copying a name it has
    never seen, from the question into its search and from a passage into its answer, is then a lookup of
    where it is in the source, which a 2-layer model learns; without it, an induction circuit it does not
    form in a few thousand steps (docs/results.md)."""

    def __init__(self, spec: DecoderSpec, *, copy: bool = False, rngs: nnx.Rngs):
        self.embed = embedding_table(text.VOCAB_SIZE, spec.embed, rngs=rngs)
        self.decoder = make_decoder(spec, rngs=rngs)
        self.head = param(rngs, _LECUN, ("embed", "vocab"), (spec.embed, text.VOCAB_SIZE))
        self.copy = copy
        if copy:
            self.pointer = param(rngs, _LECUN, ("embed", None), (spec.embed, 2 * spec.embed + 1))

    def __call__(self, tokens: jax.Array) -> jax.Array:
        positions = jnp.broadcast_to(jnp.arange(tokens.shape[1]), tokens.shape)
        h, _ = self.decoder(self.embed(tokens), positions)
        logits = h @ self.head[...]
        if not self.copy:
            return logits
        d = h.shape[-1]
        proj = h @ self.pointer[...]
        query, key, gate = proj[..., :d], proj[..., d : 2 * d], proj[..., 2 * d]
        t = tokens.shape[1]
        # Position i may point at j < i: the token after j (j + 1 <= i) is one it has read.
        seen = jnp.arange(t)[None, :] < jnp.arange(t)[:, None]
        scores = jnp.where(seen, jnp.einsum("bid,bjd->bij", query, key) / jnp.sqrt(d), -1e9)
        following = jax.nn.one_hot(jnp.roll(tokens, -1, axis=1), text.VOCAB_SIZE, dtype=h.dtype)
        copied = jnp.einsum("bij,bjv->biv", jax.nn.softmax(scores, axis=-1), following)
        g = jax.nn.sigmoid(gate)[..., None] * seen.any(-1)[None, :, None]  # position 0 has nothing to copy
        return jnp.log((1.0 - g) * jax.nn.softmax(logits, axis=-1) + g * copied + 1e-9)


class LearnedReasoner:
    """The trained model behind the `Reasoner` interface."""

    def __init__(self, graphdef, params):
        self.params = params
        self._logits = jax.jit(lambda p, t: nnx.merge(graphdef, p)(t))

    def _continue(self, tokens: list[int], stop: int, cancelled: threading.Event,
                  limit: int = LENGTH) -> list[int] | None:
        """Greedy tokens after `tokens` up to and excluding `stop`, at most `limit` of them; None when
        cancelled or out of room."""
        if len(tokens) >= LENGTH:
            return None
        out = []
        buffer = np.full((1, LENGTH), S.PAD, np.int32)
        buffer[0, : len(tokens)] = tokens
        for i in range(len(tokens), min(LENGTH, len(tokens) + limit)):
            if cancelled.is_set():
                return None
            nxt = int(np.argmax(np.asarray(self._logits(self.params, buffer))[0, i - 1]))
            if nxt == stop:
                return out
            out.append(nxt)
            buffer[0, i] = nxt
        return out if len(out) == limit else None

    def call_for(self, question: str, cancelled: threading.Event | None = None) -> str | None:
        """The first tool call the model writes for `question` (text), or None."""
        call = self._continue(prompt_tokens(question), S.CALL_END, cancelled or threading.Event())
        return None if call is None else text.decode([t for t in call if t >= text.NUM_SPECIAL])

    def answer(self, request: Request, cancelled: threading.Event) -> Answer:
        """Calls tools until the model writes <answer> (at most `MAX_CALLS`), reading each result through
        `episodes.view`, then the spoken answer and, where it writes one, the surface line after it (built
        by `surface.from_line`; a line that makes no valid surface shows nothing)."""
        so_far = prompt_tokens(request.text)
        if len(so_far) >= LENGTH // 2:
            return Answer(f"error: the request is too long ({len(so_far)} tokens)", ok=False)
        trace, ok = [], True
        for _ in range(MAX_CALLS):
            call = self._continue(so_far, S.CALL_END, cancelled)
            if call is None:
                return Answer("cancelled" if cancelled.is_set() else "error: no tool call written", ok=False,
                              trace=tuple(trace))
            call_text = text.decode([t for t in call if t >= text.NUM_SPECIAL])
            try:
                result = registry.run_tool(*registry.parse_call(call_text), now=request.now)
            except Exception as err:  # noqa: BLE001 - a malformed call is an error result, like a failed tool
                result = registry.ToolResult(False, f"error: {err}")
            trace.append({"call": call_text, "result": result.text})
            ok = ok and result.ok
            so_far = so_far + call + [int(S.CALL_END)] + text.wrap(S.TOOL_RESULT, view(call_text, result.text),
                                                                  S.TOOL_RESULT_END)
            nxt = self._continue(so_far, -1, cancelled, limit=1)
            if nxt != [int(S.CALL)]:
                break
            so_far.append(int(S.CALL))
        spoken = self._continue(so_far + [int(S.ANSWER)], S.EOS, cancelled)
        if spoken is None:
            return Answer("cancelled" if cancelled.is_set() else "error: no answer written", ok=False,
                          trace=tuple(trace))
        k = spoken.index(S.SURFACE) if S.SURFACE in spoken else len(spoken)  # the surface line follows
        said, line = (text.decode([t for t in part if t >= text.NUM_SPECIAL]) for part in (spoken[:k], spoken[k + 1:]))
        shown = surface.from_line(line, request.text, said) if ok and line else None
        return Answer(said, ok=ok, trace=tuple(trace), surface=shown)


def save(workdir, spec: DecoderSpec, params, copy: bool = False) -> None:
    """Writes a trained reasoner: `spec.json` (the decoder's spec, and whether it copies) and `params/`
    (orbax) under `workdir`."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    with ocp.StandardCheckpointer() as saver:
        saver.save((workdir / "params").absolute(), params, force=True)
    (workdir / "spec.json").write_text(json.dumps({**dataclasses.asdict(spec), "copy": copy}, indent=1))


def load(workdir) -> LearnedReasoner:
    """The reasoner `experiments.train_reasoner` wrote under `workdir`."""
    workdir = Path(workdir)
    if not (workdir / "spec.json").exists() or not (workdir / "params").is_dir():
        raise FileNotFoundError(f"no trained reasoner under {workdir} (spec.json and params/): train one with "
                                f"`python -m experiments.train_reasoner --workdir={workdir}`.")
    fields = json.loads((workdir / "spec.json").read_text())
    copy = fields.pop("copy", False)  # reasoners saved before the pointer existed have none
    spec = DecoderSpec(**{**fields, "moe": moe_spec(fields["moe"]) if fields.get("moe") else None})
    graphdef, abstract = nnx.split(nnx.eval_shape(lambda: ReasonerModel(spec, copy=copy, rngs=nnx.Rngs(0))))
    with ocp.StandardCheckpointer() as loader:
        params = loader.restore((workdir / "params").absolute(), abstract)
    return LearnedReasoner(graphdef, params)


def untrained(spec: DecoderSpec, seed: int = 0) -> LearnedReasoner:
    """A freshly initialised reasoner: the learned one's cost without its skill (for timing)."""
    return LearnedReasoner(*nnx.split(ReasonerModel(spec, rngs=nnx.Rngs(seed))))
