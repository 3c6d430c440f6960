"""The scale-out plan: a model's train step and streaming step compiled ahead of time on a mesh of
(fake) devices, per-device memory from the shardings checked against XLA's own analysis, and the
micro-turn latency its FLOPs and bytes imply on named accelerators.

Nothing is allocated: models are built with `nnx.eval_shape` and programs are lowered from shapes,
dtypes and shardings alone, so the published-scale model compiles on CPU devices. A compiled program
on a mesh is one device's program, so its memory analysis is per device.
"""
from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import NamedSharding

from interaction import sharding
from interaction.models import flops, streaming, transformer
from interaction.models import model as model_lib
from interaction.train import state as train_state
from interaction.train import step as train_step


@dataclasses.dataclass(frozen=True)
class Accelerator:
    name: str
    peak_flops: float  # dense bfloat16 FLOP/s
    bandwidth: float  # HBM bytes/s
    memory: float  # HBM bytes


# Vendor figures: dense (not sparse) bf16 peak, HBM bandwidth and capacity per chip.
ACCELERATORS = (
    Accelerator("H100 SXM", 989e12, 3.35e12, 80e9),
    Accelerator("H200", 989e12, 4.8e12, 141e9),
    Accelerator("TPU v5p", 459e12, 2.765e12, 95e9),
)


def per_device_bytes(tree) -> int:
    """Bytes one device holds of a tree of arrays or ShapeDtypeStructs that carry NamedShardings."""
    return sum(math.prod(x.sharding.shard_shape(x.shape)) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree))


def _placed(tree, shardings):
    return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), tree, shardings)


def _memory(compiled) -> dict:
    m = compiled.memory_analysis()
    return {"arguments": m.argument_size_in_bytes, "outputs": m.output_size_in_bytes,
            "aliased": m.alias_size_in_bytes, "temp": m.temp_size_in_bytes,
            "peak": m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes + m.temp_size_in_bytes}


def compile_train(spec: model_lib.ModelSpec, tx: optax.GradientTransformation, mesh, rules, *,
                  batch_size: int, window_turns: int) -> dict:
    """The sharded train step (state donated) and the gradient computation alone, compiled for `mesh`.

    Returns per-device bytes: planned (parameters, optimizer state, batch, gradients: from the
    shardings) and compiled (XLA's memory analysis of both programs). The gradient program's temporary
    memory is the activations with every transient of forward and backward; the train step adds the
    optimizer update's."""
    graphdef, state, shardings = train_state.abstract(spec, tx, mesh, rules)
    batch = train_step.abstract_batch(spec.layout, batch_size, window_turns)
    batch = _placed(batch, sharding.batch_shardings(batch, mesh, rules))
    step = train_step.make_train_step(graphdef, tx, optax.constant_schedule(0.0), shardings,
                                      jax.tree.map(lambda x: x.sharding, batch), mesh, rules)
    compiled_step = step.lower(state, batch).compile()

    def grads(params, batch):
        with sharding.use_rules(mesh, rules):
            loss = lambda p: model_lib.losses(nnx.merge(graphdef, p), batch, jax.random.key(0))[0]  # noqa: E731
            return jax.grad(loss)(params)

    compiled_grads = jax.jit(grads, out_shardings=shardings.params).lower(state.params, batch).compile()
    params = per_device_bytes(state.params)
    return {
        "planned": {"parameters": params, "optimizer": per_device_bytes(state.opt_state),
                    "batch": per_device_bytes(batch), "gradients": params,
                    "saved_activations": saved_activations(spec, batch_size, window_turns, mesh, rules)},
        "step": _memory(compiled_step), "gradient_program": _memory(compiled_grads),
        "tokens_per_step": batch_size * window_turns * spec.layout.block_len,
    }


