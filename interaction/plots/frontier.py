"""The duplex benchmark's figures: the pause take-over vs turn-taking latency frontier of each turn-based
baseline with the model's point on it, and histograms of the model's latencies."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _errorbar(ax, x, y, ci_x, ci_y, **kw):
    xerr = None if ci_x is None else [[x - ci_x[0]], [ci_x[1] - x]]
    yerr = None if ci_y is None else [[y - ci_y[0]], [ci_y[1] - y]]
    ax.errorbar([x], [y], xerr=xerr, yerr=yerr, capsize=2, elinewidth=0.8, **kw)


def plot_frontier(frontiers: dict[str, tuple[list[dict], str]], model: dict[str, dict], path: Path) -> None:
    """Each baseline's frontier (points with 95% intervals, labelled by threshold) and the model's point."""
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    colours = iter(("tab:gray", "tab:blue", "tab:green", "tab:purple"))
    for name, (points, unit) in frontiers.items():
        pts = [p for p in points if p["pause_takeover"] is not None and p["turn_taking_latency"] is not None]
        if not pts:
            continue
        colour = next(colours)
        ax.plot([p["turn_taking_latency"] for p in pts], [p["pause_takeover"] for p in pts], "-", color=colour,
                label=name, alpha=0.8)
        for p in pts:
            _errorbar(ax, p["turn_taking_latency"], p["pause_takeover"], p["ci_turn_taking_latency"],
                      p["ci_pause_takeover"], fmt="o", color=colour, markersize=4)
            label = f"{int(p['threshold'] * 1000)} ms" if unit == "s" else f"p>{p['threshold']:g}"
            ax.annotate(label, (p["turn_taking_latency"], p["pause_takeover"]), textcoords="offset points",
                        xytext=(4, 4), fontsize=7, color=colour)
    pause, turn = model.get("pause_handling", {}), model.get("smooth_turn_taking", {})
    if pause.get("takeover") is not None and turn.get("latency") is not None:
        _errorbar(ax, turn["latency"], pause["takeover"], turn.get("ci_latency"), pause.get("ci_takeover"),
                  fmt="*", color="tab:red", markersize=14, label="model")
    ax.set_xlabel("turn-taking latency (s), lower is faster")
    ax.set_ylabel("pause take-over rate, lower is politer")
    ax.set_title("Answering fast vs barging into pauses (95% intervals)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_latencies(rows: Sequence[dict], path: Path) -> None:
    series = {"turn-taking latency": [r["latency"] for r in rows if r["task"] == "smooth_turn_taking"],
              "interruption latency": [r["latency"] for r in rows if r["task"] == "user_interruption"],
              "stop latency": [r.get("stop_latency") for r in rows],
              "response latency": [r.get("response_latency") for r in rows]}
    fig, axes = plt.subplots(1, len(series), figsize=(3.2 * len(series), 3))
    for ax, (name, values) in zip(axes, series.items()):
        values = [v for v in values if v is not None]
        ax.hist(values, bins=12, color="tab:blue", alpha=0.8)
        ax.set_title(f"{name} (n={len(values)})", fontsize=9)
        ax.set_xlabel("s")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
