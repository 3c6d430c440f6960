r"""Speed of the system: the micro-turn step, training, and an hour-long session. A table and JSON.

  python -m experiments.benchmark [--sections=step,train,session] [--sizes=tiny,small] [--out=...]
  python -m experiments.benchmark --sections=step --sizes=tiny --reasoner_busy --turns=1000

Every ratio is taken within one run (this machine is noisy); the matmul peak and read bandwidth are
measured first.

- step: p50 and p99 wall time of the jitted streaming step for one session (free-running: the model
  samples its own text and audio, 8 flow steps per frame, 30 s of context), the real-time factor (step
  time over the 200 ms it covers), the step's FLOPs and the FLOP floor (those FLOPs over the measured
  peak), and the byte floor: the bytes the step must read (`flops.step_bytes`: weights and every layer's
  KV cache, a local layer's window of it, once per sequential decoder pass, the flow head once per Euler
  step) over the measured read bandwidth. At batch 1 the byte floor is the binding one. FLOPs and bytes
  are counted analytically (`interaction.models.flops`): XLA's cost analysis counts a loop body once,
  and the step is mostly loops; its number is kept beside ours. With --reasoner_busy the
  step is also timed while the background reasoner answers (the tiny learned reasoner, re-asked as soon
  as it answers), on a thread of this process and in its own idle-priority process that the loop stops
  while it steps (`ReasonerRuntime.quiet`), in alternating blocks of 25 micro-turns idle and busy, paced
  at one micro-turn per 200 ms as a live loop runs; the busy p99 is compared with that of its own idle
  blocks, and the answers count what the reasoner got done meanwhile.
- train: mean wall time of a train step (forward, backward, AdamW) on `--batch` windows of `--window`
  micro-turns over all local devices; tokens/s (every slot of a block is a token) and MFU: model FLOPs
  (3x the analytic forward, attention over the whole window, PaLM's convention) per second over the
  peak times the device count.
- --deterministic: the step and train sections also time the deterministic mode (`invariant.py`:
  fixed-tile products, split attention; MoE on the dense dispatch) beside the default, as `<size>/det`
  rows, with its cost as a ratio to the default measured in the same run. --variant=NAME:FIELD=VALUE,...
  does the same for any model config with the given fields overridden (`<size>/NAME` rows), e.g.
  `--variant=global:decoder.local_window_turns=None,decoder.global_every=None` for every layer global.
- session: one session of `--session_turns` micro-turns (18,000: an hour) through the step as a live
  loop runs it (inputs in, text tokens and mel frames out to the host each micro-turn), recording step
  latency and the process's resident memory every `--session_window` micro-turns. After each window a
  fresh session runs 200 micro-turns beside it, as a control for the machine's own drift. Drift: the
  last window's p50 against the first's, raw and as a ratio to the control, and the same change along
  the least-squares line through every window (which one noisy window does not decide); memory growth: the last
  sample against the first (taken after the first window, when every buffer exists). The step must
  compile once for the whole hour.
"""
import ast
import contextlib
import functools
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import app, flags
from flax import nnx

from experiments.common import matmul_peak, memory_bandwidth, write_results
from experiments.configs import model as model_config
from experiments.configs import reasoner as reasoner_config
from experiments.configs import train as train_config
from interaction import MICROTURN_SECONDS, sharding
from interaction.data import listening
from interaction.data.layout import MicroTurnLayout
from interaction.models import flops as model_flops
from interaction.models import model as model_lib
from interaction.models import streaming
from interaction.models.transformer import DecoderSpec
from interaction.reasoner import learned
from interaction.reasoner.process import ProcessReasoner
from interaction.reasoner.runtime import ReasonerRuntime
from interaction.train import optimizer
from interaction.train import state as train_state
from interaction.train.step import make_train_step

_SECTIONS = flags.DEFINE_list("sections", ["step", "train", "session"], "what to measure")
_SIZES = flags.DEFINE_list("sizes", ["tiny", "small"], "model configs for the step and train sections")
_TURNS = flags.DEFINE_integer("turns", 500, "timed micro-turns per config (after warm-up)")
_CONTEXT = flags.DEFINE_integer("context_turns", 150, "KV cache capacity in micro-turns (30 s)")
_BUSY = flags.DEFINE_bool("reasoner_busy", False, "also time the step while the background reasoner works")
_DETERMINISTIC = flags.DEFINE_bool("deterministic", False, "also time the deterministic mode (step and train), "
                                   "beside the default, in the same run")
