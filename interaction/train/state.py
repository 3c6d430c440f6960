"""The train state, one explicit pytree, created directly in its shardings on the mesh.

Everything a run needs to continue bitwise is here or in the data iterator's state: the step, the
parameters, the optimizer state and the base RNG (raw key data, so that a checkpoint holds plain
arrays). The RNG of step n is `fold_in(rng, n)`, so no key is threaded through the loop.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx, struct
from jax.sharding import NamedSharding, PartitionSpec

from interaction import sharding
from interaction.models.model import InteractionModel, ModelSpec


@struct.dataclass
class TrainState:
    step: jax.Array  # () int32: steps taken
    params: nnx.State
    opt_state: optax.OptState
    rng: jax.Array  # (2,) uint32 key data

    def step_key(self) -> jax.Array:
        return jax.random.fold_in(jax.random.wrap_key_data(self.rng), self.step)


def _init(spec: ModelSpec, tx: optax.GradientTransformation, seed: int) -> tuple[nnx.GraphDef, TrainState]:
    graphdef, params = nnx.split(InteractionModel(spec, rngs=nnx.Rngs(seed)))
    rng = jax.random.key_data(jax.random.fold_in(jax.random.key(seed), 1))
    return graphdef, TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params), rng=rng)


def state_shardings(abstract: TrainState, tx: optax.GradientTransformation, mesh, rules) -> TrainState:
    """Parameters by their logical axes; optimizer moments like their parameters; the rest replicated."""
    replicated = NamedSharding(mesh, PartitionSpec())
    params = sharding.param_shardings(abstract.params, mesh, rules)
    opt_state = optax.tree_map_params(tx, lambda _, s: s, abstract.opt_state, params,
                                      transform_non_params=lambda _: replicated)
    return TrainState(step=replicated, params=params, opt_state=opt_state, rng=replicated)


def abstract(spec: ModelSpec, tx: optax.GradientTransformation, mesh, rules, seed: int = 0):
    """-> (graphdef, state of ShapeDtypeStructs carrying their shardings, shardings); nothing allocated."""
    graphdef, shapes = nnx.eval_shape(lambda: _init(spec, tx, seed))
    shardings = state_shardings(shapes, tx, mesh, rules)
    state = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), shapes, shardings)
    return graphdef, state, shardings


def create(spec: ModelSpec, tx: optax.GradientTransformation, mesh, rules, seed: int):
    """-> (graphdef, state, shardings): a fresh state, each array born on its devices (no host copy)."""
    graphdef, _, shardings = abstract(spec, tx, mesh, rules, seed)
    state = jax.jit(lambda: _init(spec, tx, seed)[1], out_shardings=shardings)()
    return graphdef, state, shardings


def abstract_like(state: TrainState) -> TrainState:
    """Shape, dtype and sharding of every array: the target a checkpoint is restored into."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state)
