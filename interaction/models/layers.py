"""Building blocks shared by the model's layers; every parameter carries logical axis names."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from interaction.models import invariant

LECUN = nnx.initializers.lecun_normal()


def param(rngs: nnx.Rngs, init, names: tuple, shape: tuple) -> nnx.Param:
    """A parameter of `shape` whose axes are named `names` (logical axes, mapped to mesh axes by rules)."""
    return nnx.Param(nnx.with_partitioning(init, names)(rngs.params(), shape))


def dense(x: jax.Array, w: jax.Array, deterministic: bool = False) -> jax.Array:
    """x (..., K) @ w (K, N); batch-invariant (`invariant.matmul`) when `deterministic`."""
    return invariant.matmul(x, w) if deterministic else x @ w


class Linear(nnx.Module):
    """x @ kernel + bias (parameters named as nnx.Linear's), batch-invariant when `deterministic`; `zero`
    starts kernel and bias at zero (for modulation and output layers)."""

    def __init__(self, n_in: int, n_out: int, names: tuple, rngs: nnx.Rngs, dtype, *, zero: bool = False,
                 deterministic: bool = False):
        self.kernel = param(rngs, nnx.initializers.zeros_init() if zero else LECUN, names, (n_in, n_out))
        self.bias = param(rngs, nnx.initializers.zeros_init(), names[-1:], (n_out,))
        self.dtype, self.deterministic = dtype, deterministic

    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.astype(self.dtype)
        return dense(x, self.kernel[...].astype(self.dtype), self.deterministic) + self.bias[...].astype(self.dtype)


def mean_last(x: jax.Array, deterministic: bool = False) -> jax.Array:
    """Mean over the last axis, keeping it; batch-invariant when `deterministic`."""
    if deterministic:
        return (invariant.row_sum(x) / x.shape[-1])[..., None]
    return x.mean(axis=-1, keepdims=True)


class RMSNorm(nnx.Module):
    """x / rms(x) * scale, computed in float32; batch-invariant when `deterministic`."""

    def __init__(self, width: int, rngs: nnx.Rngs, dtype, *, deterministic: bool = False, eps: float = 1e-6):
        self.scale = param(rngs, nnx.initializers.ones_init(), ("embed",), (width,))
        self.dtype, self.deterministic, self.eps = dtype, deterministic, eps

    def __call__(self, x: jax.Array) -> jax.Array:
        x32 = x.astype(jnp.float32)
        normed = x32 * jax.lax.rsqrt(mean_last(jnp.square(x32), self.deterministic) + self.eps)
        return (normed * self.scale[...].astype(jnp.float32)).astype(self.dtype)


def swiglu(x: jax.Array, gate: jax.Array, up: jax.Array, down: jax.Array, deterministic: bool = False) -> jax.Array:
    return dense(jax.nn.silu(dense(x, gate, deterministic)) * dense(x, up, deterministic), down, deterministic)


class SwiGLU(nnx.Module):
    """Dense gated feed-forward: down(silu(x @ gate) * (x @ up))."""

    def __init__(self, embed: int, mlp: int, *, rngs: nnx.Rngs, dtype=jnp.float32, deterministic: bool = False):
        self.gate = param(rngs, LECUN, ("embed", "mlp"), (embed, mlp))
        self.up = param(rngs, LECUN, ("embed", "mlp"), (embed, mlp))
        self.down = param(rngs, LECUN, ("mlp", "embed"), (mlp, embed))
        self.dtype, self.deterministic = dtype, deterministic

    def __call__(self, x: jax.Array) -> jax.Array:
        return swiglu(x, *(w[...].astype(self.dtype) for w in (self.gate, self.up, self.down)), self.deterministic)