def saved_activations(spec: model_lib.ModelSpec, batch_size: int, window_turns: int, mesh, rules) -> int:
    """Per-device bytes of what a rematerialised decoder keeps for the backward pass: every block's input
    (batch, time, embed) in the compute dtype. Without remat every block's internals stay too (not modelled)."""
    d = spec.decoder
    shape = (batch_size, window_turns * spec.layout.block_len, d.embed)
    local = NamedSharding(mesh, sharding.mesh_spec(transformer.ACTIVATIONS, shape, mesh, rules)).shard_shape(shape)
    return d.layers * math.prod(local) * jnp.dtype(spec.dtype).itemsize


def serving_spec(spec: model_lib.ModelSpec) -> model_lib.ModelSpec:
    """The streaming step's MoE: the capacity path, a group per session, with room for every assignment
    (capacity factor num_experts / top_k: no token is ever dropped at inference)."""
    moe = spec.decoder.moe
    if moe is None:
        return spec
    roomy = dataclasses.replace(moe, dispatch="capacity", capacity_groups="row",
                                capacity_factor=moe.num_experts / moe.top_k)
    return dataclasses.replace(spec, decoder=dataclasses.replace(spec.decoder, moe=roomy))


def compile_stream(spec: model_lib.ModelSpec, mesh, rules, *, sessions: int, context_turns: int,
                   flow_steps: int, weight_dtype=jnp.bfloat16, cache_dtype=jnp.bfloat16) -> dict:
    """One streaming micro-turn for `sessions` batched sessions, parameters and KV cache in
    `weight_dtype` / `cache_dtype`, compiled for `mesh`: planned and compiled per-device bytes."""
    graphdef, params = nnx.split(nnx.eval_shape(lambda: model_lib.InteractionModel(spec, rngs=nnx.Rngs(0))))
    params = jax.tree.map(lambda p: jax.ShapeDtypeStruct(p.shape, weight_dtype), params)
    params = _placed(params, sharding.param_shardings(params, mesh, rules))
    model = nnx.merge(graphdef, params)
    state = jax.eval_shape(lambda: streaming.init_state(model, sessions, context_turns, dtype=cache_dtype))
    state = _placed(state, streaming.state_shardings(state, mesh, rules))
    inputs = streaming.abstract_inputs(spec.layout, sessions)
    inputs = _placed(inputs, sharding.batch_shardings(inputs, mesh, rules))

    step = streaming.make_step(graphdef, mesh=mesh, rules=rules, flow_steps=flow_steps,
                               state_shardings=jax.tree.map(lambda x: x.sharding, state))
    per_session = [jax.ShapeDtypeStruct((sessions,), dtype) for dtype in (jnp.uint32, jnp.int32, jnp.bool_)]
    compiled = step.lower(params, state, inputs, *per_session).compile()
    return {
        "planned": {"parameters": per_device_bytes(params), "kv_cache": per_device_bytes(state.caches),
                    "state_other": per_device_bytes(state) - per_device_bytes(state.caches),
                    "inputs": per_device_bytes(inputs)},
        "step": _memory(compiled),
    }


def micro_turn_latency(model, *, devices: int, sessions: int, context: int, flow_evals: int,
                       weight_bytes: int, kv_bytes: int, accelerator: Accelerator) -> dict:
    """The micro-turn's roofline on `devices` chips working together: its passes run one after another,
    each taking the longer of its FLOPs over the chips' peak and its bytes over their bandwidth (an ideal
    split of work and traffic; collectives and kernel launches are not counted)."""
    passes = flops.micro_turn_passes(model, sessions=sessions, context=context, flow_evals=flow_evals,
                                     weight_bytes=weight_bytes, kv_bytes=kv_bytes)
    compute = sum(f for f, _ in passes) / (devices * accelerator.peak_flops)
    traffic = sum(b for _, b in passes) / (devices * accelerator.bandwidth)
    seconds = sum(max(f / accelerator.peak_flops, b / accelerator.bandwidth) for f, b in passes) / devices
    return {"accelerator": accelerator.name, "devices": devices, "sessions": sessions,
            "flops": sum(f for f, _ in passes), "bytes": sum(b for _, b in passes),
            "compute_s": compute, "traffic_s": traffic, "micro_turn_s": seconds, "budget_fraction": seconds / 0.2}
