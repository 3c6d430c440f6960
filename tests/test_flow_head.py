"""Rectified-flow audio head: zero-init identity, pure jitted training, learning a multimodal toy, masking."""
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from interaction.models import flow_head

ALLOWED_AXES = {None, "batch", "time", "embed", "mlp", "heads", "kv", "vocab", "expert", "layers"}

# Toy conditional distribution: class 0 is four Gaussians at (+-2, +-2) with std 0.3 (mean 0, covariance
# 4.09 I); class 1 is one Gaussian at (0, 3) with std 0.5.
MODES = np.array([[2.0, 2.0], [2.0, -2.0], [-2.0, 2.0], [-2.0, -2.0]], np.float32)
TRUE_MEAN = {0: np.zeros(2), 1: np.array([0.0, 3.0])}
TRUE_COV = {0: (4.0 + 0.3 ** 2) * np.eye(2), 1: 0.5 ** 2 * np.eye(2)}


FEATURES, COND_DIM = 4, 3  # the unit tests share one small head shape, so eager op compilations are reused


def _small_head(seed, *, perturb=False):
    """A FlowHead(FEATURES, COND_DIM, 16, 2); perturbed so its velocity is not identically zero."""
    head = flow_head.FlowHead(FEATURES, COND_DIM, 16, 2, rngs=nnx.Rngs(seed))
    if perturb:
        _, state = nnx.split(head)
        nnx.update(head, _perturb(state, jax.random.key(seed)))
    return head


@jax.jit
def _perturb(state, rng):
    leaves, tree = jax.tree.flatten(state)
    noise = [0.1 * jax.random.normal(k, p.shape) for k, p in zip(jax.random.split(rng, len(leaves)), leaves)]
    return jax.tree.unflatten(tree, [p + n for p, n in zip(leaves, noise)])


def _toy_batch(rng, n):
    class_rng, mode_rng, noise_rng = jax.random.split(rng, 3)
    label = jax.random.bernoulli(class_rng, 0.5, (n,))
    mode = jnp.asarray(MODES)[jax.random.randint(mode_rng, (n,), 0, 4)]
    z = jax.random.normal(noise_rng, (n, 2))
    x1 = jnp.where(label[:, None], jnp.array([0.0, 3.0]) + 0.5 * z, mode + 0.3 * z)
    return x1, jax.nn.one_hot(label.astype(jnp.int32), 2)


def _train_step(graphdef, optimizer):
    """The pure step(state, opt_state, batch, rng) -> (state, opt_state, loss)."""

    def loss_fn(state, batch, rng):
        return flow_head.flow_loss(nnx.merge(graphdef, state), *batch, rng)

    def step(state, opt_state, batch, rng):
        loss, grads = jax.value_and_grad(loss_fn)(state, batch, rng)
        updates, opt_state = optimizer.update(grads, opt_state, state)
        return optax.apply_updates(state, updates), opt_state, loss

    return step


def _trainer(graphdef, optimizer, batch, steps):
    """The jitted train(state, opt_state, rng) -> (state, losses): `steps` steps, each on batch(rng)."""
    step = _train_step(graphdef, optimizer)

    @jax.jit
    def train(state, opt_state, rng):
        def body(carry, key):
            data_rng, loss_rng = jax.random.split(key)
            state, opt_state, loss = step(*carry, batch(data_rng), loss_rng)
            return (state, opt_state), loss

        (state, _), losses = jax.lax.scan(body, (state, opt_state), jax.random.split(rng, steps))
        return state, losses

    return train


def _sampler(graphdef, steps):
    return jax.jit(lambda state, cond, rng, temperature=1.0: flow_head.sample(
        nnx.merge(graphdef, state), cond, rng, steps=steps, temperature=temperature))


