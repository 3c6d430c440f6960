"""The benchmark report: `report.md`, `results.json` and figures.

Figures: the pause take-over vs turn-taking latency frontier of the turn-based baseline with the model's
point on it, histograms of the model's latencies (turn-taking, interruption, stop, response), and
timelines of sample sessions (what the user said, what the model said and the labelled events).
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from interaction.plots import frontier

# (score, how it reads) in the order the table lists them; a task lists only the scores it has.
COLUMNS = (
    ("takeover", "take-over rate"), ("latency", "latency (s)"), ("stop_latency", "stop latency (s)"),
    ("response_latency", "response latency (s)"), ("backchannels_per_s", "backchannels / s"),
    ("timing_jsd", "backchannel timing JSD"), ("behaviour_respond", "respond"), ("behaviour_resume", "resume"),
    ("behaviour_uncertain", "uncertain"), ("behaviour_unknown", "unknown"),
    ("expected_behaviour", "expected behaviour"), ("false_response", "false responses"),
    ("cue_hit", "cue hit rate (2 s)"), ("cue_latency", "cue latency (s)"),
    ("false_alarms_per_min", "false alarms / min"), ("delegated", "delegated"),
    ("request_exact", "request word for word"), ("reasoner_correct", "reasoner answer correct"),
    ("acknowledged", "acknowledged"), ("answer_correct", "answer accuracy (audio)"),
    ("answer_correct_text", "answer accuracy (text stream)"), ("time_to_answer", "time to answer (s)"),
    ("bleu", "BLEU"), ("translation_lag", "lag (s)"), ("timer_abs_error", "timer |error| (s)"),
    ("timer_said", "timer spoken"), ("wer_own_text", "WER vs own text"), ("wer_reference", "WER vs reference"),
)
HEADLINE = ("pause_handling/takeover", "smooth_turn_taking/latency", "smooth_turn_taking/takeover",
            "user_interruption/stop_latency", "user_interruption/latency", "talking_to_other/false_response",
            "background_speech/false_response")


def _fmt(x) -> str:
    return "–" if x is None else f"{x:.3f}" if isinstance(x, float) else str(x)


def _with_ci(scores: dict, key: str) -> str:
    """A score with its 95% interval: `0.400 [0.200, 0.600]`."""
    ci = scores.get(f"ci_{key}")
    value = _fmt(scores.get(key))
    return value if ci is None or scores.get(key) is None else f"{value} [{ci[0]:.3f}, {ci[1]:.3f}]"


def task_table(model: dict[str, dict], base: dict[str, dict] | None) -> str:
    lines = ["| task | metric | model [95% CI] | turn-based baseline [95% CI] | samples |", "|---|---|---|---|---|"]
    for task, scores in model.items():
        for key, label in COLUMNS:
            if key in scores:
                b = (base or {}).get(task, {})
                lines.append(f"| {task} | {label} | {_with_ci(scores, key)} | {_with_ci(b, key)} | "
                             f"{scores.get(f'n_{key}', scores['samples'])} |")
    return "\n".join(lines)


FLOOR_COLUMNS = (("f1", "F1"), ("precision", "precision"), ("recall", "recall"),
                 ("talk_over", "talks over the user"), ("quiet_dbfs", "level in reference silence (dBFS)"))


def floor_table(floors: dict[str, dict[str, dict]]) -> str:
    """Rows: who (the model, the baselines) x task, "all" first; the reference's own talk-over beside."""
    lines = ["| output | task | " + " | ".join(label for _, label in FLOOR_COLUMNS)
             + " | reference talks over the user | samples |", "|---" * (len(FLOOR_COLUMNS) + 4) + "|"]
    for who, by_task in floors.items():
        for task in sorted(by_task, key=lambda t: t != "all"):
            f = by_task[task]
            cells = [_with_ci(f, key) for key, _ in FLOOR_COLUMNS] + [_with_ci(f, "reference_talk_over")]
            lines.append(f"| {who} | {task} | " + " | ".join(cells) + f" | {f['samples']} |")
    return "\n".join(lines)


def frontier_points(baseline_by_threshold: dict[float, dict[str, dict]]) -> list[dict]:
    """The baseline at each threshold: pause take-over and turn-taking latency, with their intervals."""
    points = []
    for t, agg in sorted(baseline_by_threshold.items()):
        pause, turn = agg.get("pause_handling", {}), agg.get("smooth_turn_taking", {})
        points.append({"threshold": t, "pause_takeover": pause.get("takeover"),
                       "ci_pause_takeover": pause.get("ci_takeover"),
                       "turn_taking_latency": turn.get("latency"), "ci_turn_taking_latency": turn.get("ci_latency"),
                       "turn_taking_takeover": turn.get("takeover")})
    return points


def _at(xs: list[float], ys: list[float], x: float) -> float:
    """The curve through (xs, ys) (xs ascending) at x: linear between points, its first point's y before it."""
    return ys[0] if x <= xs[0] else float(np.interp(x, xs, ys))


