r"""The scale-out plan: compile the train step and the streaming step of a model on a mesh of fake CPU
devices, ahead of time, and print per-device memory (planned from the shardings beside XLA's analysis
of the compiled programs), FLOPs per micro-turn and the micro-turn latency they imply on named
accelerators.

    python -m experiments.plan --config=experiments/configs/tml_small_paper.py [--mesh=fsdp=2,expert=32]

Nothing is allocated (abstract shapes only); the published-scale model's layers are one scanned block, so
a full-depth compile costs about what one layer's does (docs/scale.md). `--layers=N` compiles fewer
layers. Results also go to `--out` as JSON.
"""
from __future__ import annotations

import math

import jax
from absl import flags
from flax import nnx
from jax.sharding import NamedSharding
from ml_collections import config_flags

from experiments import common
from experiments.common import write_results
from interaction import MICROTURN_SECONDS, plan, sharding
from interaction.models.model import InteractionModel, ModelSpec, parameter_counts
from interaction.train import optimizer

_CONFIG = config_flags.DEFINE_config_file("config", "experiments/configs/tml_small_paper.py", "plan config")
_MESH = flags.DEFINE_string("mesh", "", "mesh axis sizes, e.g. fsdp=2,expert=32 (default: the config's)")
_LAYERS = flags.DEFINE_integer("layers", 0, "compile this many layers instead of the config's (0: all)")
_SECTIONS = flags.DEFINE_list("sections", ["train", "stream", "latency"], "what to plan")
_OUT = flags.DEFINE_string("out", "experiments/results/plan.json", "where to write the JSON results")

GB = 1e9


def parse_mesh(text: str) -> dict[str, int]:
    """'fsdp=2,expert=32' -> {'fsdp': 2, 'expert': 32}."""
    shape = {}
    for part in filter(None, text.split(",")):
        name, _, size = part.partition("=")
        if name.strip() not in sharding.MESH_AXES or not size.strip().isdigit() or int(size) < 1:
            raise ValueError(f"bad mesh entry {part!r} in --mesh={text!r}: write axis=size with axes from "
                             f"{sharding.MESH_AXES}, e.g. --mesh=fsdp=2,expert=32")
        shape[name.strip()] = int(size)
    return shape


def _warn_if_batch_is_not_split(batch: int, flag: str, mesh, rules) -> None:
    rows = NamedSharding(mesh, sharding.mesh_spec(("batch",), (batch,), mesh, rules)).shard_shape((batch,))[0]
    if batch // rows < mesh.size:
        print(f"    note: a batch of {batch} splits {batch // rows} ways over {mesh.size} devices, {rows} rows on "
              f"each (set {flag} to a multiple of {mesh.size} to split it over all of them)")


def _row(name: str, planned, compiled=None) -> str:
    fmt = lambda x: "" if x is None else f"{x / GB:10.2f}"  # noqa: E731
    ratio = f"{compiled / planned:8.3f}" if planned and compiled else ""
    return f"    {name:<44}{fmt(planned):>10}{fmt(compiled):>10}{ratio:>8}"