def test_initial_head_is_identity_blocks_and_zero_velocity():
    head = _small_head(0)
    rng = np.random.default_rng(0)
    x_t = jnp.asarray(rng.normal(size=(4, 6, FEATURES)) * 10, jnp.float32)
    t = jnp.asarray(rng.uniform(size=(4, 6)), jnp.float32)
    cond = jnp.asarray(rng.normal(size=(4, 6, COND_DIM)), jnp.float32)
    np.testing.assert_array_equal(head(x_t, t, cond), np.zeros((4, 6, FEATURES), np.float32))
    c = head.conditioning(t, cond)  # (..., frames, hidden): one frame here
    x = head.inp(x_t)[..., None, :]
    assert np.abs(np.asarray(x)).max() > 0
    for block in head.blocks:
        np.testing.assert_array_equal(block.residual(x, c), np.zeros_like(x))
        np.testing.assert_array_equal(block(x, c), x)
    # Zero velocity everywhere: sampling returns its starting noise unchanged.
    noise_rng = jax.random.key(3)
    np.testing.assert_array_equal(flow_head.sample(head, cond, noise_rng, steps=4),
                                  jax.random.normal(noise_rng, (4, 6, FEATURES)))


def test_a_patch_of_frames_is_drawn_jointly():
    """With frames > 1 the head maps a flattened patch to its velocity: zero at initialisation, then, perturbed,
    each frame's velocity depends on the other frames (the frame mixing) and on which frame it is (the
    frame embedding); with one frame it is the per-frame head."""
    head = flow_head.FlowHead(FEATURES, COND_DIM, 16, 2, rngs=nnx.Rngs(0), frames=3)
    rng = np.random.default_rng(0)
    x_t = jnp.asarray(rng.normal(size=(5, 3 * FEATURES)), jnp.float32)
    t, cond = jnp.asarray(rng.uniform(size=5), jnp.float32), jnp.asarray(rng.normal(size=(5, COND_DIM)), jnp.float32)
    assert head.features == 3 * FEATURES
    np.testing.assert_array_equal(head(x_t, t, cond), np.zeros((5, 3 * FEATURES), np.float32))
    nnx.update(head, _perturb(nnx.split(head)[1], jax.random.key(1)))
    v = np.asarray(head(x_t, t, cond)).reshape(5, 3, FEATURES)
    moved = np.asarray(head(x_t.at[:, :FEATURES].add(1.0), t, cond)).reshape(5, 3, FEATURES)
    assert not np.allclose(moved[:, 1:], v[:, 1:], atol=1e-4)  # frame 0 changed; frames 1 and 2 heard it
    same = jnp.tile(x_t[:, :FEATURES], (1, 3))  # every frame alike: the velocities still differ by frame
    w = np.asarray(head(same, t, cond)).reshape(5, 3, FEATURES)
    assert not np.allclose(w[:, 0], w[:, 1], atol=1e-4)
    samples = flow_head.sample(head, cond, jax.random.key(2), steps=4)
    assert samples.shape == (5, 3 * FEATURES) and np.isfinite(np.asarray(samples)).all()


def test_axes_are_logical_and_never_repeated():
    params = nnx.state(_small_head(0), nnx.Param)
    specs = jax.tree.leaves(nnx.get_partition_spec(params), is_leaf=lambda x: isinstance(x, jax.sharding.PartitionSpec))
    values = jax.tree.leaves(params)
    assert len(specs) == len(values) > 0
    for spec, value in zip(specs, values):
        named = [a for a in spec if a is not None]
        assert len(spec) == value.ndim and set(spec) <= ALLOWED_AXES and len(named) == len(set(named)), spec


def test_pure_jitted_train_step_and_batched_sampling():
    graphdef, state = nnx.split(_small_head(1))
    optimizer = optax.adam(1e-3)
    opt_state = optimizer.init(state)
    step = jax.jit(_train_step(graphdef, optimizer))
    rng = np.random.default_rng(1)
    batch = (jnp.asarray(rng.normal(size=(3, 4, FEATURES)), jnp.float32),
             jnp.asarray(rng.normal(size=(3, 4, COND_DIM)), jnp.float32))
    new_state, opt_state, loss = step(state, opt_state, batch, jax.random.key(0))
    assert loss.shape == () and np.isfinite(loss)
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
    assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(new_state), jax.tree.leaves(state)))
    new_state, opt_state, _ = step(new_state, opt_state, batch, jax.random.key(1))  # reuses the compiled step

    out = _sampler(graphdef, 8)(new_state, batch[1], jax.random.key(2))
    assert out.shape == (3, 4, FEATURES) and np.isfinite(out).all()
    assert _sampler(graphdef, 8)(new_state, batch[1][0, 0], jax.random.key(2)).shape == (FEATURES,)


