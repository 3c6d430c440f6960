"""Timing statistics of a corpus, measured from its labels, beside the configured distributions."""
from __future__ import annotations

import numpy as np

from interaction.data.conversation import Conversation

# measure -> (event kind, how to read the value)
_MEASURES = {
    "gap": ("model_turn", lambda e: e.data.get("gap")),
    "pause": ("pause", lambda e: e.end - e.start),
    "overlap": ("user_turn", lambda e: e.data.get("overlap")),
    "stop_latency": ("model_stop", lambda e: e.data.get("latency")),
    "interrupt_offset": ("interruption", lambda e: e.data.get("offset")),
    "background_db": ("background_speech", lambda e: e.data.get("level_db")),
    "reasoner_latency": ("delegation", lambda e: e.end - e.start),
    "translation_lag": ("translation", lambda e: e.data.get("lag")),
}


def summary(conv: Conversation) -> dict:
    """Per-conversation figures kept in the manifest."""
    values = {name: [] for name in _MEASURES}
    for e in conv.events:
        for name, (kind, read) in _MEASURES.items():
            if kind in (None, e.kind):
                v = read(e)
                if v is not None:
                    values[name].append(round(float(v), 4))
    counts: dict[str, int] = {}
    for e in conv.events:
        counts[e.kind] = counts.get(e.kind, 0) + 1
    return {"id": conv.id, "kind": conv.kind, "duration": round(conv.duration, 3), "events": counts,
            "measures": {k: v for k, v in values.items() if v}}


def _describe(xs: list[float]) -> dict:
    a = np.asarray(xs, np.float64)
    return {"n": int(a.size), "median": float(np.median(a)), "mean": float(a.mean()),
            "p10": float(np.percentile(a, 10)), "p90": float(np.percentile(a, 90)),
            "min": float(a.min()), "max": float(a.max())}


def configured(timing) -> dict:
    """The distributions each measure was drawn from, in words and numbers."""
    return {
        "gap": f"lognormal median {timing.gap_median} s, sigma {timing.gap_sigma}, clipped to [0.05, 1.5]",
        "pause": f"uniform [{timing.pause_min}, {timing.pause_max}] s",
        "overlap": f"lognormal median {timing.overlap_median} s, sigma {timing.overlap_sigma}, clipped to [0.05, 1.0], "
                   f"in {timing.overlap_prob:.0%} of user turn starts",
        "stop_latency": f"lognormal median {timing.stop_latency_median} s, sigma {timing.stop_latency_sigma} "
                        "(the model talks over an interruption this long), rounded up to the end of its micro-turn",
        "interrupt_offset": f"uniform [{timing.interrupt_min}, {timing.interrupt_max}] s into the model's speech",
        "background_db": f"uniform [-{timing.background_db_max}, -{timing.background_db_min}] dB re the user "
                         "(side-talk replies at -12 dB)",
        "reasoner_latency": f"uniform [{timing.reasoner_latency_min}, {timing.reasoner_latency_max}] s, "
                            "rounded up to a micro-turn",
        "translation_lag": "gap + uniform [0.2, 0.6] s after each source sentence",
    }


def aggregate(summaries: list[dict], timing) -> dict:
    """Per-kind counts and distributions of every measure, plus the configured ones."""
    by_kind: dict[str, dict] = {}
    for s in summaries:
        k = by_kind.setdefault(s["kind"], {"count": 0, "seconds": 0.0, "measures": {}})
        k["count"] += 1
        k["seconds"] += s["duration"]
        for name, vals in s["measures"].items():
            k["measures"].setdefault(name, []).extend(vals)
    everything: dict[str, list] = {}
    for k in by_kind.values():
        for name, vals in k["measures"].items():
            everything.setdefault(name, []).extend(vals)
        k["measures"] = {name: _describe(v) for name, v in sorted(k["measures"].items())}
    return {"kinds": dict(sorted(by_kind.items())),
            "all": {name: _describe(v) for name, v in sorted(everything.items())},
            "configured": configured(timing)}


def format_table(statistics: dict) -> str:
    """The per-kind table make_corpus prints: count, hours, and median [p10-p90] of each measure."""
    names = ["gap", "pause", "overlap", "stop_latency", "interrupt_offset", "background_db"]
    header = f"{'kind':<18}{'count':>6}{'seconds':>8}" + "".join(f"{n:>29}" for n in names)
    lines = [header, "-" * len(header)]

    def cell(m):
        return f"{m['median']:.2f} [{m['p10']:.2f}, {m['p90']:.2f}] n={m['n']}" if m else "-"

    for kind, k in statistics["kinds"].items():
        lines.append(f"{kind:<18}{k['count']:>6}{k['seconds']:>8.0f}"
                     + "".join(f"{cell(k['measures'].get(n)):>29}" for n in names))
    total = sum(k["count"] for k in statistics["kinds"].values())
    secs = sum(k["seconds"] for k in statistics["kinds"].values())
    lines.append(f"{'all':<18}{total:>6}{secs:>8.0f}" + "".join(f"{cell(statistics['all'].get(n)):>29}" for n in names))
    lines.append("")
    lines.append("cells: median [p10, p90] n. Over all kinds (median [p10, p90], min-max) against the configuration:")
    for name, text in statistics["configured"].items():
        m = statistics["all"].get(name)
        got = f"{m['median']:.3f} [{m['p10']:.3f}, {m['p90']:.3f}], {m['min']:.3f}-{m['max']:.3f}" if m else "none"
        lines.append(f"  {name:<17} measured {got:<40} configured {text}")
    return "\n".join(lines)
