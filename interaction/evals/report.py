"""The benchmark report: `report.md`, `results.json` and figures.

Figures: the pause take-over vs turn-taking latency frontier of the turn-based baseline with the model's
point on it, histograms of the model's latencies (turn-taking, interruption, stop, response), and
timelines of sample sessions (what the user said, what the model said and the labelled events).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

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


def task_table(model: dict[str, dict], base: dict[str, dict] | None) -> str:
    lines = ["| task | metric | model | turn-based baseline | samples |", "|---|---|---|---|---|"]
    for task, scores in model.items():
        for key, label in COLUMNS:
            if key in scores:
                b = (base or {}).get(task, {}).get(key)
                lines.append(f"| {task} | {label} | {_fmt(scores[key])} | {_fmt(b)} | {scores.get(f'n_{key}', scores['samples'])} |")
    return "\n".join(lines)


def frontier_points(baseline_by_threshold: dict[float, dict[str, dict]]) -> list[tuple[float, float, float]]:
    """(threshold, pause take-over, turn-taking latency) of the baseline at each silence threshold."""
    return [(t, agg.get("pause_handling", {}).get("takeover"), agg.get("smooth_turn_taking", {}).get("latency"))
            for t, agg in sorted(baseline_by_threshold.items())]


def plot_frontier(points, model: dict[str, dict], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 4))
    pts = [(t, x, y) for t, x, y in points if x is not None and y is not None]
    ax.plot([y for _, _, y in pts], [x for _, x, _ in pts], "o-", color="tab:gray", label="turn-based baseline")
    for t, x, y in pts:
        ax.annotate(f"{int(t * 1000)} ms", (y, x), textcoords="offset points", xytext=(4, 4), fontsize=8)
    mx = model.get("pause_handling", {}).get("takeover")
    my = model.get("smooth_turn_taking", {}).get("latency")
    if mx is not None and my is not None:
        ax.plot([my], [mx], "*", color="tab:red", markersize=14, label="model")
    ax.set_xlabel("turn-taking latency (s), lower is faster")
    ax.set_ylabel("pause take-over rate, lower is politer")
    ax.set_title("Answering fast vs barging into pauses")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_latencies(rows: Sequence[dict], path: Path) -> None:
    series = {"turn-taking latency": [r["latency"] for r in rows if r["task"] == "smooth_turn_taking"],
              "interruption latency": [r["latency"] for r in rows if r["task"] == "user_interruption"],
              "stop latency": [r.get("stop_latency") for r in rows], "response latency": [r.get("response_latency") for r in rows]}
    fig, axes = plt.subplots(1, len(series), figsize=(3.2 * len(series), 3))
    for ax, (name, values) in zip(axes, series.items()):
        values = [v for v in values if v is not None]
        ax.hist(values, bins=12, color="tab:blue", alpha=0.8)
        ax.set_title(f"{name} (n={len(values)})", fontsize=9)
        ax.set_xlabel("s")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(out_dir, *, model_rows, model_by_task, baseline_by_threshold, headline_threshold, extra: dict,
          timelines: Sequence[Path] = ()) -> dict:
    """Writes report.md, results.json, frontier.png and latencies.png; returns the results."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    points = frontier_points(baseline_by_threshold)
    base = baseline_by_threshold.get(headline_threshold)
    headline = {k: model_by_task.get(k.split("/")[0], {}).get(k.split("/")[1]) for k in HEADLINE}
    results = {"headline": headline, "model": model_by_task, "baseline": {str(t): v for t, v in baseline_by_threshold.items()},
               "frontier": [{"threshold": t, "pause_takeover": x, "turn_taking_latency": y} for t, x, y in points],
               "samples": model_rows, **extra}
    (out / "results.json").write_text(json.dumps(results, indent=1))
    plot_frontier(points, model_by_task, out / "frontier.png")
    plot_latencies(model_rows, out / "latencies.png")
    lines = ["# Duplex benchmark", ""]
    lines += [f"- {k}: {_fmt(v)}" for k, v in extra.get("about", {}).items()]
    lines += ["", "## Headline", "", "| metric | model |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in headline.items()]
    lines += ["", "## Against the turn-based baseline", "",
              "| silence threshold | pause take-over | turn-taking latency (s) |", "|---|---|---|"]
    lines += [f"| {int(t * 1000)} ms | {_fmt(x)} | {_fmt(y)} |" for t, x, y in points]
    lines += [f"| **model** | {_fmt(headline['pause_handling/takeover'])} | {_fmt(headline['smooth_turn_taking/latency'])} |",
              "", "![frontier](frontier.png)", "",
              f"## Every task (baseline at {int(headline_threshold * 1000)} ms)", "", task_table(model_by_task, base), "",
              "![latencies](latencies.png)", ""]
    if timelines:
        lines += ["## Sample sessions", ""] + [f"![{p.stem}]({p.name})" for p in timelines]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return results
