"""The text depth head: the text slots of one decoder position, read out one after another.

With `text_group` g > 1 a text-out position carries g slots of the model's text. Slot j's vector is the
position's hidden state, plus the slot's own embedding, plus the group's earlier slots (each token's
embedding mapped to embed / g and set at its slot's share of the vector, the later ones zero), through one
residual feed-forward block; the text head reads it. Streaming, a slot costs these few small products
instead of a pass of the decoder, as Moshi's depth transformer reads out its codebooks. Training reads every
slot at once from the reference's tokens (`__call__`); streaming, one at a time from the tokens chosen so
far (`slot`): the same products per row.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from interaction.models.layers import Linear, RMSNorm, SwiGLU, param

_SLOT_INIT = nnx.initializers.normal(stddev=0.02)


class TextDepth(nnx.Module):
    def __init__(self, group: int, embed: int, mlp: int, *, rngs: nnx.Rngs, dtype=jnp.float32,
                 deterministic: bool = False):
        det = deterministic
        self.group = group
        self.slots = param(rngs, _SLOT_INIT, (None, "embed"), (group, embed))
        if embed % group:
            raise ValueError(f"embed={embed} must be divisible by text_group={group}.")
        self.earlier = Linear(embed, embed // group, ("embed", None), rngs, dtype, deterministic=det)
        self.norm = RMSNorm(embed, rngs, dtype, deterministic=det)
        self.ffn = SwiGLU(embed, mlp, rngs=rngs, dtype=dtype, deterministic=det)

    def _read(self, h: jax.Array, slot: jax.Array, earlier: jax.Array) -> jax.Array:
        z = h + slot.astype(h.dtype) + earlier
        return z + self.ffn(self.norm(z))

    def __call__(self, h: jax.Array, tokens: jax.Array) -> jax.Array:
        """h (..., embed) at a position, tokens (..., g, embed) its slots' embedded tokens -> (..., g, embed):
        slot j's vector sees the tokens of slots 0..j-1."""
        *lead, g, d = tokens.shape
        shares = self.earlier(tokens)  # (..., g, d / g)
        before = jnp.tri(g, g, -1, dtype=shares.dtype)  # [j, i] = 1 where i < j
        earlier = (shares[..., None, :, :] * before[:, :, None]).reshape(*lead, g, d)
        return self._read(h[..., None, :], self.slots[...], earlier)

    def slot(self, h: jax.Array, tokens: jax.Array, j) -> jax.Array:
        """Slot j's vector (..., embed) alone; tokens (..., g, embed) may hold anything at slots j and after."""
        *lead, g, d = tokens.shape
        shares = self.earlier(tokens)
        before = (jnp.arange(g) < j).astype(shares.dtype)
        return self._read(h, self.slots[...][j], (shares * before[:, None]).reshape(*lead, d))
