"""Frame-level floor metrics: who speaks in every 20 ms frame, the model's output against the reference.

Word-based scores need words; these need only voice activity (Silero's segments of each channel), so they
mean something even while a model babbles. Per sample, counted on a grid of `FRAME_S` frames:
- precision, recall and F1 of the output's speech frames against the reference model channel's;
- talk-over: the share of the user's speech frames (the input's) in which the output speaks, leaving out
  labelled interruptions (where speaking over the user is the scenario); the reference's own share beside
  it says how much overlap the conversations really hold;
- the output's level while the reference is silent (RMS re full scale, dBFS): a model that hums or
  breathes loudly where it should be quiet shows here even when the voice-activity detector calls it silence.
Counts are added over samples before the ratios are taken, and intervals resample samples.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from interaction import SAMPLE_RATE
from interaction.evals import intervals

FRAME_S = 0.02
COUNTS = ("frames", "tp", "fp", "fn", "user", "talk_over", "reference_talk_over", "quiet_energy", "quiet_samples")
Segment = tuple[float, float]


def activity(segments: Sequence[Segment], frames: int) -> np.ndarray:
    """(frames,) bool: whether each frame's centre lies inside one of `segments`."""
    centres = (np.arange(frames) + 0.5) * FRAME_S
    on = np.zeros(frames, bool)
    for a, b in segments:
        on |= (centres >= a) & (centres < b)
    return on


def sample_counts(output_wave: np.ndarray, output_segments: Sequence[Segment], input_segments: Sequence[Segment],
                  reference_segments: Sequence[Segment] | None, excluded: Sequence[Segment] = ()) -> dict:
    """Additive counts of one sample (`COUNTS`, and `has_reference`); the reference's are zero without one."""
    frames = int(np.ceil(len(output_wave) / SAMPLE_RATE / FRAME_S - 1e-9))
    out = activity(output_segments, frames)
    user = activity(input_segments, frames) & ~activity(excluded, frames)
    counts: dict = dict.fromkeys(COUNTS, 0.0)
    counts["has_reference"] = False
    counts.update(frames=float(frames), user=float(user.sum()), talk_over=float((user & out).sum()))
    if reference_segments is not None:
        ref = activity(reference_segments, frames)
        per_frame = round(FRAME_S * SAMPLE_RATE)
        quiet = np.repeat(~ref, per_frame)[: len(output_wave)]
        x = np.asarray(output_wave, np.float64)[: len(quiet)]
        counts["has_reference"] = True
        counts.update(tp=float((out & ref).sum()), fp=float((out & ~ref).sum()), fn=float((~out & ref).sum()),
                      reference_talk_over=float((user & ref).sum()),
                      quiet_energy=float(np.sum(np.square(x[quiet]))), quiet_samples=float(quiet.sum()))
    return counts


def _ratio(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)


def _count(sums: np.ndarray, name: str) -> np.ndarray:
    return sums[..., COUNTS.index(name)]


def _quiet_dbfs(s):
    mean_square = _ratio(_count(s, "quiet_energy"), _count(s, "quiet_samples"))
    with np.errstate(divide="ignore"):
        return np.maximum(10 * np.log10(mean_square), -120.0)


# metric: summed counts (..., len(COUNTS)) -> value (...), NaN where undefined
_METRICS = {
    "f1": lambda s: _ratio(2 * _count(s, "tp"), 2 * _count(s, "tp") + _count(s, "fp") + _count(s, "fn")),
    "precision": lambda s: _ratio(_count(s, "tp"), _count(s, "tp") + _count(s, "fp")),
    "recall": lambda s: _ratio(_count(s, "tp"), _count(s, "tp") + _count(s, "fn")),
    "talk_over": lambda s: _ratio(_count(s, "talk_over"), _count(s, "user")),
    "reference_talk_over": lambda s: _ratio(_count(s, "reference_talk_over"), _count(s, "user")),
    "quiet_dbfs": _quiet_dbfs,
}
METRICS = tuple(_METRICS)
_NEEDS_REFERENCE = {"f1", "precision", "recall", "reference_talk_over", "quiet_dbfs"}


def summarize(samples: Sequence[dict]) -> dict:
    """Every metric over `samples` (dicts of counts) with `ci_<metric>` intervals and the sample count;
    a metric without the counts it needs (no reference, no user speech) is None."""
    rows = np.array([[s[k] for k in COUNTS] for s in samples], np.float64).reshape(-1, len(COUNTS))
    with_reference = rows[np.array([s.get("has_reference", False) for s in samples], bool)]
    out: dict = {"samples": len(rows)}
    for name in METRICS:
        used = with_reference if name in _NEEDS_REFERENCE else rows
        value = _METRICS[name](used.sum(0)) if len(used) else np.nan
        out[name] = float(value) if np.isfinite(value) else None
        out[f"ci_{name}"] = intervals.interval(used, _METRICS[name]) if out[name] is not None else None
    return out


def of_waves(output_wave: np.ndarray, input_wave: np.ndarray, reference_wave: np.ndarray | None, vad,
             excluded: Sequence[Segment] = ()) -> dict:
    """`sample_counts` of one session from its waveforms (16 kHz, the reference cropped to the output),
    the speech segments found by `vad` (a `vad.SileroVad`)."""
    reference = None if reference_wave is None else vad.segments(reference_wave[: len(output_wave)])
    return sample_counts(output_wave, vad.segments(output_wave), vad.segments(input_wave[: len(output_wave)]),
                         reference, excluded)