_VARIANTS = flags.DEFINE_multi_string("variant", [], "NAME:FIELD=VALUE[,FIELD=VALUE...]: also time the model config "
                                      "with these fields overridden (step and train), as <size>/NAME rows")
_BATCH = flags.DEFINE_integer("batch", 8, "train: windows per step (global)")
_WINDOW = flags.DEFINE_integer("window", 20, "train: micro-turns per window")
_TRAIN_STEPS = flags.DEFINE_integer("train_steps", 10, "train: timed steps (after two warm-up steps)")
_SESSION_SIZE = flags.DEFINE_string("session_size", "tiny", "session: the model config")
_SESSION_TURNS = flags.DEFINE_integer("session_turns", 18_000, "session: micro-turns (18,000 = one hour)")
_SESSION_WINDOW = flags.DEFINE_integer("session_window", 1_000, "session: micro-turns per latency/memory sample")
_OUT = flags.DEFINE_string("out", "experiments/results/benchmark.json", "where to write the JSON results")

_BLOCK = 25  # micro-turns per idle / busy block of the --reasoner_busy comparison
_CONTROL_TURNS = 200  # micro-turns of a fresh session timed after each window of the long one


# ---------------------------------------------------------------- the streaming step


DETERMINISTIC = {"decoder.deterministic": True, "decoder.moe.dispatch": "dense"}  # MoE must be dense there


def parse_variant(text: str) -> tuple[str, dict]:
    """`NAME:FIELD=VALUE,...` -> (NAME, {FIELD: VALUE}); values are Python literals (25, None, True) or strings."""
    name, sep, fields = text.partition(":")
    items = [item.partition("=") for item in fields.split(",")] if sep else []
    if not name or not items or any(not key or not eq for key, eq, _ in items):
        raise app.UsageError(f"--variant={text!r}: expected NAME:FIELD=VALUE[,FIELD=VALUE...], e.g. "
                             "global:decoder.local_window_turns=None,decoder.global_every=None")

    def literal(value: str):
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value

    return name, {key: literal(value) for key, _, value in items}


def with_overrides(model_cfg, overrides: dict):
    """A copy of the model config with the dotted fields of `overrides` set."""
    model_cfg = model_cfg.copy_and_resolve_references()
    for key, value in overrides.items():
        *path, last = key.split(".")
        node = model_cfg
        for part in path:
            node = node.get(part) if isinstance(node, ml_collections.ConfigDict) else None
        if not isinstance(node, ml_collections.ConfigDict) or last not in node:
            raise app.UsageError(f"--variant: the model config has no field {key!r}")
        try:
            node[last] = value
        except TypeError as err:
            raise app.UsageError(f"--variant: {key}={value!r} does not fit the field ({err})") from None
    return model_cfg


