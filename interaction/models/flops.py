"""Analytic FLOP counts (2 per multiply-add) and memory traffic of the model's parts, for benchmarks'
floors and MFU.

FLOPs counted: every matmul of the decoder (attention projections, attention over `context` keys, the
active feed-forward experts), the patch stem, the text head and the flow head. Not counted: embedding
lookups, norms, softmax and other elementwise work. XLA's own cost analysis is no substitute: it counts
the body of a loop once, and the streaming step is mostly loops.

Bytes: what one session's streaming step must read at the least. Its 1 + text_out_slots + frames
decoder passes run one after another, each reading the active weights and the whole KV cache; at batch 1
that traffic, not arithmetic, bounds the step (`step_bytes`).
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
    for block, layers in model.decoder.counted_blocks():  # sizes of a stacked block cover all its layers
        ffn = moe_param_count(block.ffn)[1] if isinstance(block.ffn, MoE) else size(block.ffn)
        per_token += 2 * (size(block.attn) + ffn) + layers * 4 * context * d.heads * d.head_dim
    return float(lay.block_len * per_token + lay.patches * 2 * size(model.video)
                 + lay.text_out_slots * 2 * d.embed * text.VOCAB_SIZE + lay.frames * flow_evals * 2 * size(model.flow))


def step_bytes(model, context: int, flow_evals: int) -> float:
    """Bytes one streaming step reads at the least for one session: per decoder pass (the input pass and
    one per output slot), every block's weights (the experts a token uses) and `context` cached keys and
    values; the text head per text slot, the flow head `flow_evals` times per audio frame, and the stem."""
    spec, lay = model.spec, model.spec.layout
    d = spec.decoder
    itemsize = jax.tree.leaves(nnx.state(model, nnx.Param))[0].dtype.itemsize
    weights = sum(size(b) - (moe_param_count(b.ffn)[0] - moe_param_count(b.ffn)[1] if isinstance(b.ffn, MoE) else 0)
                  for b, _ in model.decoder.counted_blocks())
    kv = d.layers * 2 * d.kv_heads * d.head_dim * context
    passes = 1 + lay.text_out_slots + lay.frames
    return float(itemsize * (passes * (weights + kv) + lay.text_out_slots * d.embed * text.VOCAB_SIZE
                             + lay.frames * flow_evals * size(model.flow) + size(model.video)))