def main(argv):
    del argv
    c = _CONFIG.value
    shape = parse_mesh(_MESH.value) if _MESH.value else {k: v for k, v in c.model.mesh.items() if v > 0}
    devices = math.prod(shape.values())
    jax.config.update("jax_num_cpu_devices", devices)
    mesh = sharding.make_mesh(shape, jax.devices("cpu")[:devices])
    rules = dict(c.model.rules)
    if _LAYERS.value:
        c.model.decoder.layers = _LAYERS.value
    spec = ModelSpec.from_config(c.model)
    model = nnx.eval_shape(lambda: InteractionModel(spec, rngs=nnx.Rngs(0)))
    total, active = parameter_counts(model)
    lay = spec.layout
    mesh_text = " x ".join(f"{k}={v}" for k, v in shape.items())
    print(f"{c.model.name}: {total / 1e9:.1f}B parameters ({active / 1e9:.1f}B active), {spec.decoder.layers} layers; "
          f"mesh {mesh_text} ({devices} devices)")
    results = {"model": c.model.name, "parameters": total, "active": active, "layers": spec.decoder.layers,
               "mesh": shape, "devices": devices}
    print(f"    {'per device, GB':<44}{'planned':>10}{'compiled':>10}{'ratio':>8}")

    if "train" in _SECTIONS.value:
        tx = optimizer.make_optimizer(c.optim, total_steps=1000)
        r = plan.compile_train(spec, tx, mesh, rules, batch_size=c.data.batch_size, window_turns=c.data.window_turns)
        p, step, grads = r["planned"], r["step"], r["gradient_program"]
        print(f"  train step: {c.data.batch_size} windows x {c.data.window_turns} micro-turns "
              f"({r['tokens_per_step']:,} tokens), {spec.dtype} activations, remat={spec.decoder.remat}")
        _warn_if_batch_is_not_split(c.data.batch_size, "--config.data.batch_size", mesh, rules)
        print(_row("parameters (float32)", p["parameters"]))
        print(_row("optimizer state", p["optimizer"]))
        print(_row("batch", p["batch"]))
        print(_row("= arguments", p["parameters"] + p["optimizer"] + p["batch"], step["arguments"]))
        print(_row("gradients (gradient program's outputs)", p["gradients"], grads["outputs"]))
        print(_row("activations kept for backward (block inputs)", p["saved_activations"]))
        print(_row("activations and transients (gradient program)", None, grads["temp"]))
        print(_row("train step temporaries (+ optimizer update)", None, step["temp"]))
        print(_row("train step peak", None, step["peak"]))
        results["train"] = r

    if "stream" in _SECTIONS.value:
        s = c.serve
        r = plan.compile_stream(plan.serving_spec(spec), mesh, rules, sessions=s.sessions,
                                context_turns=round(s.context_s / MICROTURN_SECONDS), flow_steps=s.flow_steps)
        p, step = r["planned"], r["step"]
        _warn_if_batch_is_not_split(s.sessions, "--config.serve.sessions", mesh, rules)
        print(f"  streaming step: {s.sessions} sessions, {s.context_s:.0f} s of context "
              f"({round(s.context_s / MICROTURN_SECONDS) * lay.block_len:,} keys), bfloat16 weights and cache")
        print(_row("parameters (bfloat16)", p["parameters"]))
        print(_row("KV cache", p["kv_cache"]))
        print(_row("rest of the state, inputs", p["state_other"] + p["inputs"]))
        print(_row("= arguments", sum(p.values()), step["arguments"]))
        print(_row("temporaries", None, step["temp"]))
        print(_row("step peak", None, step["peak"]))
        results["stream"] = r

    if "latency" in _SECTIONS.value:
        s = c.serve
        context = round(s.context_s / MICROTURN_SECONDS) * lay.block_len
        print(f"  micro-turn on {devices} chips ({lay.passes} passes, {context:,} keys of "
              f"context, bfloat16; roofline, collectives not counted), budget 200 ms:")
        print(f"    {'accelerator':<12}{'sessions':>9}{'TFLOP':>9}{'GB read':>9}{'compute ms':>12}{'traffic ms':>12}"
              f"{'micro-turn ms':>15}{'of budget':>11}")
        rows = []
        for acc in plan.ACCELERATORS:
            for sessions in sorted({1, s.sessions}):
                r = plan.micro_turn_latency(model, devices=devices, sessions=sessions, context=context,
                                            flow_evals=s.flow_steps, weight_bytes=2, kv_bytes=2, accelerator=acc)
                rows.append(r)
                print(f"    {acc.name:<12}{sessions:>9}{r['flops'] / 1e12:>9.2f}{r['bytes'] / GB:>9.1f}"
                      f"{r['compute_s'] * 1e3:>12.2f}{r['traffic_s'] * 1e3:>12.2f}{r['micro_turn_s'] * 1e3:>15.2f}"
                      f"{r['budget_fraction']:>11.1%}")
        results["latency"] = rows
        if "train" in results:
            peak = results["train"]["step"]["peak"]
            fits = ", ".join(f"{a.name} {'fits' if peak <= a.memory else 'does not fit'} ({a.memory / GB:.0f} GB)"
                             for a in plan.ACCELERATORS)
            print(f"  train step peak {peak / GB:.1f} GB per device: {fits}")
    write_results(_OUT.value, results)


if __name__ == "__main__":
    common.run(main)
