r"""Load test of the live server on loopback: N concurrent sessions, every one streaming speech in real
time, and whether the server keeps every session's 200 ms tick.

  python -m experiments.load_test --workdir=workdir/tiny [--sessions=1,2,4,8,12,16] [--seconds=20]

For each N the server starts with N slots (in this process, on 127.0.0.1, a free port), N clients
connect and stream 16 kHz speech (espeak-ng, a different sentence each) in 200 ms pieces on the wall
clock, and the server records when each tick's events were all sent. Lateness of a tick: that moment
past the tick's deadline (its scheduled start + 200 ms), 0 when on time. N holds when the p99 lateness
is at most --hold_ms and every session got one audio piece per tick. Work: a tick's start to its events
all sent (its step, the batched vocoder, every session's encoding and events). The clients share the server's
process and event loop (a process of their own was worse on two cores: it takes CPU from the server).
Writes a table and JSON.
"""
import asyncio

import numpy as np
from absl import flags
from flax import nnx

from experiments import common
from experiments.common import write_results
from interaction import MICROTURN_SECONDS
from interaction.data import lexicon, speech
from interaction.live.client import Conversation
from interaction.live.engine import SlotEngine
from interaction.live.server import LiveServer
from interaction.train import checkpoint

_WORKDIR = flags.DEFINE_string("workdir", "workdir/tiny", "a trained run (experiments.train)")
_SESSIONS = flags.DEFINE_list("sessions", ["1", "2", "4", "8", "12", "16"], "concurrent sessions to try")
_SECONDS = flags.DEFINE_float("seconds", 20.0, "how long every session streams")
_HOLD_MS = flags.DEFINE_float("hold_ms", 20.0, "N holds when the p99 tick lateness is at most this")
_SERVE = common.define_serve_flag()  # the run's serve block, as experiments.serve runs it (its sessions: --sessions)
_OUT = flags.DEFINE_string("out", "experiments/results/load_test.json", "where to write the JSON results")


def _voices(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    sentences = [lexicon.fill(q, rng) for _, q in lexicon.USER_QUESTIONS]
    voice = speech.Voice("en-us", "f3")
    return [0.5 * speech.synthesize(sentences[i % len(sentences)], voice).audio for i in range(n)]


async def _load(engine: SlotEngine, n: int, seconds: float) -> dict:
    server = LiveServer(engine)
    waves = _voices(n)
    async with server.running(port=0) as port:
        url = f"ws://127.0.0.1:{port}/v1/realtime"
        convs = [await Conversation.open(url, rate=16000) for _ in range(n)]
        first = server.ticks
        await asyncio.gather(*(c.stream(w, seconds) for c, w in zip(convs, waves)))
        await asyncio.sleep(2 * MICROTURN_SECONDS)
        for c in convs:
            await c.close()
        ticks = server.ticks - first
    summary = server.lateness_summary()
    pieces = [len(c.of("response.output_audio.delta")) for c in convs]
    summary.update(sessions=n, min_pieces_per_session=min(pieces), expected_pieces=round(seconds / MICROTURN_SECONDS),
                   errors=sum(len(c.of("error")) for c in convs), server_ticks=ticks)
    summary["holds"] = bool(summary["p99_late_ms"] <= _HOLD_MS.value and summary["errors"] == 0
                            and min(pieces) >= summary["expected_pieces"])
    return summary


def main(argv):
    del argv
    c, graphdef, params, step = checkpoint.load_trained(_WORKDIR.value)
    s = common.serve_settings(c, _SERVE)
    model = nnx.merge(graphdef, params)
    rows = []
    print(f"{'sessions':>8} {'ticks':>6} {'work p50/p99 ms':>16} {'p50 late ms':>12} {'p99 late ms':>12} "
          f"{'max late ms':>12} {'on time':>8} {'pieces/session':>15} {'holds':>6}")
    for n in map(int, _SESSIONS.value):
        engine = common.engine(model, s, sessions=n)
        r = asyncio.run(_load(engine, n, _SECONDS.value))
        rows.append(r)
        print(f"{n:>8} {r['ticks']:>6} {r['p50_work_ms']:>7.1f}/{r['p99_work_ms']:<8.1f} {r['p50_late_ms']:>12.1f} "
              f"{r['p99_late_ms']:>12.1f} {r['max_late_ms']:>12.1f} {100 * r['on_time']:>7.1f}% "
              f"{r['min_pieces_per_session']:>7}/{r['expected_pieces']:<7} {str(r['holds']):>6}",
              flush=True)
    held = [r["sessions"] for r in rows if r["holds"]]
    result = {"workdir": _WORKDIR.value, "checkpoint_step": step, "seconds": _SECONDS.value, "hold_ms": _HOLD_MS.value,
              "context_s": s.context_s,
              "rows": rows, "largest_n_that_holds": max(held) if held else 0}
    print(f"largest N that holds: {result['largest_n_that_holds']}")
    write_results(_OUT.value, result)


if __name__ == "__main__":
    common.run(main)
