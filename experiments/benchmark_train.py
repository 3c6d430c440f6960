r"""Training throughput: tokens/s and MFU of the jitted train step.

  python -m experiments.benchmark_train [--sizes=tiny,small] [--batch=8] [--window=20] [--steps=10]

For each model config: the mean wall time of a train step (forward, backward, AdamW update) on a batch
of `batch` windows of `window` micro-turns over all local devices (data parallel), tokens per second
(every slot of a micro-turn block is a token), and MFU: model FLOPs per second over the matmul peak
measured in this same run (times the device count). Model FLOPs are 3x the analytic forward count of
`interaction.models.flops` (backward = 2x forward), attention counted over the whole window as in
PaLM's convention, the flow head once per frame. Inputs are random tokens of the right shapes.
"""
import time

import jax
import numpy as np
from absl import app, flags
from flax import nnx

from experiments.common import matmul_peak, write_results
from experiments.configs import train as train_config
from interaction import sharding
from interaction.data.layout import MicroTurnLayout
from interaction.models import flops as model_flops
from interaction.models.model import InteractionModel, ModelSpec, parameter_counts
from interaction.train import optimizer
from interaction.train import state as train_state
from interaction.train.step import make_train_step

_SIZES = flags.DEFINE_list("sizes", ["tiny", "small"], "training configs to time")
_BATCH = flags.DEFINE_integer("batch", 8, "windows per step (global)")
_WINDOW = flags.DEFINE_integer("window", 20, "micro-turns per window")
_STEPS = flags.DEFINE_integer("steps", 10, "timed steps (after two warm-up steps)")
_OUT = flags.DEFINE_string("out", "experiments/results/train.json", "where to write the JSON results")


def random_batch(layout: MicroTurnLayout, batch: int, window: int, rng: np.random.Generator) -> dict:
    dm = layout.dmel
    mel = rng.uniform(dm.log_min, dm.log_max, (batch, window, layout.frames, dm.n_mels)).astype(np.float32)
    return {
        "user_audio": rng.integers(0, dm.n_bins, (batch, window, layout.frames, dm.n_mels)).astype(np.int32),
        "video": rng.integers(0, 256, (batch, window, layout.patches, 40, 40, 3)).astype(np.uint8),
        "video_new": rng.uniform(size=(batch, window)) < 0.5,
        "text_in": rng.integers(0, 272, (batch, window, layout.text_in_slots)).astype(np.int32),
        "text_out": rng.integers(0, 272, (batch, window, layout.text_out_slots)).astype(np.int32),
        "model_mel": mel,
        "model_audio": rng.integers(0, dm.n_bins, mel.shape).astype(np.int32),
        "time_index": np.broadcast_to(np.arange(window, dtype=np.int32), (batch, window)).copy(),
        "valid": np.ones((batch, window), bool),
    }


def time_training(size: str, batch: int, window: int, steps: int) -> dict:
    c = train_config.get_config(size)
    spec = ModelSpec.from_config(c.model)
    mesh = sharding.make_mesh({"data": jax.device_count()})
    rules = sharding.DEFAULT_RULES
    tx = optimizer.make_optimizer(c.optim, c.total_steps)
    graphdef, state, shardings = train_state.create(spec, tx, mesh, rules, seed=0)
    local = random_batch(spec.layout, batch, window, np.random.default_rng(0))
    glob = sharding.global_batch(local, mesh, rules)
    step = make_train_step(graphdef, tx, optimizer.schedule(c.optim, c.total_steps), shardings,
                           jax.tree.map(lambda x: x.sharding, glob), mesh, rules)
    for _ in range(2):  # compile, warm up
        state, metrics = step(state, glob)
    jax.block_until_ready(metrics)
    t0 = time.perf_counter()
    for _ in range(steps):
        state, metrics = step(state, glob)
    jax.block_until_ready(metrics)
    seconds = (time.perf_counter() - t0) / steps
    model = nnx.eval_shape(lambda: InteractionModel(spec, rngs=nnx.Rngs(0)))
    block_len = spec.layout.block_len
    flops = 3 * batch * window * model_flops.block_forward(model, context=window * block_len, flow_evals=1)
    total, active = parameter_counts(model)
    return {"params_total": total, "params_active": active, "batch": batch, "window": window,
            "tokens_per_step": batch * window * block_len, "step_s": seconds,
            "tokens_per_s": batch * window * block_len / seconds, "model_flops_per_step": flops}


def main(argv):
    del argv
    peak = matmul_peak()
    results = {"device": str(jax.devices()[0]), "devices": jax.device_count(), "matmul_peak_flops": peak, "configs": {}}
    for size in _SIZES.value:
        r = time_training(size, _BATCH.value, _WINDOW.value, _STEPS.value)
        r["mfu"] = r["model_flops_per_step"] / r["step_s"] / (peak * jax.device_count())
        results["configs"][size] = r
    print(f"device {results['device']} x{results['devices']}, measured matmul peak {peak / 1e9:.1f} GFLOP/s per device")
    print(f"{'config':>7} {'params':>9} {'active':>9} {'tokens/step':>12} {'step s':>8} {'tokens/s':>10} "
          f"{'GFLOP/step':>11} {'MFU':>7}")
    for size, r in results["configs"].items():
        print(f"{size:>7} {r['params_total'] / 1e6:>8.2f}M {r['params_active'] / 1e6:>8.2f}M {r['tokens_per_step']:>12} "
              f"{r['step_s']:>8.3f} {r['tokens_per_s']:>10.0f} {r['model_flops_per_step'] / 1e9:>11.2f} "
              f"{100 * r['mfu']:>6.2f}%")
    write_results(_OUT.value, results)


if __name__ == "__main__":
    app.run(main)
