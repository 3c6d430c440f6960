"""Jitted train and eval steps: pure functions of (state, batch), laid out on the mesh by the config's rules.

A step whose loss or gradient norm is not finite leaves the state unchanged (every array selected back
from the input), so a bad batch can never reach a checkpoint; the loop sees `finite == False` in the
metrics and stops the run.
"""
from __future__ import annotations


import jax
import jax.numpy as jnp
import optax
from flax import nnx

from interaction import sharding
from interaction.data.layout import MicroTurnLayout
from interaction.models import model as model_lib
from interaction.train import heldout
from interaction.train.state import TrainState


def abstract_batch(layout: MicroTurnLayout, batch_size: int, window_turns: int) -> dict[str, jax.ShapeDtypeStruct]:
    """Shapes and dtypes of a batch the data pipeline yields (`MicroTurnLayout.batch_spec`), for compiling a
    step without data."""
    spec = layout.batch_spec(batch_size, window_turns)
    return {name: jax.ShapeDtypeStruct(shape, dtype) for name, (shape, dtype) in spec.items()}


def train_step(graphdef: nnx.GraphDef, tx: optax.GradientTransformation, lr_schedule: optax.Schedule,
               state: TrainState, batch: dict) -> tuple[TrainState, dict]:
    def loss_fn(params):
        return model_lib.losses(nnx.merge(graphdef, params), batch, state.step_key())

    (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    grad_norm = optax.tree.norm(grads)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)

    def update(state):
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        return TrainState(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                          opt_state=opt_state, rng=state.rng)

    new_state = jax.lax.cond(finite, update, lambda state: state, state)
    metrics.update(loss=loss, grad_norm=grad_norm, lr=lr_schedule(state.step), finite=finite)
    return new_state, metrics


def make_train_step(graphdef, tx, lr_schedule, state_shardings, batch_shardings, mesh, rules):
    """The jitted step: state donated, inputs and outputs in their shardings, activations under `rules`."""

    def step(state, batch):
        with sharding.use_rules(mesh, rules):
            return train_step(graphdef, tx, lr_schedule, state, batch)

    return jax.jit(step, in_shardings=(state_shardings, batch_shardings),
                   out_shardings=(state_shardings, None), donate_argnums=0)


def make_eval_step(graphdef, param_shardings, batch_shardings, mesh, rules, flow_steps: int):
    """Jitted held-out sums of one batch (see `heldout.sums`), summed over batches by the caller."""

    def step(params, batch, rng):
        with sharding.use_rules(mesh, rules):
            return heldout.sums(nnx.merge(graphdef, params), batch, rng, flow_steps=flow_steps)

    return jax.jit(step, in_shardings=(param_shardings, batch_shardings, None))
