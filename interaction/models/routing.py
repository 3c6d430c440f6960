"""What the MoE layers of a trained model do with each stream: the training forward over a batch, layer
by layer, reading every MoE layer's choices on the way."""
from __future__ import annotations

import numpy as np

from interaction.data.layout import Stream
from interaction.models.model import InteractionModel
from interaction.models.moe import MoE
from interaction.models.transformer import ScannedDecoder


def statistics(model: InteractionModel, batch: dict) -> list[dict]:
    """Per MoE layer of an unscanned model, over the valid micro-turns of `batch`: `load` (E,), the share of
    assignments each expert took (uniform is 1/E); `by_stream` (streams, E), the same per input/output stream;
    `top1_weight`, the mean router weight of a token's first choice (1/k when undecided, 1 when sure)."""
    if isinstance(model.decoder, ScannedDecoder):
        raise ValueError("routing statistics read each layer's MoE; build the model with scan_layers=False.")
    valid = np.asarray(batch["valid"], bool)  # (B, T)
    lay = model.spec.layout
    streams = np.broadcast_to(lay.stream_ids(), valid.shape + (lay.block_len,))[valid]  # (N, block_len)
    x, positions = model.sequence(batch)
    out = []
    for layer, block in enumerate(model.decoder.blocks):
        x = block.attend(x, positions)
        if isinstance(block.ffn, MoE):
            moe = block.ffn
            _, weights, experts = moe.route(block.ffn_norm(x).reshape(-1, x.shape[-1]))
            experts = np.asarray(experts).reshape(valid.shape + (lay.block_len, moe.top_k))[valid]
            weights = np.asarray(weights).reshape(valid.shape + (lay.block_len, moe.top_k))[valid]
            counts = np.zeros((len(Stream), moe.num_experts))
            np.add.at(counts, (np.repeat(streams[..., None], moe.top_k, -1), experts), 1)
            out.append({"layer": layer, "load": counts.sum(0) / counts.sum(),
                        "by_stream": counts / np.maximum(counts.sum(1, keepdims=True), 1),
                        "top1_weight": float(weights[..., 0].mean())})
        y, _ = block.feed_forward(x)
        x = x + y
    return out
