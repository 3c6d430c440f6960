"""What the MoE layers of a trained model do with each stream: a training-forward pass over a batch,
then every MoE layer's choices read back (the `routing` each MoE layer keeps of its latest call)."""
from __future__ import annotations

import numpy as np
from flax import nnx

from interaction.data.layout import Stream
from interaction.models.model import InteractionModel
from interaction.models.moe import MoE


def statistics(model: InteractionModel, batch: dict) -> list[dict]:
    """Per MoE layer of an unscanned model, over the valid micro-turns of `batch`: `load` (E,), the share of
    assignments each expert took (uniform is 1/E); `by_stream` (streams, E), the same per input/output stream;
    `top1_weight`, the mean router weight of a token's first choice (1/k when undecided, 1 when sure)."""
    if not hasattr(model.decoder, "blocks"):
        raise ValueError("routing statistics read each layer's MoE; build the model with scan_layers=False.")
    model(batch)
    valid = np.asarray(batch["valid"], bool)  # (B, T)
    streams = np.broadcast_to(model.spec.layout.stream_ids(), valid.shape + (model.spec.layout.block_len,))[valid]
    out = []
    for layer, block in enumerate(model.decoder.blocks):
        if not isinstance(block.ffn, MoE):
            continue
        moe = block.ffn
        sown = moe.routing.get_value()
        b, t = valid.shape
        experts = np.asarray(sown["experts"]).reshape(b, t, -1, moe.top_k)[valid]  # (N, block_len, k)
        weights = np.asarray(sown["weights"]).reshape(b, t, -1, moe.top_k)[valid]
        counts = np.zeros((len(Stream), moe.num_experts))
        np.add.at(counts, (np.repeat(streams[..., None], moe.top_k, -1), experts), 1)
        out.append({"layer": layer, "load": counts.sum(0) / counts.sum(),
                    "by_stream": counts / np.maximum(counts.sum(1, keepdims=True), 1),
                    "top1_weight": float(weights[..., 0].mean())})
    nnx.pop(model, nnx.Intermediate)
    return out
