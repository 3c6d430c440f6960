r"""Trains the learned background reasoner and scores it on held-out tool questions.

  python -m experiments.train_reasoner --workdir=workdir/reasoner [--config=experiments/configs/reasoner.py:small]

Episodes are drawn fresh every step from the corpus' delegation questions (arithmetic, unit conversion,
knowledge base, clock) and the gazetteer's (search, then open; "not found" for names no document has),
with the sandboxed tools' real results. Held-out questions come from another seed: new numbers for
arithmetic and units, gazetteer subjects and unknown names training never saw; the knowledge base and
clock questions are a closed set, so those are held out only in their dates and order. Writes the model
(`spec.json`, `params/` in orbax: what `learned.load(workdir)` reads), a table per tool (tool-call exact
match, answer accuracy, surface match: the UI surface it writes equals the reference's, or both none), and
`reasoner_eval.json`.
"""
import json
import threading
import time
from pathlib import Path

import numpy as np
from absl import flags
from ml_collections import config_flags

from experiments import common
from interaction.models.transformer import DecoderSpec
from interaction.reasoner import episodes, learned, surface, training
from interaction.reasoner.base import Request

_CONFIG = config_flags.DEFINE_config_file("config", "experiments/configs/reasoner.py:tiny", "reasoner config")
_WORKDIR = flags.DEFINE_string("workdir", None, "where the parameters and scores go", required=True)


def evaluate(reasoner: learned.LearnedReasoner, count: int, seed: int, search_share: float) -> dict:
    """Per tool: tool-call exact match (every call of the episode, in order) and answer accuracy (the spoken
    answer exactly as the reference), on held-out episodes, a `search_share` of them search questions."""
    rng, rows = np.random.default_rng(seed), []
    for _ in range(count):
        e = episodes.make_episode(rng, split="eval", search_share=search_share)
        now = episodes.episode_time(e)
        got = reasoner.answer(Request(e.question, "", now), threading.Event())
        calls = tuple(t["call"] for t in got.trace)
        meant = surface.from_line(e.surface, e.question, e.answer) if e.surface else None
        rows.append({"tool": e.tool, "call": calls == e.calls, "answer": got.text == e.answer,
                     "surface": _shown(got.surface) == _shown(meant)})
    out = {}
    for tool in sorted({r["tool"] for r in rows}) + ["all"]:
        mine = [r for r in rows if tool in ("all", r["tool"])]
        out[tool] = {"n": len(mine), "call_exact_match": float(np.mean([r["call"] for r in mine])),
                     "answer_accuracy": float(np.mean([r["answer"] for r in mine])),
                     "surface_match": float(np.mean([r["surface"] for r in mine]))}
    return out


def _shown(s: dict | None) -> list | None:
    """A surface's components (its id is new each time)."""
    return None if s is None else s["components"]


def main(argv):
    del argv
    common.quiet_libraries()
    c = _CONFIG.value
    workdir = Path(_WORKDIR.value)
    workdir.mkdir(parents=True, exist_ok=True)
    spec = DecoderSpec(**c.model)
    t0 = time.perf_counter()
    graphdef, params, losses = training.train(
        spec, steps=c.steps, batch_size=c.batch_size, lr=c.lr, seed=c.seed, search_share=c.search_share, copy=c.copy,
        log=lambda i, loss: print(f"step {i}/{c.steps} loss {loss:.4f}", flush=True))
    train_s = time.perf_counter() - t0
    learned.save(workdir, spec, params, copy=c.copy)
    scores = evaluate(learned.LearnedReasoner(graphdef, params), c.eval_episodes, seed=c.seed + 10_000,
                      search_share=c.search_share)
    print(f"{'tool':<12}{'n':>5}{'call exact match':>18}{'answer accuracy':>17}{'surface match':>15}")
    for tool, s in scores.items():
        print(f"{tool:<12}{s['n']:>5}{s['call_exact_match']:>18.3f}{s['answer_accuracy']:>17.3f}"
              f"{s['surface_match']:>15.3f}")
    result = {"config": c.to_dict(), "train_seconds": train_s, "final_loss": float(np.mean(losses[-50:])),
              "scores": scores}
    (workdir / "reasoner_eval.json").write_text(json.dumps(result, indent=1))
    print(f"wrote {workdir / 'reasoner_eval.json'}")


if __name__ == "__main__":
    common.run(main)
