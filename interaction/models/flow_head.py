"""Rectified-flow audio output head: models a frame's continuous features given the transformer's vector.

Convention (rectified flow / flow matching with straight paths):
    x0 ~ N(0, I),  x1 = data,  x_t = (1 - t) * x0 + t * x1,  target velocity v = x1 - x0,
    t ~ U(0, 1) independently per frame during training.
Sampling integrates dx/dt = v(x_t, t, c) with Euler steps from t = 0 (noise) to t = 1 (data).
With `noise` the flow starts from N(0, noise^2 I) instead. Where the data vary far less than unit noise about
what the conditioning says, most of the path is spent removing noise, and the last stretch, where the flow
decides what is left, is where the loss is all irreducible noise and teaches least; the draws then spread about
their mean many times wider than the data do. A noise as wide as that spread avoids it.

The velocity network is a DiT-style MLP: every residual block is modulated (shift, scale, gate) by
AdaLN from SiLU(cond embedding + time embedding). The modulation layers and the output layer start at
zero, so at initialisation every block is the identity and the head predicts zero velocity.

A patch of `frames` frames (`MicroTurnLayout.audio_group`; flattened, (..., frames * features)) is drawn
jointly from one conditioning vector: the velocity network runs on each frame with the frame's own
embedding added to its conditioning, and before every block a learned linear map over the frame axis
(starting at zero) mixes the frames, so each frame's velocity sees the others'. With one frame neither
exists and the head is a per-frame head.

With `prior` the conditioning ends in a patch's mean (the last frames * features of it, a prior drawn by the
caller) and the flow draws the patch's difference from it: from N(0, I) to x1 - prior, the draw being the prior
plus that (as Grad-TTS starts its diffusion from its text encoder's frames). The velocity network sees the noisy
difference, not the noisy patch: it is not told the prior, so from the patch alone it could not tell the noise
from the prior it would have to remove. The prior is read with no gradient: the caller teaches it with its own loss.

Axes: the head's hidden width is `embed`, its inner MLP width and modulation outputs `mlp`. The two
inputs (features, cond) and the output features stay unnamed (None): naming the cond axis `embed`
too would repeat `embed` in one kernel, which no mesh rule can lay out.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from interaction.models import invariant
from interaction.models.layers import Linear, dense, mean_last, param

_MLP_RATIO = 4
_TIME_FREQS = 32  # sinusoidal frequencies for t; the time embedding sees 2 * _TIME_FREQS features


def _norm(x: jax.Array, deterministic: bool = False, eps: float = 1e-6) -> jax.Array:
    """LayerNorm without learned scale or bias: AdaLN supplies both."""
    x32 = x.astype(jnp.float32)
    mean = mean_last(x32, deterministic)
    var = mean_last(jnp.square(x32 - mean), deterministic)
    return ((x32 - mean) * jax.lax.rsqrt(var + eps)).astype(x.dtype)


def _sinusoid(t: jax.Array) -> jax.Array:
    """(...,) times in [0, 1] -> (..., 2 * _TIME_FREQS); periods span 1 down to ~1/1000 of the interval."""
    freqs = 2 * math.pi * jnp.exp(jnp.linspace(0.0, math.log(1000.0), _TIME_FREQS))
    angles = t[..., None].astype(jnp.float32) * freqs
    return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


class _Block(nnx.Module):
    """x + gate * MLP(norm(x) * (1 + scale) + shift); shift, scale, gate come from the conditioning."""

    def __init__(self, hidden: int, *, rngs: nnx.Rngs, dtype, deterministic: bool = False):
        det = self.deterministic = deterministic
        self.modulation = Linear(hidden, 3 * hidden, ("embed", "mlp"), rngs, dtype, zero=True, deterministic=det)
        self.up = Linear(hidden, _MLP_RATIO * hidden, ("embed", "mlp"), rngs, dtype, deterministic=det)
        self.down = Linear(_MLP_RATIO * hidden, hidden, ("mlp", "embed"), rngs, dtype, deterministic=det)

    def modulated(self, x: jax.Array, modulation: jax.Array) -> jax.Array:
        """The residual branch given this block's modulation (`self.modulation` of the conditioning)."""
        shift, scale, gate = jnp.split(modulation, 3, axis=-1)
        h = _norm(x, self.deterministic) * (1 + scale) + shift
        return gate * self.down(jax.nn.gelu(self.up(h)))

    def residual(self, x: jax.Array, c: jax.Array) -> jax.Array:
        return self.modulated(x, self.modulation(c))

    def __call__(self, x: jax.Array, c: jax.Array) -> jax.Array:
        return x + self.residual(x, c)


