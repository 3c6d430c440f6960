r"""Speed of the micro-turn streaming step for one session, against its FLOP and byte floors. A table and JSON.

  python -m experiments.benchmark_step [--sizes=tiny,small] [--turns=500] [--out=experiments/results/step.json]
  python -m experiments.benchmark_step --sizes=tiny --reasoner_busy --turns=1000
  python -m experiments.benchmark_step --deterministic --variant=experiments/configs/model.py:small \
      --variant.decoder.kv_heads=4 --variant_name=kv4
  python -m experiments.benchmark_step --ungrouped --moshi

Every ratio is taken within one run (this machine is noisy); the matmul peak and read bandwidth are
measured first.

Per config: p50 and p99 wall time of the jitted streaming step (`streaming.make_step`, as the evaluation
runner calls it) for one session (free-running: the model samples its own text and audio, 8 flow steps per
frame, 30 s of context), the real-time factor (step time over the 200 ms it covers), the step's FLOPs and
the FLOP floor (those FLOPs over the measured peak), and the byte floor: the bytes the step must read
(`flops.step_bytes`: weights and every layer's KV cache, a local layer's window of it, once per sequential
decoder pass, the flow head once per Euler step) over the measured read bandwidth. At batch 1 the byte
floor is the binding one. FLOPs and bytes are counted analytically (`interaction.models.flops`): XLA's
cost analysis counts a loop body once, and the step is mostly loops; its number is kept beside ours.

With --reasoner_busy the step is also timed while the background reasoner answers (the tiny learned
reasoner, re-asked as soon as it answers), on a thread of this process and in its own idle-priority
process that the loop stops while it steps (`ReasonerRuntime.quiet`), in alternating blocks of 25
micro-turns idle and busy, paced at one micro-turn per 200 ms as a live loop runs; the busy p99 is
compared with that of its own idle blocks, and the answers count what the reasoner got done meanwhile.

--moshi also times Moshi's full streaming step at each size's width, heads, layers and context, in the same
run (`experiments/moshi_peer.py`, which says how to install it; nothing is installed here), as `moshi@<size>`
rows, and gives the speed-up of ours against it per 200 ms, at p50 and at p99. Every row gives its sequential
decoder passes per micro-turn (`MicroTurnLayout.passes`).

--pieces also times the step's parts for each row, each jitted alone: the call itself (a function that takes
the step's arguments and returns at once), the input pass (the block's input positions and its first text
position through every layer), a one-position pass, and the whole step with 1 flow step instead of 8.

--ungrouped also times each size with a decoder position per frame and text slot (groups of 1), as
`<size>/ungrouped` rows, with its cost as a ratio to the default.

--deterministic also times the deterministic mode (`invariant.py`: fixed-tile products, split attention;
MoE on the dense dispatch) beside the default, as `<size>/det` rows, with its cost as a ratio to the
default measured in the same run. --variant does the same for any model config file with its fields
overridden (`<its name>/<--variant_name>` rows), e.g. `--variant=experiments/configs/model.py:small
--variant.decoder.local_window_turns=None --variant.decoder.global_every=None` for every layer global.
"""
import contextlib
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from flax import nnx

from experiments import benchmark_common as bench
from experiments import moshi_peer
from experiments.common import write_results
from experiments.configs import model as model_config
from experiments.configs import reasoner as reasoner_config
from interaction import MICROTURN_SECONDS
from interaction.models import flops as model_flops
from interaction.models import model as model_lib
from interaction.models import streaming
from interaction.models.transformer import DecoderSpec
from interaction.reasoner import learned
from interaction.reasoner.process import ProcessReasoner
from interaction.reasoner.runtime import ReasonerRuntime

_SIZES, _DETERMINISTIC, _UNGROUPED, _VARIANT, _VARIANT_NAME = bench.define_config_flags()
_TURNS = flags.DEFINE_integer("turns", 500, "timed micro-turns per config (after warm-up)")
_CONTEXT = flags.DEFINE_integer("context_turns", 150, "KV cache capacity in micro-turns (30 s)")
_BUSY = flags.DEFINE_bool("reasoner_busy", False, "also time the step while the background reasoner works (the "
                          "sizes' own rows)")
_MOSHI = flags.DEFINE_bool("moshi", False, "also time Moshi's streaming step at each size (experiments/moshi_peer.py)")
_PIECES = flags.DEFINE_bool("pieces", False, "also time the step's parts, each jitted alone")
_OUT = flags.DEFINE_string("out", "experiments/results/step.json", "where to write the JSON results")

_BLOCK = 25  # micro-turns per idle / busy block of the --reasoner_busy comparison


