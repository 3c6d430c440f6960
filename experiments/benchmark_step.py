r"""Latency of the micro-turn streaming step (one 200 ms micro-turn for one session).

  python -m experiments.benchmark_step [--sizes=tiny,small] [--turns=200] [--out=experiments/results/step.json]

For each config: p50 and p99 wall time of the jitted step (free-running: the model samples its own
text and audio, 8 flow steps per frame), the step's FLOPs and the FLOP floor: those FLOPs over the
matmul peak measured in this same run. The real-time budget is 200 ms.

With --reasoner_busy the step is also timed while the background reasoner works (the tiny learned
reasoner, re-asked as soon as it answers; its weights do not change its cost), with the runtime's
`arrived` call in each micro-turn as a live loop makes it: the loop must not notice. Twice: the reasoner
on a worker thread of the loop's process, and in its own idle-priority process (`ProcessReasoner`); each
time in alternating blocks of 100 micro-turns idle and busy, and the busy p99 is compared with the p99
of its own idle blocks. The loop is free-running (no 200 ms pacing), the reasoner's worst case: it gets
no idle cycles but the step's own gaps.

Step FLOPs are counted analytically (`interaction.models.flops`): XLA's cost analysis counts the body
of a loop once, and the step is mostly loops (text slots, audio frames, Euler steps). Its number is
kept beside ours.
"""
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from flax import nnx

from experiments.common import matmul_peak, write_results
from experiments.configs import model as model_config
from experiments.configs import reasoner as reasoner_config
from interaction.models import flops as model_flops
from interaction.models import model as model_lib
from interaction.models import streaming
from interaction.models.transformer import DecoderSpec
from interaction.reasoner import learned
from interaction.reasoner.process import ProcessReasoner
from interaction.reasoner.runtime import ReasonerRuntime

_SIZES = flags.DEFINE_list("sizes", ["tiny", "small"], "model configs to time")
_TURNS = flags.DEFINE_integer("turns", 200, "timed micro-turns per config (after warm-up)")
_CONTEXT = flags.DEFINE_integer("context_turns", 150, "KV cache capacity in micro-turns (30 s)")
_BUSY = flags.DEFINE_bool("reasoner_busy", False, "also time the step while the background reasoner works")
_BLOCK = 100  # micro-turns per idle / busy block of the --reasoner_busy comparison
_OUT = flags.DEFINE_string("out", "experiments/results/step.json", "where to write the JSON results")


