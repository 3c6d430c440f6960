r"""An hour-long session through the streaming step: latency drift and memory growth. A table and JSON.

  python -m experiments.benchmark_session [--session_size=tiny] [--session_turns=18000] [--session_window=1000] \
      [--out=experiments/results/session.json]

One session of `--session_turns` micro-turns (18,000: an hour) through the step (`streaming.make_step`) as a
live loop runs it (inputs in, text tokens and mel frames out to the host each micro-turn), recording step
latency and the process's resident memory every `--session_window` micro-turns. After each window a fresh
session runs 200 micro-turns beside it, as a control for the machine's own drift. Drift: the last window's
p50 against the first's, raw and as a ratio to the control, and the same change along the least-squares
line through every window (which one noisy window does not decide); memory growth: the last sample against
the first (taken after the first window, when every buffer exists). The step must compile once for the
whole hour.
"""
import time

import jax
import numpy as np
from absl import app, flags

from experiments import benchmark_common as bench
from experiments.common import write_results
from experiments.configs import model as model_config
from interaction import MICROTURN_SECONDS

_SESSION_SIZE = flags.DEFINE_string("session_size", "tiny", "the model config")
_SESSION_TURNS = flags.DEFINE_integer("session_turns", 18_000, "micro-turns (18,000 = one hour)")
_SESSION_WINDOW = flags.DEFINE_integer("session_window", 1_000, "micro-turns per latency/memory sample")
_CONTEXT = flags.DEFINE_integer("context_turns", 150, "KV cache capacity in micro-turns (30 s)")
_OUT = flags.DEFINE_string("out", "experiments/results/session.json", "where to write the JSON results")

_CONTROL_TURNS = 200  # micro-turns of a fresh session timed after each window of the long one


def resident_bytes() -> int:
    """This process's resident memory (Linux /proc; 0 where it is not available)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096
    except OSError:
        return 0


def time_session(size: str, turns: int, window: int, context_turns: int) -> dict:
    session = bench.make_session(model_config.get_config(size), context_turns)

    def turn(state, m: int):
        t0 = time.perf_counter()
        state, out = session(state, m)
        jax.device_get((out["mel"], out["text_tokens"]))  # what a live loop takes to the host each micro-turn
        return state, time.perf_counter() - t0

    state, _ = turn(session.fresh_state(), 0)  # compiles
    windows, times = [], []
    for m in range(1, turns):
        state, dt = turn(state, m)
        times.append(dt)
        if (m + 1) % window == 0 or m + 1 == turns:
            fresh = session.fresh_state()  # the control: a new session, same machine, now
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
            "compiles": session.step._cache_size(),
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


_COLUMNS = [bench.column("turn", 7, "turn"), bench.column("p50 ms", 8, "p50_ms", ".2f"),
            bench.column("p99 ms", 8, "p99_ms", ".2f"), bench.column("fresh p50", 10, "fresh_p50_ms", ".2f"),
            bench.column("p50/fresh", 10, "over_fresh", ".3f"), bench.column("RSS MB", 8, "rss_mb", ".1f")]


def print_session(size: str, r: dict) -> None:
    print(f"session ({size}, {r['turns']} micro-turns = {r['hours']:.2f} h), compiled {r['compiles']} time(s)")
    bench.print_table(_COLUMNS, r["windows"])
    growth = "n/a" if r["rss_growth"] is None else f"{100 * r['rss_growth']:+.2f}%"
    print(f"last window over first: p50 {100 * r['p50_drift']:+.2f}%, p99 {100 * r['p99_drift']:+.2f}%, p50 against a "
          f"fresh session timed beside it {100 * r['drift_against_fresh']:+.2f}%; resident memory {growth}")
    print(f"along the least-squares line over all windows: p50 {100 * r['p50_trend']:+.2f}%, p50 against the fresh "
          f"session {100 * r['trend_against_fresh']:+.2f}%")


def main(argv):
    del argv
    results = bench.measure_machine()
    r = results["session"] = time_session(_SESSION_SIZE.value, _SESSION_TURNS.value, _SESSION_WINDOW.value,
                                          _CONTEXT.value)
    r["size"] = _SESSION_SIZE.value
    print_session(_SESSION_SIZE.value, r)
    write_results(_OUT.value, results)


if __name__ == "__main__":
    app.run(main)
