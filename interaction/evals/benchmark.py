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
from interaction.evals import baseline, scoring
from interaction.evals import words as wordlib
from interaction.evals.asr import Recognizer
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


def hear(folder: Path, vad: SileroVad, recognizer: Recognizer) -> scoring.Heard:
    """VAD of input and output, recognition of the output; cached in `heard.json` by the output's hash."""
    out_wave = audio.read_wav(folder / "output.wav", SAMPLE_RATE)
    digest = hashlib.sha256(out_wave.tobytes()).hexdigest()[:16]
    cache = folder / "heard.json"
    cached = json.loads(cache.read_text()) if cache.exists() else {}
    if cached.get("output_sha") != digest:
        in_wave = audio.read_wav(folder / "input.wav", SAMPLE_RATE)
        words = recognizer.words(out_wave)
        cached = {"output_sha": digest, "input_segments": vad.segments(in_wave),
                  "output_segments": vad.segments(out_wave)}
        cache.write_text(json.dumps(cached))
        (folder / "output.json").write_text(json.dumps(
            {"text": " ".join(w for _, _, w in words),
             "chunks": [{"text": w, "timestamp": [a, b]} for a, b, w in words]}, indent=1))
    words = _words(json.loads((folder / "output.json").read_text())["chunks"])
    said = folder / "model_text.json"
    said_text = " ".join(w["text"] for w in json.loads(said.read_text())["words"]) if said.exists() else None
    return scoring.Heard(output_words=words, output_segments=[tuple(s) for s in cached["output_segments"]],
                         input_segments=[tuple(s) for s in cached["input_segments"]],
                         duration=len(out_wave) / SAMPLE_RATE, said_text=said_text)


def score_model(root, vad: SileroVad, recognizer: Recognizer) -> list[dict]:
    """Per-sample scores of every sample with an output.wav: [{task, id, scores...}]."""
    rows = []
    for folder in samples(root):
        files = read_files(folder)
        task = task_of(folder, files)
        if task is None or not (folder / "output.wav").exists():
            continue
        rows.append({"task": task, "id": folder.name, **scoring.score_sample(task, files, hear(folder, vad, recognizer))})
    if not rows:
        raise FileNotFoundError(f"no sample under {root} has both a known task and an output.wav to score.")
    return rows


def score_baseline(root, vad: SileroVad, recognizer: Recognizer, cfg: DMelConfig,
                   thresholds: Sequence[float] = baseline.THRESHOLDS) -> tuple[dict, dict]:
    """({threshold: per-sample scores}, calibration) of the turn-based baseline on every sample with labels
    and a reference. The calibration is the recognizer's on the vocoded reference replies: its word error
    rate, and the share of the reference's delegated answers in which it hears the whole result (the
    ceiling of `answer_correct` through this vocoder and recognizer); None where no sample has them."""
    rows: dict[float, list[dict]] = {t: [] for t in thresholds}
    edits = reference_words = 0
    answers_heard = []
    for folder in samples(root):
        files = read_files(folder)
        task = task_of(folder, files)
        if task is None or "events.json" not in files or not (folder / "reference_output.wav").exists():
            continue
        in_wave = audio.read_wav(folder / "input.wav", SAMPLE_RATE)
        reference = audio.read_wav(folder / "reference_output.wav", SAMPLE_RATE)
        replies = baseline.reference_replies(files["events.json"], reference, cfg, recognizer)
        for r in replies:
            ref = wordlib.normalize(r.text)
            edits += wordlib.edit_distance(ref, wordlib.normalize(" ".join(w for _, _, w in r.words)))
            reference_words += len(ref)
        if task == "delegation":
            answers_heard += scoring.reference_answers_heard(files["events.json"], replies)
        in_segments = vad.segments(in_wave)
        for t in thresholds:
            wave, words = baseline.respond(replies, in_segments, t, len(in_wave))
            heard = scoring.Heard(output_words=words, output_segments=vad.segments(wave), input_segments=in_segments,
                                  duration=len(wave) / SAMPLE_RATE)
            rows[t].append({"task": task, "id": folder.name, **scoring.score_sample(task, files, heard)})
    calibration = {"recognizer_wer": edits / reference_words if reference_words else None,
                   "answer_heard": float(np.mean(answers_heard)) if answers_heard else None}
    return rows, calibration


def by_task(rows: Sequence[dict]) -> dict[str, dict]:
    """Aggregated scores per task, in the benchmark's task order."""
    tasks = [t for t in TASKS if any(r["task"] == t for r in rows)]
    return {t: scoring.aggregate([{k: v for k, v in r.items() if k not in ("task", "id")} for r in rows if r["task"] == t])
            for t in tasks}