def _ms(times: list[float]) -> dict:
    """p50_ms and p99_ms of wall times in seconds."""
    return {"p50_ms": 1000 * float(np.percentile(times, 50)), "p99_ms": 1000 * float(np.percentile(times, 99))}


def time_step(session: bench.Session, turns: int, busy: bool = False) -> dict:
    model, state = session.model, session.fresh_state()
    lay = model.spec.layout
    xla = session.step.lower(*session.args(state, 0)).compile().cost_analysis()
    xla = (xla[0] if isinstance(xla, list) else xla).get("flops", float("nan"))
    for t in range(5):  # warm-up, compile
        state, out = session(state, t)
    jax.block_until_ready(out)

    def timed(runtime: ReasonerRuntime | None, n: int = turns, paced: bool = False) -> list[float]:
        """Step wall times of n micro-turns; `paced` runs them as a live loop does, one per 200 ms."""
        nonlocal state
        times = []
        for t in range(n):
            t0 = time.perf_counter()
            if runtime is not None:
                session.inputs["text_in"] = jnp.asarray(runtime.arrived(t))[None]
                if not runtime.pending:  # answered: ask again, so that it is always busy
                    runtime.delegate("What is 12 times 13?", "user: What is 12 times 13?")
            with runtime.quiet() if runtime is not None else contextlib.nullcontext():
                state, out = session(state, t)
                jax.block_until_ready(out)
            times.append(time.perf_counter() - t0)
            if paced:
                time.sleep(max(0.0, MICROTURN_SECONDS - (time.perf_counter() - t0)))
        return times

    times = timed(None)
    total, active = model_lib.parameter_counts(model)
    context = session.context_turns * lay.block_len
    flops = model_flops.block_forward(model, context, flow_evals=bench.FLOW_STEPS)
    moved = model_flops.step_bytes(model, context, flow_evals=bench.FLOW_STEPS)
    out = {"params_total": total, "params_active": active, "step_flops": flops, "xla_cost_analysis_flops": float(xla),
           "step_bytes": moved, "passes": lay.passes, **_ms(times)}
    out["rtf_p50"], out["rtf_p99"] = out["p50_ms"] / 1000 / MICROTURN_SECONDS, out["p99_ms"] / 1000 / MICROTURN_SECONDS
    if busy:
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
                idle += timed(None, _BLOCK, paced=True)
                busy += timed(runtime, _BLOCK, paced=True)
                runtime.cancel()
            answered = len(runtime.delivered) - 1
            runtime.close()
            if isolation == "process":
                reasoner.close()
            b = out[f"busy_{isolation}"] = {"idle_p99_ms": _ms(idle)["p99_ms"], **_ms(busy), "answers": answered}
            b["p99_over_idle"] = b["p99_ms"] / b["idle_p99_ms"]
    return out


def _quantiles(fn, n: int) -> dict:
    """p50 and p99 wall time of n calls of fn, after one to compile."""
    jax.block_until_ready(fn())
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return _ms(times)


def time_pieces(session: bench.Session, turns: int) -> dict:
    """The step's parts, each jitted alone and timed over `turns` calls: what a call with the step's arguments
    costs, the input pass, a one-position pass, and the step with 1 flow step."""
    model = session.model
    lay, graphdef = model.spec.layout, nnx.split(model)[0]
    state = session.fresh_state()

    def decoder_pass(positions: int):
        @jax.jit
        def run(params, caches, x):
            decoder = nnx.merge(graphdef, params).decoder
            blocks = decoder.init_cache(1, lay.block_len, caches[0].v.dtype)
            return decoder.step(x, jnp.arange(positions)[None], caches, blocks)
        x = jnp.zeros((1, positions, model.spec.decoder.embed), state.caches[0].v.dtype)
        return lambda: run(session.params, state.caches, x)

    call = jax.jit(lambda params, state, *rest: state.time)
    flow1, flow1_state = streaming.make_step(graphdef, flow_steps=1), [session.fresh_state()]

    def flow1_step():
        flow1_state[0], out = flow1(*session.args(flow1_state[0], 0))
        return out

    return {"call": _quantiles(lambda: call(*session.args(state, 0)), turns),
            "input_pass": _quantiles(decoder_pass(lay.input_len + 1), turns),
            "one_pass": _quantiles(decoder_pass(1), turns), "step_flow1": _quantiles(flow1_step, turns)}