def _session(model_cfg, context_turns: int):
    """(model, jitted step, params, fresh state, fixed random inputs) for one session of the model config."""
    spec = model_lib.ModelSpec.from_config(model_cfg)
    model = model_lib.InteractionModel(spec, rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(model)
    lay = spec.layout
    rng = np.random.default_rng(0)
    inputs = {
        "user_audio": jnp.asarray(rng.integers(0, lay.dmel.n_bins, (1, lay.frames, lay.dmel.n_mels)), jnp.int32),
        "video": jnp.asarray(rng.integers(0, 256, (1, lay.patches, 40, 40, 3)), jnp.uint8),
        "video_new": jnp.ones(1, bool),
        "text_in": jnp.zeros((1, lay.text_in_slots), jnp.int32),
    }
    step = jax.jit(lambda p, s, i, k: streaming.step(nnx.merge(graphdef, p), s, i, k), donate_argnums=1)
    return model, step, params, streaming.init_state(model, 1, context_turns), inputs


def time_step(model_cfg, turns: int, context_turns: int, busy: bool = False) -> dict:
    model, step, params, state, inputs = _session(model_cfg, context_turns)
    lay = model.spec.layout
    xla = step.lower(params, state, inputs, jax.random.key(0)).compile().cost_analysis()
    xla = (xla[0] if isinstance(xla, list) else xla).get("flops", float("nan"))
    for t in range(5):  # warm-up, compile
        state, out = step(params, state, inputs, jax.random.key(t))
    jax.block_until_ready(out)

    def timed(runtime: ReasonerRuntime | None, n: int = turns, paced: bool = False) -> list[float]:
        """Step wall times of n micro-turns; `paced` runs them as a live loop does, one per 200 ms."""
        nonlocal state
        times = []
        for t in range(n):
            t0 = time.perf_counter()
            if runtime is not None:
                inputs["text_in"] = jnp.asarray(runtime.arrived(t))[None]
                if not runtime.pending:  # answered: ask again, so that it is always busy
                    runtime.delegate("What is 12 times 13?", "user: What is 12 times 13?")
            with runtime.quiet() if runtime is not None else contextlib.nullcontext():
                state, out = step(params, state, inputs, jax.random.key(t))
                jax.block_until_ready(out)
            times.append(time.perf_counter() - t0)
            if paced:
                time.sleep(max(0.0, MICROTURN_SECONDS - (time.perf_counter() - t0)))
        return times

    times = timed(None)
    total, active = model_lib.parameter_counts(model)
    flops = model_flops.block_forward(model, context_turns * lay.block_len, flow_evals=8)
    moved = model_flops.step_bytes(model, context_turns * lay.block_len, flow_evals=8)
    out = {"params_total": total, "params_active": active, "step_flops": flops, "xla_cost_analysis_flops": float(xla),
           "step_bytes": moved,
           "p50_ms": 1000 * float(np.percentile(times, 50)), "p99_ms": 1000 * float(np.percentile(times, 99))}
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
            b = out[f"busy_{isolation}"] = {"idle_p99_ms": 1000 * float(np.percentile(idle, 99)),
                                            "p50_ms": 1000 * float(np.percentile(busy, 50)),
                                            "p99_ms": 1000 * float(np.percentile(busy, 99)), "answers": answered}
            b["p99_over_idle"] = b["p99_ms"] / b["idle_p99_ms"]
    return out


def _print_step(configs: dict) -> None:
    w = max(10, *map(len, configs))
    print(f"{'config':>{w}} {'params':>10} {'active':>10} {'MFLOP/step':>11} {'MB/step':>8} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'RTF p99':>8} {'FLOP floor':>11} {'p50/floor':>10} {'byte floor':>11} {'p50/floor':>10}")
    for size, r in configs.items():
        print(f"{size:>{w}} {r['params_total'] / 1e6:>9.2f}M {r['params_active'] / 1e6:>9.2f}M "
              f"{r['step_flops'] / 1e6:>11.1f} {r['step_bytes'] / 1e6:>8.1f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
              f"{r['rtf_p99']:>8.3f} {r['floor_ms']:>11.3f} {r['ratio_to_floor']:>10.1f} {r['bytes_floor_ms']:>11.3f} "
              f"{r['ratio_to_bytes_floor']:>10.1f}")
    if any("busy_thread" in r for r in configs.values()):
        print(f"{'config':>8} {'reasoner':>9} {'idle p99':>9} {'busy p50':>9} {'busy p99':>9} {'p99 busy/idle':>14} "
              f"{'answers':>8}")
        for size, r in ((k, v) for k, v in configs.items() if "busy_thread" in v):
            for isolation in ("thread", "process"):
                b = r[f"busy_{isolation}"]
                print(f"{size:>8} {isolation:>9} {b['idle_p99_ms']:>9.2f} {b['p50_ms']:>9.2f} {b['p99_ms']:>9.2f} "
                      f"{b['p99_over_idle']:>14.2f} {b['answers']:>8}")


# ---------------------------------------------------------------- training


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
        "listen": rng.uniform(size=(batch, window, len(listening.NAMES))).astype(np.float32),
        "user_text": rng.integers(0, 272, (batch, window, layout.frames)).astype(np.int32),
        "time_index": np.broadcast_to(np.arange(window, dtype=np.int32), (batch, window)).copy(),
        "valid": np.ones((batch, window), bool), "trained": np.ones((batch, window), bool),
    }


