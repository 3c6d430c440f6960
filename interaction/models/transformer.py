"""Pre-norm transformer blocks: RMSNorm, causal attention, and a dense SwiGLU or MoE feed-forward."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from interaction.models.attention import Attention
from interaction.sharding import constrain
from interaction.models.cache import KVCache
from interaction.models.layers import RMSNorm, SwiGLU
from interaction.models.moe import MoE


@dataclasses.dataclass(frozen=True)
class MoESpec:
    num_experts: int
    top_k: int
    every: int = 1  # layer i is MoE when (i + 1) % every == 0; the others are dense
    shared_expert: bool = False
    capacity_factor: float = 1.25
    dispatch: str = "ragged"  # "ragged" (no drop, grouped matmul), "capacity", or "dense" (every expert on every
    #                           token, weighted: no drop, batch-invariant, num_experts/top_k times the FLOPs)


@dataclasses.dataclass(frozen=True)
class DecoderSpec:
    embed: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    mlp: int
    moe: MoESpec | None = None
    rope_base: float = 10_000.0
    deterministic: bool = False  # batch-invariant arithmetic (`invariant.py`); MoE layers need dispatch "dense"

    def __post_init__(self):
        if self.deterministic and self.moe is not None and self.moe.dispatch != "dense":
            raise ValueError(f"deterministic=True needs moe.dispatch='dense' (got {self.moe.dispatch!r}): the other "
                             "dispatches group a token with whichever tokens share its experts.")

    def is_moe(self, layer: int) -> bool:
        return self.moe is not None and (layer + 1) % self.moe.every == 0


class Block(nnx.Module):
    def __init__(self, spec: DecoderSpec, layer: int, *, rngs: nnx.Rngs, dtype=jnp.float32, key_chunk: int = 1):
        det = spec.deterministic
        self.attn_norm = RMSNorm(spec.embed, rngs, dtype, deterministic=det)
        self.attn = Attention(spec.embed, spec.heads, spec.kv_heads, spec.head_dim, rope_base=spec.rope_base,
                              rngs=rngs, dtype=dtype, deterministic=det, key_chunk=key_chunk)
        self.ffn_norm = RMSNorm(spec.embed, rngs, dtype, deterministic=det)
        if spec.is_moe(layer):
            m = spec.moe
            self.ffn = MoE(spec.embed, spec.mlp, m.num_experts, m.top_k, shared_expert=m.shared_expert,
                           capacity_factor=m.capacity_factor, dispatch=m.dispatch, dtype=dtype, rngs=rngs,
                           deterministic=det)
        else:
            self.ffn = SwiGLU(spec.embed, spec.mlp, rngs=rngs, dtype=dtype, deterministic=det)

    def feed_forward(self, x) -> tuple[jax.Array, dict]:
        out = self.ffn(self.ffn_norm(x))
        return out if isinstance(out, tuple) else (out, {})

    def __call__(self, x, positions) -> tuple[jax.Array, dict]:
        x = x + self.attn(self.attn_norm(x), positions)
        y, aux = self.feed_forward(x)
        return x + y, aux

    def step(self, x, positions, cache: KVCache, block: KVCache) -> tuple[jax.Array, KVCache]:
        """The same block over new tokens x (B, S, embed) of the current micro-turn: their keys go to
        `block` (the turn's own), and they attend over the session's `cache` (read only) and the block."""
        h = self.attn_norm(x)
        block = block.write(*self.attn.project_kv(h, positions), positions)
        x = x + self.attn.query(h, positions, (cache, block), window=cache.capacity)
        y, _ = self.feed_forward(x)
        return x + y, block


class Decoder(nnx.Module):
    """The block stack; MoE auxiliaries (losses, expert load) are averaged over the MoE layers."""

    def __init__(self, spec: DecoderSpec, *, rngs: nnx.Rngs, dtype=jnp.float32, key_chunk: int = 1):
        """key_chunk: keys per split of the deterministic attention (`attend_invariant`): the model's
        micro-turn length, so that splits align with absolute positions in caches and windows alike."""
        self.blocks = nnx.List([Block(spec, i, rngs=rngs, dtype=dtype, key_chunk=key_chunk)
                                for i in range(spec.layers)])
        self.final_norm = RMSNorm(spec.embed, rngs, dtype, deterministic=spec.deterministic)

    def step(self, x, positions, caches: tuple[KVCache, ...], blocks: tuple[KVCache, ...]
             ) -> tuple[jax.Array, tuple[KVCache, ...]]:
        """Streaming pass over new tokens: per block, the session's cache (read only) and the micro-turn's
        block of keys (returned with the new tokens' keys added)."""
        new = []
        for layer, cache, block in zip(self.blocks, caches, blocks):
            x, block = layer.step(x, positions, cache, block)
            new.append(block)
        return self.final_norm(x), tuple(new)

    def __call__(self, x, positions) -> tuple[jax.Array, dict]:
        auxes = []
        for block in self.blocks:
            x, aux = block(constrain(x, ("batch", "time", "embed")), positions)
            if aux:
                auxes.append(aux)
        merged = jax.tree.map(lambda *xs: jnp.mean(jnp.stack(xs), axis=0), *auxes) if auxes else {}
        return self.final_norm(x), merged
