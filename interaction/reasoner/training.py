"""Training the learned reasoner from scratch on freshly drawn episodes."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from interaction.models.transformer import DecoderSpec
from interaction.reasoner.episodes import SEARCH_SHARE, batch
from interaction.reasoner.learned import ReasonerModel


def loss_fn(model: ReasonerModel, b: dict) -> jax.Array:
    """Next-token cross-entropy on the tokens the model writes (call and answer)."""
    logits = model(b["tokens"][:, :-1])
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, b["tokens"][:, 1:])
    w = b["target"][:, 1:].astype(jnp.float32)
    return jnp.sum(ce * w) / jnp.maximum(w.sum(), 1.0)


def train(spec: DecoderSpec, *, steps: int, batch_size: int, lr: float, seed: int = 0, log=None,
          search_share: float = SEARCH_SHARE, copy: bool = False):
    """Trains from scratch on freshly drawn episodes (a `search_share` of them gazetteer questions), with the
    copying pointer if `copy`; returns (graphdef, params, losses)."""
    graphdef, params = nnx.split(ReasonerModel(spec, copy=copy, rngs=nnx.Rngs(seed)))
    tx = optax.chain(optax.clip_by_global_norm(1.0),
                     optax.adamw(optax.warmup_cosine_decay_schedule(0.0, lr, min(200, steps // 10), steps, lr * 0.1)))
    opt = tx.init(params)

    @jax.jit
    def step(params, opt, b):
        loss, grads = jax.value_and_grad(lambda p: loss_fn(nnx.merge(graphdef, p), b))(params)
        updates, opt = tx.update(grads, opt, params)
        return optax.apply_updates(params, updates), opt, loss

    rng, losses = np.random.default_rng(seed), []
    for i in range(steps):
        params, opt, loss = step(params, opt, batch(rng, batch_size, search_share))
        losses.append(float(loss))
        if log is not None and (i + 1) % 100 == 0:
            log(i + 1, float(np.mean(losses[-100:])))
    return graphdef, params, losses
