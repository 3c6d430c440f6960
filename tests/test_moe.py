"""Mixture of experts: every dispatch path matches the plain-loop reference, router losses, pure use, axes, counts."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from interaction.models import moe

ALLOWED_AXES = {None, "batch", "time", "embed", "mlp", "heads", "kv", "vocab", "expert", "layers"}
E, M, X, K = 16, 32, 4, 2  # embed, mlp, experts, top_k


B, T = 4, 8  # one input shape throughout, so eager ops compile once


def _x(seed=1):
    return jax.random.normal(jax.random.key(seed), (B, T, E))


@pytest.mark.parametrize("shared", [False, True])
def test_ragged_matches_reference(shared):
    layer = moe.MoE(E, M, X, K, shared_expert=shared, rngs=nnx.Rngs(0))
    x = _x()
    y, aux = layer(x)
    assert y.shape == x.shape
    np.testing.assert_allclose(y, moe.moe_reference(layer, x), atol=1e-5, rtol=1e-5)
    assert float(aux["dropped_fraction"]) == 0.0
    np.testing.assert_allclose(aux["expert_load"].sum(), 1.0, atol=1e-6)
    # The grouped-matmul path that accelerators take (on CPU the dense path gives the same result faster).
    flat = x.reshape(-1, E)
    _, weights, experts = layer.route(flat)
    grouped = layer._grouped(flat, weights, experts) + (layer.shared(flat) if shared else 0)
    np.testing.assert_allclose(grouped.reshape(x.shape), y, atol=1e-5, rtol=1e-5)
    # The shared expert really contributes.
    if shared:
        layer.shared.down[...] = jnp.zeros_like(layer.shared.down[...])
        assert not np.allclose(layer(x)[0], y, atol=1e-4)


def test_ragged_on_a_handful_of_tokens_runs_each_assignment_through_its_own_expert():
    """Two tokens x top-2 <= 4 experts: the switched path (a streaming step's), against the reference."""
    layer = moe.MoE(E, M, X, K, shared_expert=True, rngs=nnx.Rngs(0))
    few = _x()[0, :2]
    y = jax.jit(lambda x: layer(x)[0])(few)
    np.testing.assert_allclose(y, moe.moe_reference(layer, few), atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(y, layer(_x())[0][0, :2], atol=1e-5, rtol=1e-5)  # as among many tokens


@pytest.mark.parametrize("deterministic", [False, True])
def test_dense_dispatch_matches_the_reference_and_is_batch_invariant(deterministic):
    layer = moe.MoE(E, M, X, K, shared_expert=True, impl="dense", deterministic=deterministic, rngs=nnx.Rngs(0))
    x = _x()
    y, aux = layer(x)
    np.testing.assert_allclose(y, moe.moe_reference(layer, x), atol=1e-5, rtol=1e-5)
    assert float(aux["dropped_fraction"]) == 0.0
    if deterministic:  # a token's output, bit for bit, whatever else is in the batch
        flat, ys = x.reshape(-1, E), y.reshape(-1, E)
        for rows in (slice(0, 1), slice(3, 5), slice(1, 12)):
            np.testing.assert_array_equal(layer(flat[rows])[0], ys[rows])


def test_capacity_without_drops_equals_ragged():
    ragged = moe.MoE(E, M, X, K, shared_expert=True, rngs=nnx.Rngs(0))
    roomy = moe.MoE(E, M, X, K, shared_expert=True, dispatch="capacity", capacity_factor=float(X), rngs=nnx.Rngs(0))
    x = _x()
    y, aux = roomy(x)
    assert float(aux["dropped_fraction"]) == 0.0
    np.testing.assert_allclose(y, ragged(x)[0], atol=1e-5, rtol=1e-5)


def test_capacity_drops_exactly_the_overflowing_assignments():
    tight = moe.MoE(E, M, X, K, dispatch="capacity", capacity_factor=0.5, rngs=nnx.Rngs(0))
    full = moe.MoE(E, M, X, K, rngs=nnx.Rngs(0))
    x = _x()
    tokens = B * T
    capacity = tight.capacity(tokens)
    assert capacity == math.ceil(0.5 * tokens * K / X) == 8
    y, aux = tight(x)
    dropped = float(aux["dropped_fraction"])
    assert 0.0 < dropped < 1.0
    # Kept slots are at most capacity per expert, so at least 1 - X*C/(T*K) of the assignments are dropped.
    assert dropped >= 1 - X * capacity / (tokens * K) - 1e-6
    np.testing.assert_allclose(y, moe.moe_reference(tight, x, capacity=capacity), atol=1e-5, rtol=1e-5)
    # Tokens whose assignments all survived are untouched; the others changed.
    y_full = np.asarray(full(x)[0]).reshape(tokens, E)
    y = np.asarray(y).reshape(tokens, E)
    changed = ~np.isclose(y, y_full, atol=1e-5).all(-1)
    _, _, experts = tight.route(x.reshape(tokens, E))
    experts = np.asarray(experts)
    used, hit = [0] * X, np.zeros(tokens, bool)
    for r in range(K):  # the documented priority: first choices of all tokens, then second choices
        for t in range(tokens):
            used[experts[t, r]] += 1
            hit[t] |= used[experts[t, r]] > capacity
    assert hit.any() and (changed == hit).all()
    assert np.isclose(1 - dropped, sum(min(u, capacity) for u in used) / (tokens * K))


def test_balance_and_z_loss():
    x = jnp.abs(_x()) + 0.1  # positive features, so one router column can win everywhere
    layer = moe.MoE(E, M, X, K, rngs=nnx.Rngs(0))
    layer.router[...] = jnp.zeros((E, X))
    _, uniform = layer(x)
    np.testing.assert_allclose(uniform["balance_loss"], 1.0, atol=1e-6)
    np.testing.assert_allclose(uniform["router_z_loss"], math.log(X) ** 2, rtol=1e-6)  # logsumexp of zeros = log X
    layer.router[...] = jnp.zeros((E, X)).at[:, 0].set(10.0)
    _, collapsed = layer(x)
    np.testing.assert_allclose(collapsed["balance_loss"], X / K, rtol=1e-3)
    assert float(collapsed["expert_load"][0]) == pytest.approx(1 / K)
    assert float(collapsed["router_z_loss"]) > 100 * float(uniform["router_z_loss"])
    # A random router sits near the minimum, well below collapse.
    _, random = moe.MoE(E, M, X, K, rngs=nnx.Rngs(3))(_x(2))
    assert 1.0 <= float(random["balance_loss"]) < 1.5


@pytest.mark.parametrize("dispatch, impl", [*(("dropless", impl) for impl in moe.IMPLS), ("capacity", "auto")])
def test_split_merge_jit_equals_eager_with_finite_grads(dispatch, impl):
    layer = moe.MoE(E, M, X, K, shared_expert=True, dispatch=dispatch, impl=impl, rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(layer)
    x = _x()

    def loss(state, x):
        y, aux = nnx.merge(graphdef, state)(x)
        return y.sum() + aux["balance_loss"], (y, aux)

    @jax.jit
    def apply_and_grad(state, x):  # one compile for both the forward check and the gradients
        (_, (y, aux)), grads = jax.value_and_grad(loss, has_aux=True)(state, x)
        return y, aux, grads

    y, aux, grads = apply_and_grad(state, x)
    y_eager, aux_eager = layer(x)
    np.testing.assert_allclose(y, y_eager, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(aux["balance_loss"], aux_eager["balance_loss"], rtol=1e-6)
    leaves = jax.tree.leaves(grads)
    assert len(leaves) == 7 and all(np.isfinite(g).all() for g in leaves)
    assert all(np.abs(g).sum() > 0 for g in leaves)  # router included, through the weights and P_e


def test_every_param_has_logical_axes():
    layer = moe.MoE(E, M, X, K, shared_expert=True, rngs=nnx.Rngs(0))
    params = nnx.state(layer, nnx.Param)
    specs = jax.tree.leaves(nnx.get_partition_spec(params), is_leaf=lambda s: isinstance(s, jax.sharding.PartitionSpec))
    values = jax.tree.leaves(params)
    assert len(specs) == len(values) == 7
    for spec, value in zip(specs, values):
        assert len(spec) == value.ndim and set(spec) <= ALLOWED_AXES, (spec, value.shape)
    assert tuple(layer.gate.get_metadata()["out_sharding"]) == ("expert", "embed", "mlp")
    assert tuple(layer.router.get_metadata()["out_sharding"]) == ("embed", "expert")


def test_param_count():
    expert = 3 * E * M  # gate, up, down of one SwiGLU
    router = E * X
    assert moe.param_count(moe.MoE(E, M, X, K, rngs=nnx.Rngs(0))) == (router + X * expert, router + K * expert)
    assert moe.param_count(moe.MoE(E, M, X, K, shared_expert=True, rngs=nnx.Rngs(0))) == (7744, 4672)


@pytest.mark.parametrize("kwargs, message", [
    (dict(top_k=5), "top_k=5 must not exceed num_experts=4"),
    (dict(top_k=0), "top_k=0 must be at least 1"),
    (dict(dispatch="sparse"), "dispatch='sparse' must be one of"),
    (dict(impl="ragged"), "impl='ragged' must be one of"),
    (dict(capacity_factor=0.0), "capacity_factor=0.0 must be positive"),
    (dict(mlp=0), "mlp=0 must be at least 1"),
])
def test_bad_arguments_raise(kwargs, message):
    args = dict(embed=E, mlp=M, num_experts=X, top_k=K) | kwargs
    with pytest.raises(ValueError, match=message):
        moe.MoE(**args, rngs=nnx.Rngs(0))
