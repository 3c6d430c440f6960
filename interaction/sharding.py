"""Meshes and the mapping from layers' logical axis names to mesh axes.

Layers name logical axes only (batch, time, embed, mlp, heads, kv, vocab, expert, layers); a rule set
(a dict in the config) says which mesh axes (data, fsdp, expert, tensor) each one is split over.
Activations have names of their own (activation_batch, activation_time, activation_embed,
activation_vocab, activation_expert, as in MaxText), so that how a parameter's `embed` axis is split
(over fsdp, for instance) says nothing about how the residual stream is. A mesh
axis is used at most once per array. Where a dimension is not divisible by all of its rule's mesh axes, the
longest leading run of them that divides it is used (and none at all if none does).
"""
from __future__ import annotations

import contextlib
import contextvars
import math

import jax
import numpy as np
from flax import nnx
from jax.sharding import AxisType, NamedSharding, PartitionSpec

MESH_AXES = ("data", "fsdp", "expert", "tensor")

DEFAULT_RULES = {
    "batch": ("data", "fsdp", "expert"),
    "time": None,
    "embed": "fsdp",
    "mlp": "tensor",
    "heads": "tensor",
    "kv": None,
    "vocab": "tensor",
    "expert": "expert",
    "layers": None,
    "activation_batch": ("data", "fsdp", "expert"),
    "activation_time": None,
    "activation_embed": None,
    "activation_vocab": "tensor",
    "activation_expert": "expert",
}


def make_mesh(shape: dict[str, int], devices=None) -> jax.sharding.Mesh:
    """A mesh with axes (data, fsdp, expert, tensor); `shape` gives the sizes (missing axes are 1)."""
    unknown = set(shape) - set(MESH_AXES)
    if unknown:
        raise ValueError(f"unknown mesh axes {sorted(unknown)}; the axes are {MESH_AXES}.")
    sizes = tuple(int(shape.get(a, 1)) for a in MESH_AXES)
    devices = list(jax.devices() if devices is None else devices)
    if math.prod(sizes) != len(devices):
        raise ValueError(f"mesh {dict(zip(MESH_AXES, sizes))} needs {math.prod(sizes)} devices, {len(devices)} given.")
    return jax.sharding.Mesh(np.asarray(devices).reshape(sizes), MESH_AXES,
                             axis_types=(AxisType.Auto,) * len(MESH_AXES))


def _as_tuple(axes) -> tuple[str, ...]:
    if axes is None:
        return ()
    return (axes,) if isinstance(axes, str) else tuple(axes)


def mesh_spec(logical: PartitionSpec | tuple, shape: tuple[int, ...], mesh, rules: dict) -> PartitionSpec:
    """Mesh PartitionSpec for an array of `shape` whose axes have logical names `logical`."""
    used: set[str] = set()
    out = []
    for name, dim in zip(tuple(logical) + (None,) * (len(shape) - len(logical)), shape):
        axes = tuple(a for a in _as_tuple(rules.get(name) if name else None) if a not in used and mesh.shape[a] > 1)
        while axes and dim % math.prod(mesh.shape[a] for a in axes):
            axes = axes[:-1]  # the longest leading run of the rule's axes that divides the dimension
        used.update(axes)
        out.append(None if not axes else axes[0] if len(axes) == 1 else axes)
    return PartitionSpec(*out)


def param_shardings(params, mesh, rules: dict = DEFAULT_RULES):
    """NamedShardings for an NNX state of parameters, from their logical axis names."""
    specs = nnx.get_partition_spec(params)
    return jax.tree.map(
        lambda spec, value: NamedSharding(mesh, mesh_spec(spec, value.shape, mesh, rules)),
        specs, params, is_leaf=lambda x: isinstance(x, PartitionSpec),
    )


def batch_shardings(batch, mesh, rules: dict = DEFAULT_RULES):
    """NamedShardings for a tree of (batch, ...) arrays: the leading axis follows the `batch` rule."""
    return jax.tree.map(lambda x: NamedSharding(mesh, mesh_spec(("batch",), x.shape, mesh, rules)), batch)


_ACTIVE: contextvars.ContextVar = contextvars.ContextVar("interaction_sharding_rules", default=None)


@contextlib.contextmanager
def use_rules(mesh, rules: dict = DEFAULT_RULES):
    """Within this context, `constrain` lays activations out on `mesh` by `rules` (while tracing)."""
    token = _ACTIVE.set((mesh, rules))
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def constrain(x: jax.Array, names: tuple) -> jax.Array:
    """Names the logical axes of an activation; a sharding constraint inside `use_rules`, else a no-op."""
    active = _ACTIVE.get()
    if active is None:
        return x
    mesh, rules = active
    return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, mesh_spec(names, x.shape, mesh, rules)))


def global_batch(local: dict, mesh, rules: dict = DEFAULT_RULES) -> dict:
    """This process's rows of a batch (numpy, leading axis local) -> global arrays split by the `batch` rule."""
    def one(x):
        x = np.asarray(x)
        shape = (x.shape[0] * jax.process_count(),) + x.shape[1:]
        return jax.make_array_from_process_local_data(NamedSharding(mesh, mesh_spec(("batch",), shape, mesh, rules)), x,
                                                      shape)
    return jax.tree.map(one, local)