class FlowHead(nnx.Module):
    """Velocity field v(x_t, t, cond): (..., features), (...,), (..., cond_dim) -> (..., features).

    The network splits in two: the modulations (`modulations`: every AdaLN shift, scale and gate, which
    depend on t and cond only) and the velocity given them (`velocity`: the part that reads x_t).
    Sampling computes the modulations of all its Euler steps in one batched product before the loop,
    which then runs only the x_t path: per step, 2 + 2 * depth products instead of 6 + 3 * depth."""

    def __init__(self, features: int, cond_dim: int, hidden: int, depth: int, *, rngs: nnx.Rngs,
                 dtype=jnp.float32, deterministic: bool = False, frames: int = 1, prior: bool = False,
                 noise: float = 1.0):
        if not noise > 0:
            raise ValueError(f"the flow's noise scale must be positive, not {noise}")
        det = self.deterministic = deterministic
        self.frames, self.frame_features, self.features, self.dtype = frames, features, frames * features, dtype
        self.cond_dim, self.prior, self.noise = cond_dim, prior, noise
        if frames > 1:
            self.frame_embed = param(rngs, nnx.initializers.normal(stddev=0.02), (None, "embed"), (frames, hidden))
            self.mixes = nnx.List([param(rngs, nnx.initializers.zeros_init(), (None, None), (frames, frames))
                                   for _ in range(depth)])
        self.inp = Linear(features, hidden, (None, "embed"), rngs, dtype, deterministic=det)
        self.cond_embed = Linear(cond_dim, hidden, (None, "embed"), rngs, dtype, deterministic=det)
        self.time_in = Linear(2 * _TIME_FREQS, hidden, (None, "mlp"), rngs, dtype, deterministic=det)
        self.time_out = Linear(hidden, hidden, ("mlp", "embed"), rngs, dtype, deterministic=det)
        self.blocks = nnx.List([_Block(hidden, rngs=rngs, dtype=dtype, deterministic=det) for _ in range(depth)])
        self.final_modulation = Linear(hidden, 2 * hidden, ("embed", "mlp"), rngs, dtype, zero=True, deterministic=det)
        self.out = Linear(hidden, features, ("embed", None), rngs, dtype, zero=True, deterministic=det)

    def time_embedding(self, t: jax.Array) -> jax.Array:
        """(...,) times -> (..., hidden)."""
        return self.time_out(jax.nn.silu(self.time_in(_sinusoid(t).astype(self.dtype))))

    def per_frame(self, pre: jax.Array) -> jax.Array:
        """(..., hidden) cond + time embedding -> (..., frames, hidden) SiLU of it plus each frame's embedding:
        the input of every AdaLN modulation."""
        if self.frames > 1:
            return jax.nn.silu(pre[..., None, :] + self.frame_embed[...].astype(pre.dtype))
        return jax.nn.silu(pre)[..., None, :]

    def split(self, cond: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(..., cond_dim [+ features]) -> the vector the head reads and the start of its flow's mean: the
        conditioning's prior, with no gradient into it, or 0."""
        if not self.prior:
            return cond, jnp.zeros((), jnp.float32)
        return cond[..., : self.cond_dim], jax.lax.stop_gradient(cond[..., self.cond_dim :]).astype(jnp.float32)

    def conditioning(self, t: jax.Array, cond: jax.Array) -> jax.Array:
        c, _ = self.split(cond)
        return self.per_frame(self.cond_embed(c.astype(self.dtype)) + self.time_embedding(t))

    def modulations(self, c: jax.Array) -> tuple[jax.Array, ...]:
        """Every block's modulation and the final one, from the conditioning c (..., frames, hidden)."""
        return tuple(block.modulation(c) for block in self.blocks) + (self.final_modulation(c),)

    def _mix(self, x: jax.Array, i: int) -> jax.Array:
        """(..., frames, hidden): each frame plus block i's linear map of all the frames."""
        mixed = dense(jnp.swapaxes(x, -1, -2), self.mixes[i][...].T.astype(x.dtype), self.deterministic)
        return x + jnp.swapaxes(mixed, -1, -2)

    def velocity(self, x_t: jax.Array, modulations: tuple[jax.Array, ...]) -> jax.Array:
        """(..., frames * features) -> the same: the velocity of a patch given its modulations."""
        x = self.inp(x_t.reshape(*x_t.shape[:-1], self.frames, self.frame_features).astype(self.dtype))
        for i, (block, modulation) in enumerate(zip(self.blocks, modulations)):
            if self.frames > 1:
                x = self._mix(x, i)
            x = x + block.modulated(x, modulation)
        shift, scale = jnp.split(modulations[-1], 2, axis=-1)
        v = self.out(_norm(x, self.deterministic) * (1 + scale) + shift)
        return v.reshape(*v.shape[:-2], self.features)

    def __call__(self, x_t: jax.Array, t: jax.Array, cond: jax.Array) -> jax.Array:
        return self.velocity(x_t, self.modulations(self.conditioning(t, cond)))


def velocity_errors(head: FlowHead, x1: jax.Array, cond: jax.Array, rng: jax.Array) -> jax.Array:
    """(...,) squared velocity error of each item of x1 (..., features) given cond (..., cond_dim), averaged over
    features, at one random time and noise draw per item."""
    t_rng, noise_rng = jax.random.split(rng)
    t = jax.random.uniform(t_rng, x1.shape[:-1])
    x0, x1 = head.noise * jax.random.normal(noise_rng, x1.shape), x1 - head.split(cond)[1]
    x_t = (1 - t[..., None]) * x0 + t[..., None] * x1
    return jnp.square(head(x_t, t, cond).astype(jnp.float32) - (x1 - x0)).mean(axis=-1)


def flow_loss(head: FlowHead, x1: jax.Array, cond: jax.Array, rng: jax.Array,
              mask: jax.Array | None = None) -> jax.Array:
    """Mean squared velocity error. x1 (..., features), cond (..., cond_dim), mask (...,) true = valid frame.

    Each frame's error is averaged over features, then frames are averaged over the valid ones only.
    """
    error = velocity_errors(head, x1, cond, rng)
    if mask is None:
        return error.mean()
    mask = mask.astype(jnp.float32)
    return (error * mask).sum() / jnp.maximum(mask.sum(), 1.0)


def sample(head: FlowHead, cond: jax.Array, rng: jax.Array, *, steps: int = 16,
           temperature: float = 1.0) -> jax.Array:
    """Euler-integrates the flow from x0 = temperature * noise * N(0, I) at t = 0 to t = 1 (plus the prior, with
    one).

    Returns (*cond.shape[:-1], features). `steps` must be static under jit (0: x0 itself plus the prior, where the
    flow would start); temperature 0 is deterministic. The times of the steps are fixed, so their embeddings, the cond
    embedding and every step's modulations are computed once, as (steps, ...) batches, before the loop.
    """
    shape = cond.shape[:-1] + (head.features,)
    cond, prior = head.split(cond)
    x0 = temperature * head.noise * invariant.normal(rng, shape)
    if steps == 0:
        return prior + x0
    dt = 1.0 / steps
    times = head.time_embedding(jnp.arange(steps, dtype=jnp.float32) * dt)  # (steps, hidden)
    times = times.reshape((steps,) + (1,) * (cond.ndim - 1) + times.shape[-1:])
    c = head.per_frame(head.cond_embed(cond.astype(head.dtype)) + times)  # (steps, ..., frames, hidden)
    modulations = head.modulations(c)

    def step(x, modulation):
        return x + dt * head.velocity(x, modulation).astype(jnp.float32), None

    return prior + jax.lax.scan(step, x0, modulations)[0]