_COLUMNS = [bench.column("passes", 7, "passes"), bench.column("params", 10, "params_total", ".2f", 1e6, "M"),
            bench.column("active", 10, "params_active", ".2f", 1e6, "M"),
            bench.column("MFLOP/step", 11, "step_flops", ".1f", 1e6),
            bench.column("MB/step", 8, "step_bytes", ".1f", 1e6),
            bench.column("p50 ms", 8, "p50_ms", ".2f"), bench.column("p99 ms", 8, "p99_ms", ".2f"),
            bench.column("RTF p99", 8, "rtf_p99", ".3f"), bench.column("FLOP floor", 11, "floor_ms", ".3f"),
            bench.column("p50/floor", 10, "ratio_to_floor", ".1f"),
            bench.column("byte floor", 11, "bytes_floor_ms", ".3f"),
            bench.column("p50/floor", 10, "ratio_to_bytes_floor", ".1f")]
_BUSY_COLUMNS = [bench.column("reasoner", 9, "reasoner"), bench.column("idle p99", 9, "idle_p99_ms", ".2f"),
                 bench.column("busy p50", 9, "p50_ms", ".2f"), bench.column("busy p99", 9, "p99_ms", ".2f"),
                 bench.column("p99 busy/idle", 14, "p99_over_idle", ".2f"), bench.column("answers", 8, "answers")]


_MOSHI_COLUMNS = [bench.column("params", 10, "params_total", ".2f", 1e6, "M"),
                  bench.column("p50 ms", 8, "p50_ms", ".2f"), bench.column("p99 ms", 8, "p99_ms", ".2f"),
                  bench.column("Moshi/ours p50", 15, "moshi_over_ours_p50", ".2f"),
                  bench.column("Moshi/ours p99", 15, "moshi_over_ours_p99", ".2f")]


def print_step(configs: dict) -> None:
    bench.print_configs(_COLUMNS, {name: r for name, r in configs.items() if not name.startswith("moshi@")}, least=10)
    peers = {name: r for name, r in configs.items() if "moshi_over_ours_p50" in r and not name.startswith("moshi@")}
    if peers:  # each size beside its Moshi, per 200 ms of audio
        bench.print_configs(_MOSHI_COLUMNS, {name: r for size in peers for name, r in
                                             ((size, peers[size]), (f"moshi@{size}", configs[f"moshi@{size}"]))},
                            least=10)
    pieces = {name: r["pieces"] for name, r in configs.items() if "pieces" in r}
    if pieces:  # ms, p50 / p99
        parts = ("call", "input_pass", "one_pass", "step_flow1")
        bench.print_table([bench.config_column(pieces, 8)] + [
            (f"{part} ms", 15, lambda r, part=part: f"{r[part]['p50_ms']:.2f} / {r[part]['p99_ms']:.2f}")
            for part in parts], ({"config": name, **r} for name, r in pieces.items()))
    busy = {name: r for name, r in configs.items() if "busy_thread" in r}
    if busy:
        bench.print_table([bench.config_column(busy, 8), *_BUSY_COLUMNS],
                          ({"config": name, "reasoner": isolation, **r[f"busy_{isolation}"]}
                           for name, r in busy.items() for isolation in ("thread", "process")))


def main(argv):
    del argv
    rows = bench.config_rows(_SIZES.value, model_config.get_config, _DETERMINISTIC.value, _UNGROUPED.value, _VARIANT,
                             _VARIANT_NAME.value)
    if _MOSHI.value:
        moshi_peer.require()
    results = bench.measure_machine()
    step = results["step"] = {}
    for row in rows:
        session = bench.make_session(row.model, _CONTEXT.value)
        r = step[row.name] = time_step(session, _TURNS.value, busy=_BUSY.value and not row.varied)
        r["floor_ms"] = 1000 * r["step_flops"] / results["matmul_peak_flops"]
        r["ratio_to_floor"] = r["p50_ms"] / r["floor_ms"]
        r["bytes_floor_ms"] = 1000 * r["step_bytes"] / results["memory_bandwidth_bytes_per_s"]
        r["ratio_to_bytes_floor"] = r["p50_ms"] / r["bytes_floor_ms"]
        bench.against_default(step, row, {"p50_over_default": "p50_ms", "p99_over_default": "p99_ms"})
        if _PIECES.value:
            r["pieces"] = time_pieces(session, _TURNS.value)
        if _MOSHI.value and not row.varied:
            d = model_lib.ModelSpec.from_config(row.model).decoder
            peer = step[f"moshi@{row.name}"] = moshi_peer.time_step(d.embed, d.heads, d.layers,
                                                                   _CONTEXT.value * MICROTURN_SECONDS, _TURNS.value)
            for q in ("p50", "p99"):
                r[f"moshi_over_ours_{q}"] = peer[f"{q}_ms"] / r[f"{q}_ms"]
                peer[f"moshi_over_ours_{q}"] = 1.0
    write_results(_OUT.value, results)
    print_step(step)


if __name__ == "__main__":
    app.run(main)