def time_training(size: str, batch: int, window: int, steps: int, overrides: dict) -> dict:
    c = train_config.get_config(size)
    c.model = with_overrides(c.model, overrides)
    spec = model_lib.ModelSpec.from_config(c.model)
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
    model = nnx.eval_shape(lambda: model_lib.InteractionModel(spec, rngs=nnx.Rngs(0)))
    block_len = spec.layout.block_len
    flops = 3 * batch * window * model_flops.block_forward(model, context=window * block_len, flow_evals=1)
    total, active = model_lib.parameter_counts(model)
    return {"params_total": total, "params_active": active, "batch": batch, "window": window,
            "tokens_per_step": batch * window * block_len, "step_s": seconds,
            "tokens_per_s": batch * window * block_len / seconds, "model_flops_per_step": flops}


def _print_train(configs: dict) -> None:
    w = max(9, *map(len, configs))
    print(f"{'config':>{w}} {'params':>9} {'active':>9} {'tokens/step':>12} {'step s':>8} {'tokens/s':>10} "
          f"{'GFLOP/step':>11} {'MFU':>7}")
    for size, r in configs.items():
        print(f"{size:>{w}} {r['params_total'] / 1e6:>8.2f}M {r['params_active'] / 1e6:>8.2f}M "
              f"{r['tokens_per_step']:>12} {r['step_s']:>8.3f} {r['tokens_per_s']:>10.0f} "
              f"{r['model_flops_per_step'] / 1e9:>11.2f} {100 * r['mfu']:>6.2f}%")


# ---------------------------------------------------------------- an hour-long session


