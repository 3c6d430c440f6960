r"""Training throughput and MFU of the interaction model. A table and JSON.

  python -m experiments.benchmark_train [--sizes=tiny,small] [--ungrouped] [--batch=8] [--window=20] \
      [--train_steps=10] [--out=experiments/results/train.json]
  python -m experiments.benchmark_train --deterministic --variant=experiments/configs/model.py:small \
      --variant.decoder.kv_heads=4 --variant_name=kv4

Every ratio is taken within one run (this machine is noisy); the matmul peak is measured first.

Per config (`--sizes` are training configs, `experiments/configs/train.py`): the mean wall time of a train
step (forward, backward, AdamW) on `--batch` random windows of `--window` micro-turns (every field drawn from
the input schema, `MicroTurnLayout.batch_spec`) over all local devices; tokens/s (every position of a block is
a token), micro-turns/s (200 ms of conversation each, whatever the layout's groups: the throughput to compare
layouts by) and MFU: model FLOPs (3x the analytic forward, attention over the whole window, PaLM's convention)
per second over the peak times the device count. Also the step's size as a program (operations in its
StableHLO) and the seconds to trace and to compile it (a hit in JAX's compilation cache, when one is set,
shortens the compile): on an accelerator a step this small is bound by its kernels' launches, and its compile
by their number.

--ungrouped also times each size with a decoder position per frame and text slot
(`MicroTurnLayout` groups of 1), as `<size>/ungrouped` rows. --deterministic also times the deterministic mode
(`invariant.py`: fixed-tile products, split attention; MoE on the dense dispatch) beside the default, as
`<size>/det` rows, with its cost as a ratio to the default measured in the same run. --variant does the same
for any model config file with its fields overridden (`<its name>/<--variant_name>` rows, trained with its
name's training config).
"""
import re
import time

import jax
import numpy as np
from absl import app, flags

from experiments import benchmark_common as bench
from experiments.common import write_results
from experiments.configs import train as train_config
from interaction import sharding
from interaction.data.layout import MicroTurnLayout
from interaction.models import flops as model_flops
from interaction.models import model as model_lib
from interaction.train import optimizer
from interaction.train import state as train_state
from interaction.train.step import make_train_step

_SIZES, _DETERMINISTIC, _UNGROUPED, _VARIANT, _VARIANT_NAME = bench.define_config_flags()
_BATCH = flags.DEFINE_integer("batch", 8, "windows per step (global)")
_WINDOW = flags.DEFINE_integer("window", 20, "micro-turns per window")
_TRAIN_STEPS = flags.DEFINE_integer("train_steps", 10, "timed steps (after two warm-up steps)")
_OUT = flags.DEFINE_string("out", "experiments/results/train.json", "where to write the JSON results")


def random_batch(layout: MicroTurnLayout, batch: int, window: int, rng: np.random.Generator) -> dict:
    """A batch of `batch` random windows of `window` micro-turns (`layout.batch_spec`)."""
    return bench.random_inputs(layout, layout.batch_spec(batch, window), rng)


def time_training(c, batch: int, window: int, steps: int) -> dict:
    """Times train steps of the training config `c` (its model and optimizer) on one random batch."""
    spec = model_lib.ModelSpec.from_config(c.model)
    mesh = sharding.make_mesh({"data": jax.device_count()})
    rules = sharding.DEFAULT_RULES
    tx = optimizer.make_optimizer(c.optim, c.total_steps)
    graphdef, state, shardings = train_state.create(spec, tx, mesh, rules, seed=0)
    local = random_batch(spec.layout, batch, window, np.random.default_rng(0))
    glob = sharding.global_batch(local, mesh, rules)
    step = make_train_step(graphdef, tx, optimizer.schedule(c.optim, c.total_steps), shardings,
                           jax.tree.map(lambda x: x.sharding, glob), mesh, rules)
    started = time.perf_counter()
    lowered = step.lower(state, glob)
    traced = time.perf_counter()
    step = lowered.compile()
    compiled = time.perf_counter()
    ops = len(re.findall(r"^\s*%\S+ = ", lowered.as_text(), flags=re.M))
    for _ in range(2):  # warm up
        state, metrics = step(state, glob)
    jax.block_until_ready(metrics)
    t0 = time.perf_counter()
    for _ in range(steps):
        state, metrics = step(state, glob)
    jax.block_until_ready(metrics)
    seconds = (time.perf_counter() - t0) / steps
    model = bench.abstract_model(c.model)
    block_len = spec.layout.block_len
    flops = 3 * batch * window * model_flops.block_forward(model, context=window * block_len, flow_evals=1)
    total, active = model_lib.parameter_counts(model)
    return {"params_total": total, "params_active": active, "batch": batch, "window": window,
            "trace_s": traced - started, "compile_s": compiled - traced, "program_ops": ops,
            "tokens_per_step": batch * window * block_len, "step_s": seconds,
            "tokens_per_s": batch * window * block_len / seconds, "turns_per_s": batch * window / seconds,
            "model_flops_per_step": flops}


_COLUMNS = [bench.column("params", 9, "params_total", ".2f", 1e6, "M"),
            bench.column("active", 9, "params_active", ".2f", 1e6, "M"),
            bench.column("tokens/step", 12, "tokens_per_step"), bench.column("step s", 8, "step_s", ".3f"),
            bench.column("tokens/s", 10, "tokens_per_s", ".0f"), bench.column("turns/s", 9, "turns_per_s", ".0f"),
            bench.column("GFLOP/step", 11, "model_flops_per_step", ".2f", 1e9),
            bench.column("MFU", 7, "mfu", ".2f", 0.01, "%"),
            bench.column("ops", 7, "program_ops"), bench.column("trace s", 8, "trace_s", ".1f"),
            bench.column("compile s", 10, "compile_s", ".1f")]


def main(argv):
    del argv
    rows = bench.config_rows(_SIZES.value, lambda size: train_config.get_config(size).model, _DETERMINISTIC.value,
                             _UNGROUPED.value, _VARIANT, _VARIANT_NAME.value)
    configs = {}
    for row in rows:  # the training config of the row's size, with the row's model
        try:
            configs[row.name] = train_config.get_config(row.size)
        except ValueError as err:
            raise app.UsageError(f"{row.name}: {err}") from None
        configs[row.name].model = row.model
    results = bench.measure_machine()
    train = results["train"] = {}
    for row in rows:
        r = train[row.name] = time_training(configs[row.name], _BATCH.value, _WINDOW.value, _TRAIN_STEPS.value)
        r["mfu"] = r["model_flops_per_step"] / r["step_s"] / (results["matmul_peak_flops"] * jax.device_count())
        bench.against_default(train, row, {"step_s_over_default": "step_s"})
    bench.print_configs(_COLUMNS, train, least=9)
    write_results(_OUT.value, results)


if __name__ == "__main__":
    app.run(main)
