"""The text depth head: the text slots of one decoder position, read out one after another.

With `text_group` g > 1 a text-out position carries g slots of the model's text. Slot j's vector is the
position's hidden state, plus the slot's own embedding, plus the group's earlier slots (each token's
embedding mapped to embed / g and set at its slot's share of the vector, the later ones zero), and, with
`reads_before`, the group before it (the tokens the position was fed, mapped alike by a map of their own),
through one residual feed-forward block; the text head reads it. Without the group before, the first slots of
a group reach the bytes just said only through the decoder, and a small one learns that path late: a word
split over two groups loses its letters at the split. Streaming, a slot costs these few small products
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
                 deterministic: bool = False, reads_before: bool = False):
        det = deterministic
        self.group = group
        self.slots = param(rngs, _SLOT_INIT, (None, "embed"), (group, embed))
        if embed % group:
            raise ValueError(f"embed={embed} must be divisible by text_group={group}.")
        self.earlier = Linear(embed, embed // group, ("embed", None), rngs, dtype, deterministic=det)
        self.before = Linear(embed, embed // group, ("embed", None), rngs, dtype, deterministic=det) if reads_before \
            else None
        self.norm = RMSNorm(embed, rngs, dtype, deterministic=det)
        self.ffn = SwiGLU(embed, mlp, rngs=rngs, dtype=dtype, deterministic=det)

    def _read(self, h: jax.Array, slot: jax.Array, earlier: jax.Array, previous: jax.Array | None) -> jax.Array:
        z = h + slot.astype(h.dtype) + earlier
        if self.before is not None:
            if previous is None:
                raise ValueError("this depth head reads the group before: pass its tokens as `previous`.")
            z = z + self.before(previous).reshape(*previous.shape[:-2], -1)
        return z + self.ffn(self.norm(z))

    def __call__(self, h: jax.Array, tokens: jax.Array, previous: jax.Array | None = None) -> jax.Array:
        """h (..., embed) at a position, tokens (..., g, embed) its slots' embedded tokens and previous
        (..., g, embed) the group before's (read with `reads_before`) -> (..., g, embed): slot j's vector sees
        the tokens of slots 0..j-1 and of the group before."""
        *lead, g, d = tokens.shape
        shares = self.earlier(tokens)  # (..., g, d / g)
        seen = jnp.tri(g, g, -1, dtype=shares.dtype)  # [j, i] = 1 where i < j
        earlier = (shares[..., None, :, :] * seen[:, :, None]).reshape(*lead, g, d)
        previous = None if previous is None else previous[..., None, :, :]  # the same for every slot
        return self._read(h[..., None, :], self.slots[...], earlier, previous)

    def slot(self, h: jax.Array, tokens: jax.Array, j, previous: jax.Array | None = None) -> jax.Array:
        """Slot j's vector (..., embed) alone; tokens (..., g, embed) may hold anything at slots j and after."""
        *lead, g, d = tokens.shape
        shares = self.earlier(tokens)
        seen = (jnp.arange(g) < j).astype(shares.dtype)
        return self._read(h, self.slots[...][j], (shares * seen[:, None]).reshape(*lead, d), previous)
