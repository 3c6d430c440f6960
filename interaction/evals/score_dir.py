"""Scores a directory in Full-Duplex-Bench's per-sample layout: the model's outputs and the baseline's.

`<root>/<task>/<id>/` holds `input.wav`, the task's annotation file and, to be scored, `output.wav`. A
sample's task is its parent folder's name when that is a known task, else it is read from the annotation
file present, so real benchmark data can be dropped in as it is distributed. What the recognizer heard is
written beside the output as `output.json` in the benchmark's format ({"text", "chunks": [{"text",
"timestamp": [s, e]}]}), and reused while `output.wav` is unchanged.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from interaction import SAMPLE_RATE
from interaction.codecs import audio
from interaction.codecs.dmel import DMelConfig
from interaction.data import fdb_export
from interaction.evals import baseline, floor, scoring
from interaction.evals import words as wordlib
from interaction.evals.asr import Recognizer
from interaction.evals.smart_turn import SmartTurn
from interaction.evals.vad import SileroVad

TASKS = tuple(fdb_export.TASKS.values())
_BY_FILE = (("pause.json", "pause_handling"), ("turn_taking.json", "smooth_turn_taking"),
            ("interrupt.json", "user_interruption"))
_BY_METADATA = (("backchannel_text", "user_backchannel"), ("current_turn_text", "talking_to_other"),
                ("background_text", "background_speech"))


def task_of(folder: Path, files: dict) -> str | None:
    if folder.parent.name in TASKS:
        return folder.parent.name
    for name, task in _BY_FILE:
        if name in files:
            return task
    meta = files.get("metadata.json") or {}
    return next((task for key, task in _BY_METADATA if key in meta), None)


def samples(root) -> list[Path]:
    """Sample folders under `root` (any depth): those holding an input.wav."""
    found = sorted(p.parent for p in Path(root).rglob("input.wav"))
    if not found:
        raise FileNotFoundError(f"no sample folders (with input.wav) under {root}.")
    return found


def read_files(folder: Path) -> dict:
    return {p.name: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))
            if p.name not in ("output.json", "heard.json")}


def _words(chunks) -> list:
    return [(c["timestamp"][0], c["timestamp"][1], c["text"]) for c in chunks]


def interruptions(files: dict) -> list[tuple[float, float]]:
    """Labelled interruption spans of a sample (our full labels, else the benchmark's interrupt.json)."""
    spans = [tuple(e["timestamp"]) for e in files.get("events.json") or [] if e["kind"] == "interruption"]
    return spans or [tuple(x["timestamp"]) for x in files.get("interrupt.json") or []]


def hear(folder: Path, files: dict, vad: SileroVad, recognizer: Recognizer) -> scoring.Heard:
    """VAD of input, output and reference, recognition of the output; cached in `heard.json` by the output's
    hash and the recognizer. Audio of any sample rate is resampled to 16 kHz first. `files`: its
    annotations (`read_files`)."""
    out_wave = audio.read_wav(folder / "output.wav", SAMPLE_RATE, resample=True)
    digest = hashlib.sha256(out_wave.tobytes()).hexdigest()[:16]
    cache = folder / "heard.json"
    cached = json.loads(cache.read_text()) if cache.exists() else {}
    reference = folder / "reference_output.wav"
    if cached.get("output_sha") != digest or cached.get("recognizer") != recognizer.name:
        in_wave = audio.read_wav(folder / "input.wav", SAMPLE_RATE, resample=True)
        words = recognizer.words(out_wave)
        ref_segments = None
        if reference.exists():
            ref_wave = audio.read_wav(reference, SAMPLE_RATE, resample=True)[: len(out_wave)]
            ref_segments = vad.segments(ref_wave)
        cached = {"output_sha": digest, "recognizer": recognizer.name, "input_segments": vad.segments(in_wave),
                  "output_segments": vad.segments(out_wave), "reference_segments": ref_segments}
        cache.write_text(json.dumps(cached))
        (folder / "output.json").write_text(json.dumps(
            {"text": " ".join(w for _, _, w in words),
             "chunks": [{"text": w, "timestamp": [a, b]} for a, b, w in words]}, indent=1))
    words = _words(json.loads((folder / "output.json").read_text())["chunks"])
    said = folder / "model_text.json"
    said_text = " ".join(w["text"] for w in json.loads(said.read_text())["words"]) if said.exists() else None
    segments = lambda key: None if cached[key] is None else [tuple(s) for s in cached[key]]
    floor_counts = floor.sample_counts(out_wave, segments("output_segments"), segments("input_segments"),
                                       segments("reference_segments"), interruptions(files))
    return scoring.Heard(output_words=words, output_segments=segments("output_segments"),
                         input_segments=segments("input_segments"), duration=len(out_wave) / SAMPLE_RATE,
                         said_text=said_text, floor=floor_counts)


def score_model(root, vad: SileroVad, recognizer: Recognizer) -> list[dict]:
    """Per-sample scores of every sample with an output.wav: [{task, id, scores...}]."""
    rows = []
    for folder in samples(root):
        files = read_files(folder)
        task = task_of(folder, files)
        if task is None or not (folder / "output.wav").exists():
            continue
        heard = hear(folder, files, vad, recognizer)
        rows.append({"task": task, "id": folder.name, **scoring.score_sample(task, files, heard), "floor": heard.floor})
    if not rows:
        raise FileNotFoundError(f"no sample under {root} has both a known task and an output.wav to score.")
    return rows


def score_baselines(root, vad: SileroVad, recognizer: Recognizer, cfg: DMelConfig, smart_turn: SmartTurn, *,
                    calibrate: Sequence[Recognizer] = (), calibration_replies: int | None = None
                    ) -> tuple[dict[str, dict[float, list[dict]]], dict]:
    """Per-sample scores of the turn-based baselines on every sample with labels and a reference:
    {"silence": {threshold s: rows}, "cascade": {P(complete) threshold: rows}}, each row with its floor
    counts; and the calibration of `recognizer` and each of `calibrate` on the first `calibration_replies`
    vocoded reference replies (all: None), the same for each ({name: word error rate}, None where no sample
    has replies, and how many `replies`), with the share of the reference's delegated
    answers in which `recognizer` hears the whole result (the ceiling of `answer_correct` through this
    vocoder and recognizer). Smart Turn runs once per sample; each threshold only picks among its verdicts."""
    rows: dict[str, dict[float, list[dict]]] = {"silence": {t: [] for t in baseline.THRESHOLDS},
                                                "cascade": {t: [] for t in baseline.TURN_THRESHOLDS}}
    recognizers = [recognizer, *(r for r in calibrate if r.name != recognizer.name)]
    edits = dict.fromkeys((r.name for r in recognizers), 0)
    reference_words = calibrated = 0
    answers_heard = []
    for folder in samples(root):
        files = read_files(folder)
        task = task_of(folder, files)
        if task is None or "events.json" not in files or not (folder / "reference_output.wav").exists():
            continue
        in_wave = audio.read_wav(folder / "input.wav", SAMPLE_RATE, resample=True)
        reference = audio.read_wav(folder / "reference_output.wav", SAMPLE_RATE, resample=True)
        replies = baseline.reference_replies(files["events.json"], reference, cfg, recognizer, vad)
        for r in replies:
            if calibration_replies is not None and calibrated >= calibration_replies:
                break
            calibrated += 1
            ref = wordlib.normalize(r.text)
            reference_words += len(ref)
            for other in recognizers:
                heard = r.words if other is recognizer else other.words(r.wave)
                edits[other.name] += wordlib.edit_distance(ref, wordlib.normalize(" ".join(w for _, _, w in heard)))
        if task == "delegation":
            answers_heard += scoring.reference_answers_heard(files["events.json"], replies)
        in_probs = vad.probabilities(in_wave)
        in_segments = vad.segments_from(in_probs, len(in_wave))
        ref_segments = vad.segments(reference[: len(in_wave)])
        excluded = interruptions(files)
        candidates = baseline.cascade_candidates(in_wave, in_probs, smart_turn)
        detectors = {"silence": lambda t: baseline.ends_of_turn(in_segments, t),  # noqa: B023 - used in this iteration
                     "cascade": lambda t: baseline.cascade_ends(candidates, t)}  # noqa: B023
        for name, by_threshold in rows.items():
            for t, found in by_threshold.items():
                wave, words, out_segments = baseline.respond_at(replies, detectors[name](t), len(in_wave))
                heard = scoring.Heard(output_words=words, output_segments=out_segments, input_segments=in_segments,
                                      duration=len(wave) / SAMPLE_RATE)
                found.append({"task": task, "id": folder.name, **scoring.score_sample(task, files, heard),
                              "floor": floor.sample_counts(wave, out_segments, in_segments, ref_segments, excluded)})
    calibration = {"recognizer_wer": {r.name: edits[r.name] / reference_words if reference_words else None
                                      for r in recognizers}, "replies": calibrated,
                   "answer_heard": float(np.mean(answers_heard)) if answers_heard else None}
    return rows, calibration


def by_task(rows: Sequence[dict]) -> dict[str, dict]:
    """Aggregated scores per task, in the benchmark's task order."""
    tasks = [t for t in TASKS if any(r["task"] == t for r in rows)]
    return {t: scoring.aggregate([{k: v for k, v in r.items() if k not in ("task", "id", "floor")} for r in rows
                                  if r["task"] == t]) for t in tasks}


def floor_by_task(rows: Sequence[dict]) -> dict[str, dict]:
    """`floor.summarize` of the rows' floor counts per task, and over every sample as "all"."""
    counted = [r for r in rows if r.get("floor")]
    tasks = [t for t in TASKS if any(r["task"] == t for r in counted)]
    out = {t: floor.summarize([r["floor"] for r in counted if r["task"] == t]) for t in tasks}
    if counted:
        out["all"] = floor.summarize([r["floor"] for r in counted])
    return out
