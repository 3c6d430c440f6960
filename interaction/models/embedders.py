"""Encoder-free input embedders (docs/design.md): every stream becomes one `embed`-wide token per slot.

- dMel audio: a frame's 80 channel bins each pick a row of a per-channel table; the frame's token is
  their sum ("bag of embeddings"). User audio and the model's fed-back audio share the table; which
  stream a token belongs to is added by the stream embedding.
- video: the hMLP stem. A 40x40 patch is embedded hierarchically, 40 = 5 x 2 x 2 x 2: a linear map on
  every 5x5 sub-patch, then three stages that each merge 2x2 neighbours with a linear map. Each stage
  is followed by RMSNorm and GELU; there is no BatchNorm, so a token depends on its own patch only. A
  second stem of the same form reads a patch's change since the previous frame (signed differences).
- text and stream identity: plain embedding tables.
Parameters carry logical axis names only (vocab, embed, mlp); the config maps them to mesh axes.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from interaction.codecs import video
from interaction.models import invariant
from interaction.models.layers import Linear, RMSNorm, param

_EMBED_INIT = nnx.initializers.normal(stddev=0.02)


class DMelEmbed(nnx.Module):
    """(..., n_mels) int tokens in [0, n_bins) -> (..., embed): the sum of per-channel bin embeddings."""

    def __init__(self, n_mels: int, n_bins: int, embed: int, *, rngs: nnx.Rngs, dtype=jnp.float32,
                 deterministic: bool = False):
        self.n_mels, self.n_bins = n_mels, n_bins
        self.table = param(rngs, _EMBED_INIT, ("vocab", "embed"), (n_mels * n_bins, embed))
        self.dtype, self.deterministic = dtype, deterministic

    def __call__(self, tokens: jax.Array) -> jax.Array:
        if tokens.shape[-1] != self.n_mels:
            raise ValueError(f"expected {self.n_mels} channel tokens per frame, got shape {tokens.shape}")
        rows = jnp.arange(self.n_mels) * self.n_bins + tokens  # each channel has its own n_bins rows
        picked = jnp.take(self.table[...].astype(self.dtype), rows, axis=0)  # (..., n_mels, embed)
        if self.deterministic:
            return invariant.row_sum(jnp.swapaxes(picked, -1, -2))
        return picked.sum(axis=-2)


class HMLPStem(nnx.Module):
    """(..., 40, 40, 3) patches -> (..., embed): uint8 pixels, or with `signed` the differences of two frames'
    pixels (integers in [-255, 255]). With `width` below embed its merges are that wide and a map to embed
    follows: a stem's merges cost 6.5 width^2 parameters.

    A signed stem's input has a gain (`CHANGE_GAIN`) and its norms a floor (`CHANGE_EPS`). Most of a change is
    zero, where each map's output is its bias alone, and a norm with a tiny eps scales that up to unit size: its
    gradient there is 1/sqrt(eps), about 1e10 through four, and a one-level flicker would sound as loud as a
    shape appearing. With the floor, activations below unit size pass nearly as they are (gradient at most 1);
    with the gain, a shape's change lies above it and is normed as the video stem's activations are. Without
    norms the change is stable but too quiet beside the frame's own embedding to be used (docs/results.md)."""

    CHANGE_GAIN = 8.0 / 255.0  # pixel differences -> the signed stem's input: a changed pixel is of order 1 to 8
    CHANGE_EPS = 1.0  # the signed stem's norms: x / sqrt(mean(x^2) + 1)

    FIRST = 5  # 40 = 5 * 2 * 2 * 2
    MERGES = 3

    def __init__(self, embed: int, *, rngs: nnx.Rngs, dtype=jnp.float32, deterministic: bool = False,
                 signed: bool = False, width: int | None = None):
        if embed % 4:
            raise ValueError(f"embed={embed} must be divisible by 4 (the stem widens embed/4 -> embed/2 -> embed).")
        inner = embed if width is None else min(embed, width)  # the merges' width; a map to embed follows if less
        if inner % 4:
            raise ValueError(f"width={width} must be divisible by 4.")
        widths = [inner // 4, inner // 2, inner, inner]
        det = deterministic
        self.out = Linear(inner, embed, ("mlp", "embed"), rngs, dtype, deterministic=det) if inner < embed else None
        self.first = Linear(self.FIRST * self.FIRST * 3, widths[0], (None, "embed"), rngs, dtype, deterministic=det)
        self.merges = nnx.List([Linear(4 * widths[i], widths[i + 1], ("mlp", "embed"), rngs, dtype, deterministic=det)
                               for i in range(self.MERGES)])
        eps = self.CHANGE_EPS if signed else 1e-6
        self.norms = nnx.List([RMSNorm(w, rngs, dtype, deterministic=det, eps=eps) for w in widths])
        self.dtype, self.signed = dtype, signed

    def __call__(self, patches: jax.Array) -> jax.Array:
        *lead, h, w, c = patches.shape
        if (h, w, c) != (video.PATCH, video.PATCH, 3):
            raise ValueError(f"expected (..., {video.PATCH}, {video.PATCH}, 3) patches, got {patches.shape}")
        x = patches.astype(self.dtype) * self.CHANGE_GAIN if self.signed else patches.astype(self.dtype) / 127.5 - 1.0
        g = video.PATCH // self.FIRST  # 8x8 grid of 5x5 sub-patches
        x = x.reshape(*lead, g, self.FIRST, g, self.FIRST, c)
        x = jnp.moveaxis(x, -4, -3).reshape(*lead, g, g, self.FIRST * self.FIRST * c)
        x = jax.nn.gelu(self.norms[0](self.first(x)))
        for merge, norm in zip(self.merges, self.norms[1:]):
            g //= 2  # concatenate each 2x2 block of neighbours, then mix
            x = x.reshape(*lead, g, 2, g, 2, x.shape[-1])
            x = jnp.moveaxis(x, -4, -3).reshape(*lead, g, g, 4 * x.shape[-1])
            x = jax.nn.gelu(norm(merge(x)))
        x = x.reshape(*lead, x.shape[-1])
        return x if self.out is None else self.out(x)


def embedding_table(num: int, embed: int, *, rngs: nnx.Rngs, dtype=jnp.float32) -> nnx.Embed:
    """Token or stream embeddings with logical axes (vocab, embed)."""
    return nnx.Embed(num, embed, dtype=dtype, rngs=rngs,
                     embedding_init=nnx.with_partitioning(_EMBED_INIT, ("vocab", "embed")))


class GroupEmbed(nnx.Module):
    """(..., n, embed) per-item embeddings -> (..., n / group, embed): each run of `group` items (audio frames,
    text slots) becomes one decoder position, the concatenation of its items each mapped to embed / group
    (one map for all), so where in the group an item sits is where its share of the vector lies
    (`MicroTurnLayout`'s groups). Its parameters are embed^2 / group, not the group * embed^2 of a map of the
    whole concatenation: 13M, not 205M, at the published scale's width."""

    def __init__(self, group: int, embed: int, *, rngs: nnx.Rngs, dtype=jnp.float32, deterministic: bool = False):
        if embed % group:
            raise ValueError(f"embed={embed} must be divisible by the group of {group} that shares a position.")
        self.group = group
        self.proj = Linear(embed, embed // group, ("embed", None), rngs, dtype, deterministic=deterministic)

    def __call__(self, x: jax.Array) -> jax.Array:
        *lead, n, d = x.shape
        return self.proj(x).reshape(*lead, n // self.group, d)
