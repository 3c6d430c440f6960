"""Per-sample scores from what the model emitted, by task, and their aggregation.

A `Heard` holds what the recognizer and the voice-activity detector made of one sample: the output's
words and speech segments, and the input's speech segments. `score_sample` applies the benchmark's
rules for the sample's task (`fdb_rules`), from the task's annotation file, and ours from the full
labels in `events.json` when the sample has them (our exported corpus does; real benchmark data does
not, and then gets the benchmark's metrics only).

Our metrics, each on the output audio:
- visual cues: a hit when the model starts speaking within 2 s of a cue; latency of hits; false alarms
  per minute: speech onsets that neither follow a cue within 2 s nor fall in a span where the reference
  model speaks (from 1 s before its start to its end).
- delegation: the answer is correct when every word of the tool's result, as the answer speaks it ("one
  hundred and thirty two"), is recognized in the output after the result arrives (in the model's text
  stream too: `answer_correct_text`); acknowledged when the model starts speaking between the question's
  end and the result; time to answer from the question's end to the first speech onset after the
  result. With a live reasoner (`results` in `model_text.json`) its answer's own arrival counts, and
  also: whether the model delegated, whether its request is the question word for word, and whether the
  reasoner's answer holds the result.
- translation: BLEU of the recognized speech against the reference translations; lag from the end of
  each source sentence to the first speech onset after its start.
- timer: signed error of the speech onset nearest the due time (onsets after the acknowledgement).
- false responses to side talk and background speech: the model takes the turn (the take-over rule)
  with words inside the distractor's span plus 1.5 s, outside the reference model's own speech.
- behaviour after an overlap (v1.5 labels, rule-based): unknown (nothing said), uncertain (asks the user
  to repeat), resume (the recognized words recall at least 30% of what the reference model says next),
  respond (takes the turn with other words), else unknown.
- intelligibility: word error rate of the recognized output against the model's own text stream and
  against the reference model channel's words.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import sacrebleu

from interaction.data import scenarios
from interaction.data.conversation import Word
from interaction.evals import fdb_rules as fdb
from interaction.evals import intervals
from interaction.evals import words as wordlib

CUE_WINDOW_S = 2.0
DISTRACTOR_TAIL_S = 1.5
RESUME_RECALL = 0.3
_UNCERTAIN = ("sorry", "repeat", "pardon", "catch that", "say that again", "didn't hear")
BEHAVIOURS = ("respond", "resume", "uncertain", "unknown")
EXPECTED_BEHAVIOUR = {"user_interruption": "respond", "user_backchannel": "resume", "talking_to_other": "resume",
                      "background_speech": "resume"}


@dataclasses.dataclass
class Heard:
    output_words: list[Word]
    output_segments: list[fdb.Segment]
    input_segments: list[fdb.Segment]
    duration: float
    said_text: str | None = None  # the model's own text stream, when the sample comes from our runner
    floor: dict | None = None  # `floor.sample_counts` of the output


def onsets(segments: Sequence[fdb.Segment]) -> list[float]:
    """Starts of the output's speech after merging the benchmark's 0.5 s model gaps."""
    return [s for s, _ in fdb.merge(segments, fdb.MODEL_MERGE_GAP)]


def _text(words: Sequence[Word]) -> str:
    return " ".join(w for _, _, w in words)


def _events(events: list[dict], kind: str) -> list[dict]:
    return [e for e in events if e["kind"] == kind]


def _reference_speech(events: list[dict]) -> list[fdb.Segment]:
    kinds = ("model_turn", "model_remark", "model_backchannel", "translation")
    return [tuple(e["timestamp"]) for e in events if e["kind"] in kinds]


def _reference_text(events: list[dict], after: float = -math.inf, before: float = math.inf) -> str:
    """What the reference model says, in order, in replies that end after `after` and start before `before`."""
    spoken = sorted((e["timestamp"][0], e.get("target") or e.get("text", "")) for e in events
                    if e["kind"] in ("model_turn", "model_remark", "model_backchannel", "translation")
                    and e["timestamp"][1] > after and e["timestamp"][0] < before)
    return " ".join(t for _, t in spoken)


def behaviour(words: Sequence[Word], start: float, resume_reference: str) -> str:
    """v1.5 behaviour label of the output after an overlap that starts at `start` (rule-based judge)."""
    after = [w for w in words if w[0] >= start]
    if not after:
        return "unknown"
    said = " ".join(wordlib.normalize(_text(after)))
    if any(p in said for p in _UNCERTAIN):
        return "uncertain"
    if resume_reference and wordlib.recall(resume_reference, said) >= RESUME_RECALL:
        return "resume"
    return "respond" if fdb.takes_over(after) else "unknown"


def false_response(words: Sequence[Word], start: float, end: float, reference: Sequence[fdb.Segment]) -> bool:
    """Whether the model takes the turn in [start, end + tail] with words outside the reference's speech."""
    own = [w for w in words if start <= w[0] <= end + DISTRACTOR_TAIL_S
           and not any(a - 0.5 <= w[0] <= b + 0.5 for a, b in reference)]
    return fdb.takes_over(own)