def _scores(samples, label):
    """The learning test's figures for one class's samples (n, 2)."""
    mean_err = np.abs(samples.mean(axis=0) - TRUE_MEAN[label]).max()
    cov = np.cov(samples.T)
    cov_rel_err = np.linalg.norm(cov - TRUE_COV[label]) / np.linalg.norm(TRUE_COV[label])
    dist = np.linalg.norm(samples[:, None] - MODES[None], axis=-1)
    mode_fractions = np.bincount(dist.argmin(axis=1), minlength=4) / len(samples)
    near_a_mode = (dist.min(axis=1) < 1.0).mean()  # 1.0 = 3.3 std of a class-0 mode
    return dict(mean=samples.mean(axis=0), cov=cov, mean_err=mean_err, cov_rel_err=cov_rel_err,
                mode_fractions=mode_fractions, near_a_mode=near_a_mode)


def _acceptable(scores, label):
    """Mean within 0.2 per coordinate, covariance within 20% (relative Frobenius); for class 0 also no mode
    collapse (every mode gets >= 15% by nearest-mode assignment) and >= 90% of samples within 1.0 of a mode."""
    ok = scores["mean_err"] < 0.2 and scores["cov_rel_err"] < 0.2
    if label == 0:
        ok = ok and scores["mode_fractions"].min() >= 0.15 and scores["near_a_mode"] >= 0.9
    return bool(ok)


