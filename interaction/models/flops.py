"""Analytic FLOP counts (2 per multiply-add) and memory traffic of the model's parts, for benchmarks'
floors and MFU.

FLOPs counted: every matmul of the decoder (attention projections, attention over `context` keys, the
active feed-forward experts), the patch stem, the group embeddings, the text head with its depth head
and the flow head. Not counted: embedding
lookups, norms, softmax and other elementwise work. XLA's own cost analysis is no substitute: it counts
the body of a loop once, and the streaming step is mostly loops.

Bytes: what a streaming micro-turn must read at the least. Its `MicroTurnLayout.passes` decoder
passes run one after another, each reading the weights its tokens use (all but the experts none of them
chose) and the whole KV cache (`micro_turn_passes`); at batch 1 that traffic, not arithmetic, bounds the
step (`step_bytes`).
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


def _keys(block, context: int) -> int:
    """Keys a query of `block` attends to in a `context` of keys: a local layer's window at most."""
    return context if block.window is None else min(context, block.window)


def _decoder_token(model, context: int) -> float:
    """Forward FLOPs of one token through the decoder (the experts it uses), attending to `context` keys
    (a local layer to its window at most)."""
    d = model.spec.decoder
    total = 0.0
    for block, layers in model.decoder.counted_blocks():  # sizes of a stacked block cover all its layers
        ffn = moe_param_count(block.ffn)[1] if isinstance(block.ffn, MoE) else size(block.ffn)
        total += 2 * (size(block.attn) + ffn) + layers * 4 * _keys(block, context) * d.heads * d.head_dim
    return total


def _size(module) -> int:
    """Parameters of an optional part (a group embedding or the depth head of a layout without them: 0)."""
    return 0 if module is None else size(module)


def _text_slot(model) -> float:
    """FLOPs of reading one text slot: the depth head (if any) and the text head."""
    return 2 * (_size(model.text_depth) + model.spec.decoder.embed * text.VOCAB_SIZE)


def _stems(model) -> int:
    """Parameters a patch passes through: the stems of its look and of its change (one use each)."""
    return size(model.video) + size(model.motion)


def block_forward(model, context: int, flow_evals: int) -> float:
    """Forward FLOPs of one micro-turn block: its positions through the decoder, each attending to `context`
    keys; its patches through the stems; its groups through their embeddings; its text slots through the
    depth and text heads; and `flow_evals` passes of the flow head per audio position (1 in training, the
    Euler steps when sampling)."""
    lay = model.spec.layout
    groups = (lay.user_positions * _size(model.user_audio_group) + lay.text_positions * _size(model.text_group)
              + lay.audio_positions * _size(model.audio_group))
    return float(lay.block_len * _decoder_token(model, context) + lay.patches * 2 * _stems(model) + 2 * groups
                 + lay.text_out_slots * _text_slot(model) + lay.audio_positions * flow_evals * 2 * size(model.flow))


def micro_turn_passes(model, *, sessions: int, context: int, flow_evals: int, weight_bytes: int,
                      kv_bytes: int) -> list[tuple[float, float]]:
    """(FLOPs, bytes read) of each decoder pass of one streaming micro-turn, run one after another for
    `sessions` batched sessions: the input pass (with the first text position), one per other text position,
    one per audio position (`MicroTurnLayout.passes` in all).

    A pass reads every decoder weight but the experts no token of it chose (of E experts with top-k
    routing, N tokens leave an expected E (1 - k/E)^N unread), every session's `context` cached keys and
    values (a local layer's window at most), and its heads: the stems and the user-audio group embedding
    (input pass), the text group embedding and the depth and text heads (a text position), or the audio
    group embedding and the flow head `flow_evals` times (an audio position)."""
    spec, lay = model.spec, model.spec.layout
    d = spec.decoder
    cached = sum(layers * _keys(block, context) for block, layers in model.decoder.counted_blocks())
    kv = sessions * cached * 2 * d.kv_heads * d.head_dim * kv_bytes

    def one(tokens: int, head_flops: float, head_params: float) -> tuple[float, float]:
        weights = 0.0
        for block, _ in model.decoder.counted_blocks():
            weights += size(block)
            if isinstance(block.ffn, MoE):
                m = block.ffn
                experts = sum(math.prod(w.shape) for w in (m.gate, m.up, m.down))
                weights -= experts * (1 - m.top_k / m.num_experts) ** tokens  # expected experts left unread
        return tokens * _decoder_token(model, context) + head_flops, weight_bytes * (weights + head_params) + kv

    text_params = _size(model.text_group) + _size(model.text_depth) + spec.decoder.embed * text.VOCAB_SIZE
    text_flops = sessions * (2 * _size(model.text_group) + lay.text_group * _text_slot(model))
    stem = _stems(model) + _size(model.user_audio_group)
    stem_flops = sessions * 2 * (lay.patches * _stems(model) + lay.user_positions * _size(model.user_audio_group))
    audio_params = _size(model.audio_group) + flow_evals * size(model.flow)
    first = one(sessions * (lay.input_len + 1), stem_flops + text_flops, stem + text_params)
    texts = [one(sessions, text_flops, text_params)] * (lay.text_positions - 1)
    audio = [one(sessions, sessions * 2 * audio_params, audio_params)] * lay.audio_positions
    return [first] + texts + audio


def step_bytes(model, context: int, flow_evals: int) -> float:
    """Bytes one session's streaming step reads at the least (`micro_turn_passes` of one session, keys and
    values stored like the weights): at batch 1 this traffic, not arithmetic, bounds the step."""
    itemsize = jax.tree.leaves(nnx.state(model, nnx.Param))[0].dtype.itemsize
    return float(sum(b for _, b in micro_turn_passes(model, sessions=1, context=context, flow_evals=flow_evals,
                                                     weight_bytes=itemsize, kv_bytes=itemsize)))