def frontier_verdict(points: list[dict], model: dict[str, dict]) -> dict | None:
    """Where the model's point lies against a baseline's frontier: the frontier's pause take-over at the
    model's turn-taking latency (linear between its points; a baseline cannot answer faster than its fastest
    point, so below that latency its fastest point's take-over), and whether the model's take-over is below
    it (`inside`) and so is the upper end of its 95% interval (`strictly`). Both also ask that the model
    answer turn ends (take the turn) at least as often as the frontier does there: a model that seldom
    speaks takes over few pauses, and its latency is that of the few turns it took. None without both points."""
    pts = sorted((p["turn_taking_latency"], p["pause_takeover"], p.get("turn_taking_takeover")) for p in points
                 if p["turn_taking_latency"] is not None and p["pause_takeover"] is not None)
    pause, turn = model.get("pause_handling", {}), model.get("smooth_turn_taking", {})
    latency, takeover = turn.get("latency"), pause.get("takeover")
    if not pts or latency is None or takeover is None:
        return None
    xs = [x for x, _, _ in pts]
    bound = _at(xs, [y for _, y, _ in pts], latency)
    answers = [a for _, _, a in pts]
    frontier_answers = _at(xs, answers, latency) if None not in answers else None
    model_answers = turn.get("takeover")
    answering = frontier_answers is None or (model_answers is not None and model_answers >= frontier_answers)
    upper = (pause.get("ci_takeover") or (takeover, takeover))[1]
    return {"latency": latency, "takeover": takeover, "frontier_takeover": bound, "answers": model_answers,
            "frontier_answers": frontier_answers, "inside": answering and takeover < bound,
            "strictly": answering and upper < bound}


@dataclasses.dataclass
class Baseline:
    """One baseline's sweep: aggregated scores per threshold, the threshold its table shows, its unit."""
    key: str  # its entry in results.json
    name: str
    by_threshold: dict[float, dict[str, dict]]
    headline: float
    unit: str  # "s": a silence threshold; "p": an end-of-turn probability threshold

    def label(self, t: float) -> str:
        return f"{int(round(t * 1000))} ms" if self.unit == "s" else f"p > {t:g}"


def _split(key: str) -> tuple[str, str]:
    task, metric = key.split("/")
    return task, metric


def write(out_dir, *, model_rows, model_by_task, baselines: Sequence[Baseline], floors: dict[str, dict],
          extra: dict, timelines: Sequence[Path] = ()) -> dict:
    """Writes report.md, results.json, frontier.png and latencies.png; returns the results. The first of
    `baselines` is the one the task table compares with; `floors` maps an output's name to its
    `benchmark.floor_by_task`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    headline = {k: model_by_task.get(_split(k)[0], {}).get(_split(k)[1]) for k in HEADLINE}
    headline_ci = {k: model_by_task.get(_split(k)[0], {}).get(f"ci_{_split(k)[1]}") for k in HEADLINE}
    results = {"headline": headline, "headline_ci": headline_ci, "model": model_by_task, "floor": floors,
               "samples": model_rows, **extra}
    for b in baselines:
        results[b.key] = {str(t): v for t, v in b.by_threshold.items()}
        results["frontier" if b.key == "baseline" else f"{b.key}_frontier"] = frontier_points(b.by_threshold)
        results[f"{b.key}_verdict"] = frontier_verdict(frontier_points(b.by_threshold), model_by_task)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    frontier.plot_frontier({b.name: (frontier_points(b.by_threshold), b.unit) for b in baselines}, model_by_task,
                  out / "frontier.png")
    frontier.plot_latencies(model_rows, out / "latencies.png")
    lines = ["# Duplex benchmark", ""]
    lines += [f"- {k}: {_fmt(v)}" for k, v in extra.get("about", {}).items()]
    lines += ["", "Every rate and mean carries its 95% bootstrap interval over samples.", "",
              "## Headline", "", "| metric | model [95% CI] |", "|---|---|"]
    lines += [f"| {k} | {_with_ci(model_by_task.get(_split(k)[0], {}), _split(k)[1])} |" for k in HEADLINE]
    model_point = (f"| **model** | {_with_ci(model_by_task.get('pause_handling', {}), 'takeover')} | "
                   f"{_with_ci(model_by_task.get('smooth_turn_taking', {}), 'latency')} |")
    for b in (b for b in baselines if b.by_threshold):
        lines += ["", f"## Against the {b.name}", "",
                  "| threshold | pause take-over [95% CI] | turn-taking latency (s) [95% CI] |", "|---|---|---|"]
        for p in frontier_points(b.by_threshold):
            pause = {"v": p["pause_takeover"], "ci_v": p["ci_pause_takeover"]}
            turn = {"v": p["turn_taking_latency"], "ci_v": p["ci_turn_taking_latency"]}
            lines.append(f"| {b.label(p['threshold'])} | {_with_ci(pause, 'v')} | {_with_ci(turn, 'v')} |")
        lines.append(model_point)
        verdict = results[f"{b.key}_verdict"]
        if verdict:
            where = ("strictly inside (its whole interval below)" if verdict["strictly"] else
                     "inside" if verdict["inside"] else "outside")
            lines += ["", f"The model is {where} this frontier: pause take-over {verdict['takeover']:.3f} at "
                      f"{verdict['latency']:.3f} s, where the frontier takes over {verdict['frontier_takeover']:.3f}."]
            if verdict["frontier_answers"] is not None:
                lines[-1] += (f" It takes the turn at {verdict['answers'] or 0:.3f} of the turn ends, the frontier "
                              f"there at {verdict['frontier_answers']:.3f} (fewer is outside: silence takes over no "
                              "pause).")
    lines += ["", "![frontier](frontier.png)", ""]
    if floors:
        lines += ["## The floor, frame by frame", "",
                  "Speech activity (Silero) of each output against the reference model channel, in 20 ms frames; "
                  "talk-over leaves out labelled interruptions.", "", floor_table(floors), ""]
    if baselines and baselines[0].by_threshold:
        first = baselines[0]
        lines += [f"## Every task ({first.name} at {first.label(first.headline)})", "",
                  task_table(model_by_task, first.by_threshold.get(first.headline)), ""]
    else:
        lines += ["## Every task", "", task_table(model_by_task, None), ""]
    lines += ["![latencies](latencies.png)", ""]
    if timelines:
        lines += ["## Sample sessions", ""] + [f"![{p.stem}]({p.name})" for p in timelines]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return results