def test_learns_a_conditional_multimodal_distribution():
    """Measured (2-core CPU, ~12-16 s cold): loss 5.29 at init -> 1.66 averaged over the last 200 steps (the
    flow-matching floor of this toy is far above 0: x_t does not determine x1 - x0). Class 0: mean
    (-0.05, 0.03), covariance [[3.92, 0.01], [0.01, 4.01]] (error 0.03), nearest-mode fractions
    (0.245, 0.243, 0.264, 0.249), 97% within 1.0 of a mode. Class 1: mean (-0.02, 2.95), covariance
    [[0.237, 0.012], [0.012, 0.234]] (error 0.07).
    The untrained head (zero velocity: samples are N(0, I)) scores: class 0 covariance error 0.75 and 6.5%
    near a mode, though its nearest-mode fractions are ~25% each, so coverage alone could not tell; class 1
    mean off by 3.04, covariance error 2.98. It fails both classes (asserted below), as would a head
    collapsed onto one mode (coverage) or onto the mean (covariance, near-a-mode)."""
    start = time.perf_counter()
    steps, batch_size = 1500, 256
    head = flow_head.FlowHead(2, 2, 64, 2, rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(head)
    optimizer = optax.adam(optax.cosine_decay_schedule(3e-3, steps, alpha=0.05))
    train = _trainer(graphdef, optimizer, lambda rng: _toy_batch(rng, batch_size), steps)

    sampler = _sampler(graphdef, 32)
    n = 2000
    conds = {label: jax.nn.one_hot(jnp.full((n,), label), 2) for label in (0, 1)}
    untrained = {label: _scores(np.asarray(sampler(state, conds[label], jax.random.key(label))), label)
                 for label in (0, 1)}
    assert not any(_acceptable(untrained[label], label) for label in (0, 1)), untrained

    trained_state, losses = train(state, optimizer.init(state), jax.random.key(1))
    losses = np.asarray(losses)
    initial, final = losses[0], losses[-200:].mean()
    assert initial / final > 2.5, (initial, final)

    for label in (0, 1):
        samples = np.asarray(sampler(trained_state, conds[label], jax.random.key(10 + label)))
        scores = _scores(samples, label)
        print(f"class {label}: loss {initial:.3f} -> {final:.3f}", scores)
        assert _acceptable(scores, label), scores
    print(f"learning test took {time.perf_counter() - start:.1f} s")


def test_zero_temperature_sampling_is_deterministic():
    graphdef, state = nnx.split(_small_head(2, perturb=True))
    cond = jnp.asarray(np.random.default_rng(3).normal(size=(5, COND_DIM)), jnp.float32)
    sampler = _sampler(graphdef, 8)
    a = sampler(state, cond, jax.random.key(0), 0.0)
    b = sampler(state, cond, jax.random.key(1), 0.0)
    np.testing.assert_array_equal(a, b)
    assert np.abs(np.asarray(a)).max() > 0
    assert not np.allclose(sampler(state, cond, jax.random.key(0), 1.0), sampler(state, cond, jax.random.key(1), 1.0))


def test_mask_excludes_padded_frames():
    head = _small_head(3, perturb=True)
    rng = np.random.default_rng(4)
    x1 = jnp.asarray(rng.normal(size=(2, 6, FEATURES)), jnp.float32)
    cond = jnp.asarray(rng.normal(size=(2, 6, COND_DIM)), jnp.float32)
    mask = jnp.asarray([[1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0]], bool)
    key = jax.random.key(5)
    loss = flow_head.flow_loss(head, x1, cond, key, mask)
    padded_changed = jnp.where(mask[..., None], x1, 100.0)
    np.testing.assert_allclose(flow_head.flow_loss(head, padded_changed, cond, key, mask), loss, rtol=1e-6)
    assert not np.isclose(flow_head.flow_loss(head, padded_changed, cond, key), loss)
    # With every frame valid the mask is the plain mean.
    np.testing.assert_allclose(flow_head.flow_loss(head, x1, cond, key, jnp.ones((2, 6), bool)),
                               flow_head.flow_loss(head, x1, cond, key), rtol=1e-6)


def test_a_flow_from_a_prior_draws_with_the_data_s_spread_around_it():
    """With `prior`, each item's mean comes at the end of its conditioning and the flow draws only what is left:
    here the data are that mean plus noise of variance 0.01, and the means vary as N(0, 4 I) with nothing else in
    the conditioning to tell them. Trained, its draws at temperature 1 spread about the mean as the data do, and at
    temperature 0 sit on it. A velocity network shown the noisy patch rather than its difference from the mean
    cannot tell the mean from the noise it must remove: its draws spread about the mean as wide as the noise."""
    steps, batch_size, spread = 400, 256, 0.1
    head = flow_head.FlowHead(FEATURES, COND_DIM, 32, 2, rngs=nnx.Rngs(0), prior=True)
    graphdef, state = nnx.split(head)
    optimizer = optax.adam(3e-3)

    def batch(rng, n):
        cond_rng, mean_rng, noise_rng = jax.random.split(rng, 3)
        mean = 2.0 * jax.random.normal(mean_rng, (n, FEATURES))
        cond = jnp.concatenate([jax.random.normal(cond_rng, (n, COND_DIM)), mean], axis=-1)
        return mean + spread * jax.random.normal(noise_rng, (n, FEATURES)), cond

    train = _trainer(graphdef, optimizer, lambda rng: batch(rng, batch_size), steps)
    state = train(state, optimizer.init(state), jax.random.key(1))[0]
    x1, cond = batch(jax.random.key(2), 2000)
    mean = np.asarray(cond[:, COND_DIM:])
    sampler = _sampler(graphdef, 8)
    around = {t: float(np.square(np.asarray(sampler(state, cond, jax.random.key(3), t)) - mean).mean())
              for t in (0.0, 1.0)}
    assert around[1.0] < 3 * spread ** 2, around  # the data: spread ** 2 = 0.01; the noise it starts from: 1
    assert around[1.0] > 0.3 * spread ** 2, around  # it draws, not collapses onto the mean
    assert around[0.0] < 0.3 * spread ** 2, around


def test_the_noise_the_flow_starts_from_has_the_spread_it_is_given():
    """`noise` scales where the flow starts, in training and in sampling alike; a spread of 0 is refused."""
    head = flow_head.FlowHead(FEATURES, COND_DIM, 16, 2, rngs=nnx.Rngs(0), noise=0.2)
    cond = jnp.zeros((4000, COND_DIM), jnp.float32)
    start = np.asarray(flow_head.sample(head, cond, jax.random.key(0), steps=0))
    np.testing.assert_allclose(start.std(), 0.2, rtol=0.05)
    # An untrained head has zero velocity, so its squared error is the whole of x1 - x0: here x1 = 0.
    error = flow_head.velocity_errors(head, jnp.zeros((4000, FEATURES)), cond, jax.random.key(1))
    np.testing.assert_allclose(float(error.mean()), 0.2 ** 2, rtol=0.05)
    with pytest.raises(ValueError, match="noise scale must be positive"):
        flow_head.FlowHead(FEATURES, COND_DIM, 16, 2, rngs=nnx.Rngs(0), noise=0.0)
