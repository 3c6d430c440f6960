"""95% bootstrap intervals over samples, for every rate and mean the benchmark reports.

A statistic is computed from per-sample rows of additive counts (a mean is the row [value, 1]; a
precision the rows [true positives, false positives]); resampling the samples with replacement and
recomputing it gives the percentile interval. Samples, not frames or words, are the unit resampled: the
frames of one conversation are not independent draws.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95


def interval(rows, statistic: Callable[[np.ndarray], np.ndarray], *, resamples: int = RESAMPLES,
             seed: int = 0) -> tuple[float, float] | None:
    """(low, high) of `statistic` over bootstrap resamples of `rows` ((n, k) per-sample counts);
    `statistic` maps summed counts (..., k) to values (...), NaN where undefined. None without samples."""
    rows = np.asarray(rows, np.float64)
    if rows.ndim != 2 or len(rows) == 0:
        return None
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(rows), (resamples, len(rows)))
    weights = np.zeros((resamples, len(rows)))
    np.add.at(weights, (np.arange(resamples)[:, None], picks), 1.0)
    values = np.asarray(statistic(weights @ rows), np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    tail = 100 * (1 - LEVEL) / 2
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))


def _mean(sums: np.ndarray) -> np.ndarray:
    return sums[..., 0] / sums[..., 1]


def rate(rows) -> dict:
    """A pooled rate of per-sample [count, out of] rows ((n, 2)): {"value", "ci", "n" (the total out of)};
    NaN and no interval where nothing was counted."""
    rows = np.asarray(rows, np.float64).reshape(-1, 2)
    total = rows.sum(0)
    value = float(total[0] / total[1]) if total[1] else float("nan")
    ci = interval(rows, lambda s: np.where(s[..., 1] > 0, s[..., 0] / np.maximum(s[..., 1], 1e-12), np.nan))
    return {"value": value, "ci": ci, "n": float(total[1])}


def mean_interval(values: Sequence[float], **kw) -> tuple[float, float] | None:
    """Interval of the mean of per-sample `values`."""
    values = np.asarray(values, np.float64)
    return interval(np.stack([values, np.ones_like(values)], axis=1), _mean, **kw) if values.size else None
