"""Building blocks shared by the model's layers; every parameter carries logical axis names."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

LECUN = nnx.initializers.lecun_normal()


def param(rngs: nnx.Rngs, init, names: tuple, shape: tuple) -> nnx.Param:
    """A parameter of `shape` whose axes are named `names` (logical axes, mapped to mesh axes by rules)."""
    return nnx.Param(nnx.with_partitioning(init, names)(rngs.params(), shape))


def linear(n_in: int, n_out: int, names: tuple, rngs: nnx.Rngs, dtype, *, zero: bool = False) -> nnx.Linear:
    """Linear layer with bias; `zero` starts kernel and bias at zero (for modulation and output layers)."""
    kernel = nnx.initializers.zeros_init() if zero else LECUN
    return nnx.Linear(
        n_in, n_out, dtype=dtype, rngs=rngs,
        kernel_init=nnx.with_partitioning(kernel, names),
        bias_init=nnx.with_partitioning(nnx.initializers.zeros_init(), names[-1:]),
    )


def rms_norm(width: int, rngs: nnx.Rngs, dtype) -> nnx.RMSNorm:
    return nnx.RMSNorm(width, dtype=dtype, rngs=rngs,
                       scale_init=nnx.with_partitioning(nnx.initializers.ones_init(), ("embed",)))


def swiglu(x: jax.Array, gate: jax.Array, up: jax.Array, down: jax.Array) -> jax.Array:
    return (jax.nn.silu(x @ gate) * (x @ up)) @ down


class SwiGLU(nnx.Module):
    """Dense gated feed-forward: down(silu(x @ gate) * (x @ up))."""

    def __init__(self, embed: int, mlp: int, *, rngs: nnx.Rngs, dtype=jnp.float32):
        self.gate = param(rngs, LECUN, ("embed", "mlp"), (embed, mlp))
        self.up = param(rngs, LECUN, ("embed", "mlp"), (embed, mlp))
        self.down = param(rngs, LECUN, ("mlp", "embed"), (mlp, embed))
        self.dtype = dtype

    def __call__(self, x: jax.Array) -> jax.Array:
        return swiglu(x, *(w[...].astype(self.dtype) for w in (self.gate, self.up, self.down)))