def _v15(task: str, meta: dict, events: list[dict], heard: Heard) -> dict:
    start, end = meta["timestamps"]
    during = [o for o in fdb.overlaps(heard.input_segments, heard.output_segments) if o[1] >= start and o[0] <= end]
    gaps = [g for g in fdb.response_gaps(heard.input_segments, heard.output_segments) if g[0] >= end - 0.1]
    out = {"stop_latency": float(np.mean([b - a for a, b in during])) if during else None,
           "response_latency": gaps[0][1] - gaps[0][0] if gaps else None}
    if events:
        # After an interruption the interrupted turn is not in the labels (it was cut), so there is no
        # resume reference: words that take the turn are a response.
        resume = "" if task == "user_interruption" else _reference_text(events, after=start)
        out["behaviour"] = behaviour(heard.output_words, start, resume)
        out["expected_behaviour"] = float(out["behaviour"] == EXPECTED_BEHAVIOUR[task])
        if task in ("talking_to_other", "background_speech"):
            out["false_response"] = float(false_response(heard.output_words, start, end, _reference_speech(events)))
    return out


def _visual(events: list[dict], heard: Heard) -> dict:
    cues = [e["timestamp"][0] for e in _events(events, "visual_cue")]
    starts = onsets(heard.output_segments)
    latencies = [next((o - c for o in starts if c <= o <= c + CUE_WINDOW_S), None) for c in cues]
    reference = _reference_speech(events)
    false = [o for o in starts if not any(c <= o <= c + CUE_WINDOW_S for c in cues)
             and not any(a - 1.0 <= o <= b for a, b in reference)]
    hits = [x for x in latencies if x is not None]
    return {"cue_hit": len(hits) / len(cues), "cue_latency": float(np.mean(hits)) if hits else None,
            "false_alarms_per_min": 60.0 * len(false) / heard.duration}


def _delegation(events: list[dict], heard: Heard, said: dict | None) -> dict:
    (d,) = _events(events, "delegation")
    question = _events(events, "user_turn")[0]
    question_end = question["timestamp"][1]
    arrival = d["timestamp"][1]
    out: dict = {}
    if said is not None and "results" in said:  # a live reasoner answered: its answer's own arrival counts
        arrival = said["results"][0]["time"] if said["results"] else None
        asked = [x for x in said.get("delegations", []) if x["time"] >= question["timestamp"][0]]
        out["delegated"] = float(bool(asked))
        out["request_exact"] = float(bool(asked) and wordlib.normalize(asked[0]["request"])
                                     == wordlib.normalize(question["text"]))
        out["reasoner_correct"] = float(bool(said["results"]) and _has_result(d, said["results"][0]["text"]))
    if arrival is None:
        return {**out, "answer_correct": 0.0, "time_to_answer": None, "acknowledged": float(
            any(o >= question_end for o in onsets(heard.output_segments)))}
    out["answer_correct"] = float(_has_result(d, _text([w for w in heard.output_words if w[0] >= arrival])))
    out["time_to_answer"] = next((o - question_end for o in onsets(heard.output_segments) if o >= arrival), None)
    out["acknowledged"] = float(any(question_end <= o < arrival for o in onsets(heard.output_segments)))
    if said is not None:
        stream = " ".join(w["text"] for w in said["words"] if w["timestamp"][0] >= arrival)
        out["answer_correct_text"] = float(_has_result(d, stream))
    return out


def reference_answers_heard(events: list[dict], replies) -> list[bool]:
    """For each delegated answer among the reference `replies` (`baseline.Reply`), whether the recognizer
    heard the whole result in it: the ceiling of `answer_correct` through the same vocoder and recognizer."""
    (d,) = _events(events, "delegation")
    said = {e["text"] for e in _events(events, "model_turn") if e.get("delegated")}
    return [_has_result(d, _text(r.words)) for r in replies if r.text in said]