def resident_bytes() -> int:
    """This process's resident memory (Linux /proc; 0 where it is not available)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096
    except OSError:
        return 0


def time_session(size: str, turns: int, window: int, context_turns: int) -> dict:
    model, step, params, state, inputs = _session(model_config.get_config(size), context_turns)
    key = jax.random.key(0)

    def turn(state, m: int):
        t0 = time.perf_counter()
        state, out = step(params, state, inputs, jax.random.fold_in(key, m))
        jax.device_get((out["mel"], out["text_tokens"]))  # what a live loop takes to the host each micro-turn
        return state, time.perf_counter() - t0

    state, _ = turn(state, 0)  # compiles
    windows, times = [], []
    for m in range(1, turns):
        state, dt = turn(state, m)
        times.append(dt)
        if (m + 1) % window == 0 or m + 1 == turns:
            fresh = streaming.init_state(model, 1, context_turns)  # the control: a new session, same machine, now
            control = []
            for c in range(_CONTROL_TURNS):
                fresh, dt = turn(fresh, c)
                control.append(dt)
            p50 = float(np.percentile(times, 50))
            windows.append({"turn": m + 1, "p50_ms": 1000 * p50, "p99_ms": 1000 * float(np.percentile(times, 99)),
                            "fresh_p50_ms": 1000 * float(np.percentile(control, 50)),
                            "rss_mb": resident_bytes() / 2**20})
            windows[-1]["over_fresh"] = windows[-1]["p50_ms"] / windows[-1]["fresh_p50_ms"]
            times = []
    first, last = windows[0], windows[-1]
    return {"turns": turns, "hours": turns * MICROTURN_SECONDS / 3600, "windows": windows,
            "compiles": step._cache_size(),
            "p50_drift": last["p50_ms"] / first["p50_ms"] - 1, "p99_drift": last["p99_ms"] / first["p99_ms"] - 1,
            "drift_against_fresh": last["over_fresh"] / first["over_fresh"] - 1,
            "p50_trend": trend([w["turn"] for w in windows], [w["p50_ms"] for w in windows]),
            "trend_against_fresh": trend([w["turn"] for w in windows], [w["over_fresh"] for w in windows]),
            "rss_growth": last["rss_mb"] / first["rss_mb"] - 1 if first["rss_mb"] else None}


def trend(x: list, y: list) -> float:
    """The relative change of y from x[0] to x[-1] along its least-squares line: a drift that one noisy
    window at either end does not decide."""
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope * (x[-1] - x[0]) / (slope * x[0] + intercept))


def _print_session(size: str, r: dict) -> None:
    print(f"session ({size}, {r['turns']} micro-turns = {r['hours']:.2f} h), compiled {r['compiles']} time(s)")
    print(f"{'turn':>7} {'p50 ms':>8} {'p99 ms':>8} {'fresh p50':>10} {'p50/fresh':>10} {'RSS MB':>8}")
    for w in r["windows"]:
        print(f"{w['turn']:>7} {w['p50_ms']:>8.2f} {w['p99_ms']:>8.2f} {w['fresh_p50_ms']:>10.2f} "
              f"{w['over_fresh']:>10.3f} {w['rss_mb']:>8.1f}")
    growth = "n/a" if r["rss_growth"] is None else f"{100 * r['rss_growth']:+.2f}%"
    print(f"last window over first: p50 {100 * r['p50_drift']:+.2f}%, p99 {100 * r['p99_drift']:+.2f}%, p50 against a "
          f"fresh session timed beside it {100 * r['drift_against_fresh']:+.2f}%; resident memory {growth}")
    print(f"along the least-squares line over all windows: p50 {100 * r['p50_trend']:+.2f}%, p50 against the fresh "
          f"session {100 * r['trend_against_fresh']:+.2f}%")


def main(argv):
    del argv
    unknown = set(_SECTIONS.value) - {"step", "train", "session"}
    if unknown:
        raise app.UsageError(f"unknown --sections {sorted(unknown)}; choose from step, train, session.")
    variants = [("", {})] + ([("det", DETERMINISTIC)] if _DETERMINISTIC.value else [])
    variants += [parse_variant(v) for v in _VARIANTS.value]
    rows = [(size, suffix, overrides) for size in _SIZES.value for suffix, overrides in variants]
    name = lambda size, suffix: f"{size}/{suffix}" if suffix else size  # noqa: E731
    for size, suffix, overrides in rows:  # a bad variant fails now, not after the first rows have been timed
        cfg = with_overrides(model_config.get_config(size), overrides)
        try:
            nnx.eval_shape(lambda: model_lib.InteractionModel(
                model_lib.ModelSpec.from_config(cfg), rngs=nnx.Rngs(0)))  # noqa: B023 - traced here, at once
        except (TypeError, ValueError) as err:
            raise app.UsageError(f"{name(size, suffix)}: {err}") from None
    peak, bandwidth = matmul_peak(), memory_bandwidth()
    results = {"device": str(jax.devices()[0]), "devices": jax.device_count(), "matmul_peak_flops": peak,
               "memory_bandwidth_bytes_per_s": bandwidth}
    print(f"device {results['device']} x{results['devices']}, measured matmul peak {peak / 1e9:.1f} GFLOP/s, "
          f"read bandwidth {bandwidth / 1e9:.1f} GB/s per device")
    if "step" in _SECTIONS.value:
        step = results["step"] = {}
        for size, suffix, overrides in rows:
            r = step[name(size, suffix)] = time_step(with_overrides(model_config.get_config(size), overrides),
                                                     _TURNS.value, _CONTEXT.value, busy=_BUSY.value and not suffix)
            r["floor_ms"] = 1000 * r["step_flops"] / peak
            r["ratio_to_floor"] = r["p50_ms"] / r["floor_ms"]
            r["bytes_floor_ms"] = 1000 * r["step_bytes"] / bandwidth
            r["ratio_to_bytes_floor"] = r["p50_ms"] / r["bytes_floor_ms"]
            if suffix:
                r["overrides"] = overrides
                r["p50_over_default"] = r["p50_ms"] / step[size]["p50_ms"]
                r["p99_over_default"] = r["p99_ms"] / step[size]["p99_ms"]
        _print_step(step)
    if "train" in _SECTIONS.value:
        train = results["train"] = {}
        for size, suffix, overrides in rows:
            r = train[name(size, suffix)] = time_training(size, _BATCH.value, _WINDOW.value, _TRAIN_STEPS.value,
                                                          overrides)
            r["mfu"] = r["model_flops_per_step"] / r["step_s"] / (peak * jax.device_count())
            if suffix:
                r["step_s_over_default"] = r["step_s"] / train[size]["step_s"]
        _print_train(train)
    if "session" in _SECTIONS.value:
        r = results["session"] = time_session(_SESSION_SIZE.value, _SESSION_TURNS.value, _SESSION_WINDOW.value,
                                              _CONTEXT.value)
        r["size"] = _SESSION_SIZE.value
        _print_session(_SESSION_SIZE.value, r)
    write_results(_OUT.value, results)


if __name__ == "__main__":
    app.run(main)
