"""Top-k mixture of SwiGLU experts with two dispatches and the usual router losses.

`dispatch="dropless"` never drops an assignment. Its `impl` says how it computes:
- "grouped": assignments sorted by expert, each expert's contiguous group multiplied by its own weights
  with `jax.lax.ragged_dot`;
- "switched": each (token, choice) through its own expert, picked by `jax.lax.switch` (reads only the
  chosen experts' weights: for a handful of tokens, a streaming step's one token per session);
- "dense": every expert on every token, weighted by the router (zero for experts not chosen):
  num_experts / top_k times the FLOPs, but a token's result does not depend on the other tokens, which
  the deterministic mode needs;
- "auto" (the default): "switched" for a handful of tokens, else "dense" on CPU (where JAX emulates
  ragged_dot by running every group over every row under a mask) and "grouped" elsewhere.
`dispatch="capacity"` gives every expert a fixed number of slots (static shapes, GShard/Switch style)
and drops assignments that do not fit. The router always runs in float32. `moe_reference` is the
plain-loop spec every path is tested against.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from interaction.models.layers import LECUN, SwiGLU, dense, param, swiglu
from interaction.sharding import constrain

DISPATCHES = ("dropless", "capacity")
IMPLS = ("auto", "grouped", "switched", "dense")  # how the dropless dispatch computes
CAPACITY_GROUPS = ("batch", "row")  # the capacity path's groups: all of a call's tokens, or each batch row's

# Stacked expert weights: fan-in is the embed/mlp axis alone, not multiplied by the expert axis.
_EXPERT_INIT = nnx.initializers.lecun_normal(batch_axis=(0,))


def _swiglu_np(x: np.ndarray, gate: np.ndarray, up: np.ndarray, down: np.ndarray) -> np.ndarray:
    h = x @ gate
    return (h / (1 + np.exp(-h)) * (x @ up)) @ down


class MoE(nnx.Module):
    def __init__(self, embed: int, mlp: int, num_experts: int, top_k: int, *, shared_expert: bool = False,
                 capacity_factor: float = 1.25, capacity_groups: str = "batch", dispatch: str = "dropless",
                 impl: str = "auto",
                 dtype=jnp.float32, rngs: nnx.Rngs, deterministic: bool = False):
        for name, value in (("embed", embed), ("mlp", mlp), ("num_experts", num_experts), ("top_k", top_k)):
            if value < 1:
                raise ValueError(f"{name}={value} must be at least 1.")
        if top_k > num_experts:
            raise ValueError(f"top_k={top_k} must not exceed num_experts={num_experts}.")
        if dispatch not in DISPATCHES:
            raise ValueError(f"dispatch={dispatch!r} must be one of {DISPATCHES}.")
        if impl not in IMPLS:
            raise ValueError(f"impl={impl!r} must be one of {IMPLS}.")
        if not capacity_factor > 0:
            raise ValueError(f"capacity_factor={capacity_factor} must be positive.")
        if capacity_groups not in CAPACITY_GROUPS:
            raise ValueError(f"capacity_groups={capacity_groups!r} must be one of {CAPACITY_GROUPS}.")
        self.router = param(rngs, LECUN, ("embed", "expert"), (embed, num_experts))
        self.gate = param(rngs, _EXPERT_INIT, ("expert", "embed", "mlp"), (num_experts, embed, mlp))
        self.up = param(rngs, _EXPERT_INIT, ("expert", "embed", "mlp"), (num_experts, embed, mlp))
        self.down = param(rngs, _EXPERT_INIT, ("expert", "mlp", "embed"), (num_experts, mlp, embed))
        self.shared = SwiGLU(embed, mlp, rngs=rngs, dtype=dtype, deterministic=deterministic) if shared_expert else None
        self.num_experts, self.top_k, self.shared_expert = num_experts, top_k, shared_expert
        self.capacity_factor, self.capacity_groups = capacity_factor, capacity_groups
        self.dispatch, self.impl, self.dtype = dispatch, impl, dtype
        self.deterministic = deterministic

    def capacity(self, tokens: int) -> int:
        """Slots per expert for a group of `tokens`: ceil(capacity_factor * tokens * top_k / num_experts)."""
        return math.ceil(self.capacity_factor * tokens * self.top_k / self.num_experts)

    def route(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """x (tokens, embed) -> float32 logits (tokens, expert), top-k weights summing to 1 and their experts."""
        logits = dense(x.astype(jnp.float32), self.router[...].astype(jnp.float32), self.deterministic)
        weights, experts = jax.lax.top_k(jax.nn.softmax(logits, axis=-1), self.top_k)
        return logits, weights / weights.sum(-1, keepdims=True), experts

    def _dropless(self, x: jax.Array, weights: jax.Array, experts: jax.Array) -> jax.Array:
        impl = self.impl
        if impl == "auto":
            tokens, k = experts.shape
            impl = ("switched" if tokens * k <= self.num_experts else
                    "dense" if jax.default_backend() == "cpu" else "grouped")
        return {"grouped": self._grouped, "switched": self._switched, "dense": self._dense}[impl](x, weights, experts)

    def _grouped(self, x: jax.Array, weights: jax.Array, experts: jax.Array) -> jax.Array:
        """Assignments sorted by expert, each expert's group through `ragged_dot`."""
        tokens, k = experts.shape
        flat = experts.reshape(-1)
        order = jnp.argsort(flat, stable=True)  # assignment slots grouped by expert
        group_sizes = jnp.bincount(flat, length=self.num_experts).astype(jnp.int32)
        xs = x[order // k]
        gate, up, down = (w[...].astype(self.dtype) for w in (self.gate, self.up, self.down))
        h = jax.nn.silu(jax.lax.ragged_dot(xs, gate, group_sizes)) * jax.lax.ragged_dot(xs, up, group_sizes)
        out = jax.lax.ragged_dot(h, down, group_sizes)[jnp.argsort(order)].reshape(tokens, k, -1)
        return jnp.einsum("tkd,tk->td", out, weights.astype(self.dtype))

    def _switched(self, x: jax.Array, weights: jax.Array, experts: jax.Array) -> jax.Array:
        """Each (token, choice) through its chosen expert alone: reads top_k experts' weights per token."""
        gate, up, down = (w[...].astype(self.dtype) for w in (self.gate, self.up, self.down))
        branches = [functools.partial(lambda e, row: swiglu(row, gate[e], up[e], down[e]), e)
                    for e in range(self.num_experts)]
        rows = [sum(weights[t, j].astype(self.dtype) * jax.lax.switch(experts[t, j], branches, x[t:t + 1])
                    for j in range(experts.shape[1])) for t in range(experts.shape[0])]
        return jnp.concatenate(rows)

    def _dense(self, x: jax.Array, weights: jax.Array, experts: jax.Array) -> jax.Array:
        """Every expert on every token, added with the token's weight (0 when not chosen).

        As products batched over the stacked experts: taking one expert's weights out of the stack is a
        copy on XLA:CPU, which cost more than the products themselves. The deterministic mode runs one
        batch-invariant product per expert instead and adds the experts in order."""
        mix = jnp.einsum("tk,tke->te", weights, jax.nn.one_hot(experts, self.num_experts, dtype=weights.dtype))
        if not self.deterministic:
            gate, up, down = (w[...].astype(self.dtype) for w in (self.gate, self.up, self.down))
            xs = jnp.broadcast_to(x, (self.num_experts,) + x.shape)
            h = jax.nn.silu(jnp.einsum("etd,edm->etm", xs, gate)) * jnp.einsum("etd,edm->etm", xs, up)
            return jnp.einsum("etd,te->td", jnp.einsum("etm,emd->etd", h, down), mix.astype(self.dtype))
        y = jnp.zeros_like(x)
        for e in range(self.num_experts):
            out = swiglu(x, *(w[e].astype(self.dtype) for w in (self.gate, self.up, self.down)), self.deterministic)
            y = y + mix[:, e:e + 1].astype(self.dtype) * out
        return y

    def _capacity(self, x: jax.Array, weights: jax.Array, experts: jax.Array,
                  group: int) -> tuple[jax.Array, jax.Array]:
        """Tokens are dispatched in consecutive groups of `group`, each with `capacity(group)` slots per expert
        (GShard's groups: with a batch row per group, a group's dispatch stays on the devices that hold its
        row, and the dispatch tensors grow linearly with the batch). Within a group, priority is by top-k
        rank first, then token order: every token's first choice is placed before any second choice, so
        overflow drops the lower-ranked assignments of later tokens first. The experts' inputs are laid out
        expert-major, split over the `expert` mesh axis, so tokens travel to their experts."""
        tokens, k = experts.shape
        g, capacity = tokens // group, self.capacity(group)
        chosen = jax.nn.one_hot(experts, self.num_experts, dtype=jnp.int32).reshape(g, group, k, self.num_experts)
        rank_major = chosen.transpose(0, 2, 1, 3).reshape(g, k * group, self.num_experts)
        position = ((jnp.cumsum(rank_major, axis=1) - 1) * rank_major).sum(-1).reshape(g, k, group).transpose(0, 2, 1)
        kept = position < capacity  # (g, group, k)
        slot = jax.nn.one_hot(jnp.where(kept, position, capacity), capacity, dtype=self.dtype)  # dropped -> zero row
        dispatch = jnp.einsum("gtke,gtkc->gtec", chosen.astype(self.dtype), slot)
        combine = jnp.einsum("gtke,gtkc,gtk->gtec", chosen.astype(self.dtype), slot,
                             weights.reshape(g, group, k).astype(self.dtype))
        gate, up, down = (w[...].astype(self.dtype) for w in (self.gate, self.up, self.down))
        expert_in = jnp.einsum("gtec,gtd->egcd", dispatch, x.reshape(g, group, -1))
        expert_in = constrain(expert_in, ("activation_expert", "activation_batch", None, "activation_embed"))
        h = jax.nn.silu(jnp.einsum("egcd,edm->egcm", expert_in, gate)) * jnp.einsum("egcd,edm->egcm", expert_in, up)
        expert_out = constrain(jnp.einsum("egcm,emd->egcd", h, down), ("activation_expert", "activation_batch", None,
                                                                                   "activation_embed"))
        y = jnp.einsum("gtec,egcd->gtd", combine, expert_out)
        return y.reshape(tokens, -1), jnp.mean(~kept, dtype=jnp.float32)

    def __call__(self, x: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        """x (..., embed) -> (y of the same shape, aux losses and routing statistics)."""
        lead = x.shape[:-1]
        x = x.reshape(-1, x.shape[-1]).astype(self.dtype)
        logits, weights, experts = self.route(x)
        if self.dispatch == "dropless":
            y, dropped = self._dropless(x, weights, experts), jnp.zeros((), jnp.float32)
        else:
            group = math.prod(lead[1:]) if self.capacity_groups == "row" else x.shape[0]
            y, dropped = self._capacity(x, weights, experts, group)
        if self.shared_expert:
            y = y + self.shared(x)
        load = jax.nn.one_hot(experts, self.num_experts, dtype=jnp.float32).mean((0, 1))  # f_e, sums to 1
        mean_prob = jax.nn.softmax(logits, axis=-1).mean(0)  # P_e
        aux = {
            "balance_loss": self.num_experts * jnp.sum(load * mean_prob),
            "router_z_loss": jnp.mean(jax.nn.logsumexp(logits, axis=-1) ** 2),
            "expert_load": load,
            "dropped_fraction": dropped,
        }
        return y.reshape(*lead, -1), aux


def moe_reference(module: MoE, x: jax.Array, capacity: int | None = None, group: int | None = None) -> jax.Array:
    """Token-by-token loop over each token's top-k experts: the readable spec of `MoE.__call__`'s output.

    With `capacity`, assignments are admitted in the capacity path's priority (rank, then token) and an
    expert that already holds `capacity` assignments drops the rest; with `group` too, each run of
    `group` consecutive tokens has its own `capacity` slots per expert.
    """
    xs = np.asarray(x, np.float32).reshape(-1, x.shape[-1])
    router, gate, up, down = (np.asarray(w[...], np.float32)
                              for w in (module.router, module.gate, module.up, module.down))
    routes = []  # per token: [(expert, weight), ...] in rank order
    for token in xs:
        logits = token @ router
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        top = np.argsort(-probs, kind="stable")[:module.top_k]
        routes.append([(int(e), probs[e] / probs[top].sum()) for e in top])
    kept = {(t, r) for t in range(len(xs)) for r in range(module.top_k)}
    if capacity is not None:
        group = group or len(xs)
        for start in range(0, len(xs), group):
            used = [0] * module.num_experts
            for r in range(module.top_k):
                for t in range(start, start + group):
                    expert = routes[t][r][0]
                    if used[expert] < capacity:
                        used[expert] += 1
                    else:
                        kept.discard((t, r))
    out = np.zeros_like(xs)
    for t, token in enumerate(xs):
        for r, (e, weight) in enumerate(routes[t]):
            if (t, r) in kept:
                out[t] += weight * _swiglu_np(token, gate[e], up[e], down[e])
        if module.shared_expert:
            out[t] += _swiglu_np(token, *(np.asarray(w[...], np.float32)
                                          for w in (module.shared.gate, module.shared.up, module.shared.down)))
    return jnp.asarray(out).reshape(x.shape)


def param_count(module: MoE) -> tuple[int, int]:
    """(total, active per token): a token uses the router, the shared expert and only top_k routed experts.
    Works on abstract modules (`nnx.eval_shape`) too: only shapes are read."""
    size = lambda a: math.prod(a.shape)  # noqa: E731
    total = sum(size(p) for p in jax.tree.leaves(nnx.state(module, nnx.Param)))
    per_expert = sum(size(w) for w in (module.gate, module.up, module.down)) // module.num_experts
    return total, total - (module.num_experts - module.top_k) * per_expert