def _has_result(delegation: dict, text: str) -> bool:
    """Whether `text` says every word of the delegation's result as the answer speaks it."""
    return wordlib.recall(scenarios.spoken_result(delegation["result"]), text) == 1.0


def _translation(events: list[dict], heard: Heard) -> dict:
    pieces = sorted(_events(events, "translation"), key=lambda e: e["source_start"])
    first = pieces[0]["source_start"]
    said = _text([w for w in heard.output_words if w[0] >= first])
    reference = " ".join(e["target"] for e in pieces)
    starts = onsets(heard.output_segments)
    lags = [next((o - e["source_end"] for o in starts if o >= e["source_start"]), None) for e in pieces]
    lags = [x for x in lags if x is not None]
    bleu = sacrebleu.sentence_bleu(" ".join(wordlib.normalize(said)), [" ".join(wordlib.normalize(reference))])
    return {"bleu": bleu.score, "translation_lag": float(np.mean(lags)) if lags else None}


def _timer(events: list[dict], heard: Heard) -> dict:
    (due,) = _events(events, "timer_due")
    (request,) = _events(events, "timer_request")
    ack_end = next((e["timestamp"][1] for e in _events(events, "model_turn") if not e.get("timer")),
                   request["timestamp"][1])
    candidates = [o for o in onsets(heard.output_segments) if o > ack_end + 0.5]
    if not candidates:
        return {"timer_error": None, "timer_said": 0.0}
    best = min(candidates, key=lambda o: abs(o - due["timestamp"][0]))
    return {"timer_error": best - due["timestamp"][0], "timer_said": 1.0}


def score_sample(task: str, files: dict, heard: Heard) -> dict:
    """Scores of one sample of `task` (a Full-Duplex-Bench task folder name) from its annotation `files`."""
    words = heard.output_words
    events = files.get("events.json") or []
    out: dict = {}
    if task == "pause_handling":
        out["takeover"] = float(fdb.takes_over(words))
    elif task == "smooth_turn_taking":
        taken, latency = fdb.turn_taking(words, files["turn_taking.json"][0]["timestamp"][0])
        out.update(takeover=float(taken), latency=latency)
    elif task == "user_interruption":
        start, end = files["interrupt.json"][0]["timestamp"]
        taken, latency = fdb.interruption(words, end)
        out.update(takeover=float(taken), latency=latency)
        out.update(_v15(task, {"timestamps": [start, end]}, events, heard))
    elif task == "backchannel":
        taken, found = fdb.backchannels(heard.output_segments, words)
        out.update(takeover=float(taken), backchannels_per_s=len(found) / heard.duration)
        if events:
            reference = [tuple(e["timestamp"]) for e in _events(events, "model_backchannel")]
            out["timing_jsd"] = fdb.timing_distance(found, reference, heard.duration)
    elif task in EXPECTED_BEHAVIOUR:
        out.update(_v15(task, files["metadata.json"], events, heard))
    elif task == "visual_cue" and events:
        out.update(_visual(events, heard))
    elif task == "delegation" and events:
        out.update(_delegation(events, heard, files.get("model_text.json")))
    elif task == "translation" and events:
        out.update(_translation(events, heard))
    elif task == "timer" and events:
        out.update(_timer(events, heard))
    reference = _reference_text(events, before=heard.duration)
    if reference:
        out["wer_reference"] = wordlib.word_error_rate(reference, _text(words))
    if heard.said_text is not None:
        out["wer_own_text"] = wordlib.word_error_rate(heard.said_text, _text(words))
    return out


def aggregate(samples: Sequence[dict]) -> dict:
    """Mean of every numeric score over the samples that have it (None: undefined for that sample, skipped),
    with `n_<name>` counts, `ci_<name>` 95% bootstrap intervals, and label shares for `behaviour`."""
    out: dict = {"samples": len(samples)}
    names = sorted({k for s in samples for k in s})
    for name in names:
        values = [s[name] for s in samples if s.get(name) is not None]
        if name == "behaviour":
            for b in BEHAVIOURS if values else ():
                hits = [float(v == b) for v in values]
                out[f"behaviour_{b}"] = float(np.mean(hits))
                out[f"ci_behaviour_{b}"] = intervals.mean_interval(hits)
            continue
        if name == "timer_error":
            name, values = "timer_abs_error", list(np.abs(values))
        out[name] = float(np.mean(values)) if values else None
        out[f"n_{name}"] = len(values)
        out[f"ci_{name}"] = intervals.mean_interval(values)
    return out