def time_step(size: str, turns: int, context_turns: int) -> dict:
    spec = model_lib.ModelSpec.from_config(model_config.get_config(size))
    model = model_lib.InteractionModel(spec, rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(model)
    lay = spec.layout
    state = streaming.init_state(model, 1, context_turns)
    rng = np.random.default_rng(0)
    inputs = {
        "user_audio": jnp.asarray(rng.integers(0, lay.dmel.n_bins, (1, lay.frames, lay.dmel.n_mels)), jnp.int32),
        "video": jnp.asarray(rng.integers(0, 256, (1, lay.patches, 40, 40, 3)), jnp.uint8),
        "video_new": jnp.ones(1, bool),
        "text_in": jnp.zeros((1, lay.text_in_slots), jnp.int32),
    }
    step = jax.jit(lambda p, s, i, k: streaming.step(nnx.merge(graphdef, p), s, i, k), donate_argnums=1)
    xla = step.lower(params, state, inputs, jax.random.key(0)).compile().cost_analysis()
    xla = (xla[0] if isinstance(xla, list) else xla).get("flops", float("nan"))
    for t in range(5):  # warm-up, compile
        state, out = step(params, state, inputs, jax.random.key(t))
    jax.block_until_ready(out)

    def timed(runtime: ReasonerRuntime | None, n: int = turns) -> list[float]:
        nonlocal state
        times = []
        for t in range(n):
            t0 = time.perf_counter()
            if runtime is not None:
                inputs["text_in"] = jnp.asarray(runtime.arrived(t))[None]
                if not runtime.pending:  # answered: ask again, so that it is always busy
                    runtime.delegate("What is 12 times 13?", "user: What is 12 times 13?")
            state, out = step(params, state, inputs, jax.random.key(t))
            jax.block_until_ready(out)
            times.append(time.perf_counter() - t0)
        return times

    times = timed(None)
    total, active = model_lib.parameter_counts(model)
    flops = model_flops.block_forward(model, context_turns * lay.block_len, flow_evals=8)
    out = {"params_total": total, "params_active": active, "step_flops": flops, "xla_cost_analysis_flops": float(xla),
           "p50_ms": 1000 * float(np.percentile(times, 50)), "p99_ms": 1000 * float(np.percentile(times, 99))}
    if _BUSY.value:
        rspec = DecoderSpec(**reasoner_config.get_config("tiny").model)
        for isolation, reasoner in (("thread", learned.untrained(rspec)),
                                    ("process", ProcessReasoner(functools.partial(learned.untrained, rspec)))):
            runtime = ReasonerRuntime(reasoner, lay.text_in_slots)
            runtime.delegate("What is 12 times 13?", "")
            while not runtime.delivered:  # warm: compiled (and, in a process, started)
                runtime.arrived(0)
                time.sleep(0.05)
            idle, busy = [], []
            for _ in range(max(1, turns // _BLOCK)):  # alternate blocks, so that the machine's noise hits both
                idle += timed(None, _BLOCK)
                busy += timed(runtime, _BLOCK)
                runtime.cancel()
            answered = len(runtime.delivered) - 1
            runtime.close()
            if isolation == "process":
                reasoner.close()
            b = out[f"busy_{isolation}"] = {"idle_p99_ms": 1000 * float(np.percentile(idle, 99)),
                                            "p50_ms": 1000 * float(np.percentile(busy, 50)),
                                            "p99_ms": 1000 * float(np.percentile(busy, 99)), "answers": answered}
            b["p99_over_idle"] = b["p99_ms"] / b["idle_p99_ms"]
    return out


def main(argv):
    del argv
    peak = matmul_peak()
    results = {"device": str(jax.devices()[0]), "matmul_peak_flops": peak, "configs": {}}
    for size in _SIZES.value:
        r = time_step(size, _TURNS.value, _CONTEXT.value)
        r["floor_ms"] = 1000 * r["step_flops"] / peak
        r["ratio_to_floor"] = r["p50_ms"] / r["floor_ms"]
        results["configs"][size] = r
    print(f"device {results['device']}, measured matmul peak {peak / 1e9:.1f} GFLOP/s")
    print(f"{'config':>8} {'params':>10} {'active':>10} {'MFLOP/step':>11} {'p50 ms':>8} {'p99 ms':>8} {'floor ms':>9} {'p50/floor':>10}")
    for size, r in results["configs"].items():
        print(f"{size:>8} {r['params_total'] / 1e6:>9.2f}M {r['params_active'] / 1e6:>9.2f}M {r['step_flops'] / 1e6:>11.1f} "
              f"{r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['floor_ms']:>9.3f} {r['ratio_to_floor']:>10.1f}")
    if _BUSY.value:
        print(f"{'config':>8} {'reasoner':>9} {'idle p99':>9} {'busy p50':>9} {'busy p99':>9} {'p99 busy/idle':>14} "
              f"{'answers':>8}")
        for size, r in results["configs"].items():
            for isolation in ("thread", "process"):
                b = r[f"busy_{isolation}"]
                print(f"{size:>8} {isolation:>9} {b['idle_p99_ms']:>9.2f} {b['p50_ms']:>9.2f} {b['p99_ms']:>9.2f} "
                      f"{b['p99_over_idle']:>14.2f} {b['answers']:>8}")
    write_results(_OUT.value, results)


if __name__ == "__main__":
    app.run(main)
