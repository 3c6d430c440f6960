"""Learning curves: floor-probe figures of a run's kept checkpoints against their training step."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_learning_curves(runs: dict[str, list[dict]], figures: Sequence[str], path: Path) -> None:
    """One panel per figure; in each, every run's value against its step with the 95% interval as a band.
    `runs`: a name -> that run's probe results (`experiments.probe_floor`'s JSON: step, figures)."""
    cols = min(4, len(figures))
    rows = -(-len(figures) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 2.6 * rows), squeeze=False)
    for ax, name in zip(axes.flat, figures):
        for run, probes in runs.items():
            points = sorted((p["step"], p["figures"][name]) for p in probes if name in p["figures"])
            if not points:
                continue
            steps = [s for s, _ in points]
            line, = ax.plot(steps, [f["value"] for _, f in points], "o-", markersize=3, label=run)
            bands = [(s, f["ci"]) for s, f in points if f.get("ci")]
            if bands:
                ax.fill_between([s for s, _ in bands], [c[0] for _, c in bands], [c[1] for _, c in bands],
                                color=line.get_color(), alpha=0.2)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(figures):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
