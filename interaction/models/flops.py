"""Analytic FLOP counts (2 per multiply-add) of the model's parts, for benchmarks' floors and MFU.

Counted: every matmul of the decoder (attention projections, attention over `context` keys, the active
feed-forward experts), the patch stem, the text head and the flow head. Not counted: embedding lookups,
norms, softmax and other elementwise work. XLA's own cost analysis is no substitute: it counts the body
of a loop once, and the streaming step is mostly loops.
"""
from __future__ import annotations

import math

import jax
from flax import nnx

from interaction.codecs import text
from interaction.models.moe import MoE
from interaction.models.moe import param_count as moe_param_count


def size(module) -> int:
    return sum(math.prod(p.shape) for p in jax.tree.leaves(nnx.state(module, nnx.Param)))


def block_forward(model, context: int, flow_evals: int) -> float:
    """Forward FLOPs of one micro-turn block: its slots through the decoder, each attending to `context`
    keys; its patches through the stem; its text slots through the text head; and `flow_evals` passes of
    the flow head per audio frame (1 in training, the Euler steps when sampling)."""
    spec, lay = model.spec, model.spec.layout
    d = spec.decoder
    per_token = 0
    for block in model.decoder.blocks:
        ffn = moe_param_count(block.ffn)[1] if isinstance(block.ffn, MoE) else size(block.ffn)
        per_token += 2 * (size(block.attn) + ffn) + 4 * context * d.heads * d.head_dim
    return float(lay.block_len * per_token + lay.patches * 2 * size(model.video)
                 + lay.text_out_slots * 2 * d.embed * text.VOCAB_SIZE + lay.frames * flow_evals * 2 * size(model.flow))
