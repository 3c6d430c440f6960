"""AdamW with linear warm-up, cosine decay and global-norm clipping, from a config's `optim` section."""
from __future__ import annotations

import jax
import optax


def schedule(c, total_steps: int) -> optax.Schedule:
    """Learning rate: linear warm-up from 0 over `c.warmup_steps`, then cosine decay to `c.final_lr_fraction`."""
    if not 0 <= c.warmup_steps < total_steps:
        raise ValueError(f"optim.warmup_steps={c.warmup_steps} must lie in [0, total_steps={total_steps}).")
    return optax.warmup_cosine_decay_schedule(0.0, c.lr, c.warmup_steps, total_steps,
                                              end_value=c.lr * c.final_lr_fraction)


def make_optimizer(c, total_steps: int) -> optax.GradientTransformation:
    """Clips the global gradient norm, then AdamW; weight decay applies to matrices only (not norms, biases)."""
    if c.lr <= 0 or c.grad_clip <= 0:
        raise ValueError(f"optim.lr={c.lr} and optim.grad_clip={c.grad_clip} must be positive.")
    decay_mask = lambda params: jax.tree.map(lambda p: p.ndim >= 2, params)
    return optax.chain(
        optax.clip_by_global_norm(c.grad_clip),
        optax.adamw(schedule(c, total_steps), b1=c.b1, b2=c.b2, eps=c.eps, weight_decay=c.weight_decay,
                    mask=decay_mask),
    )
