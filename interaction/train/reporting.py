"""Where a run's numbers go: the console (step rate, ETA), `metrics.jsonl`, and TensorBoard events.

Every process prints; only process 0 writes files. On resume, JSON lines past the restored step (written
by the interrupted run after its last checkpoint) are dropped, so the file reads as one clean run.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import jax
import numpy as np
import tensorboardX

METRICS_FILE = "metrics.jsonl"


def flatten(metrics: dict) -> dict[str, float]:
    """Scalars as floats; a vector `v` (e.g. per-expert load) becomes `v/0`, `v/1`, ..."""
    out = {}
    for name, value in metrics.items():
        value = np.asarray(value)
        if value.ndim == 0:
            out[name] = float(value)
        else:
            out.update({f"{name}/{i}": float(v) for i, v in enumerate(value.reshape(-1))})
    return out


def read_metrics(workdir, split: str | None = None) -> list[dict]:
    path = Path(workdir) / METRICS_FILE
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if split is None or r["split"] == split]


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class Reporter:
    def __init__(self, workdir, *, total_steps: int, start_step: int):
        self.total_steps = total_steps
        self.writes = jax.process_index() == 0
        self._prefix = f"[process {jax.process_index()}] " if jax.process_count() > 1 else ""
        self._mark = (time.perf_counter(), start_step)
        self._path = Path(workdir) / METRICS_FILE
        self._tb = None
        if self.writes:
            kept = [r for r in read_metrics(workdir) if r["step"] <= start_step]
            self._path.write_text("".join(json.dumps(r) + "\n" for r in kept))
            self._tb = tensorboardX.SummaryWriter(str(Path(workdir) / "tensorboard"))

    def restart_clock(self, step: int) -> None:
        """Measures the next step rate from here (call it once the first, compiling, step is done)."""
        self._mark = (time.perf_counter(), step)

    def print(self, message: str) -> None:
        print(self._prefix + message, flush=True)

    def write(self, step: int, split: str, metrics: dict) -> dict[str, float]:
        """Appends one JSON line and the TensorBoard scalars `split/name`; returns the flat metrics."""
        flat = flatten(metrics)
        if self.writes:
            with self._path.open("a") as f:
                f.write(json.dumps({"step": step, "split": split, "time": time.time(), **flat}) + "\n")
            for name, value in flat.items():
                self._tb.add_scalar(f"{split}/{name}", value, step)
        return flat

    def progress(self, step: int, flat: dict[str, float]) -> None:
        """A console line: step, rate and ETA since the previous line, and the main losses."""
        now = time.perf_counter()
        then, then_step = self._mark
        rate = (step - then_step) / max(now - then, 1e-9)
        self._mark = (now, step)
        eta = _duration((self.total_steps - step) / rate) if rate > 0 else "?"
        shown = " ".join(f"{k} {flat[k]:.4f}" for k in ("loss", "text_loss", "flow_loss", "prior_loss",
                                                             "text_alone_loss", "balance_loss") if k in flat)
        self.print(f"step {step}/{self.total_steps} ({100 * step / self.total_steps:.0f}%) {rate:.2f} steps/s "
                   f"ETA {eta} | {shown}")

    def audio(self, tag: str, wave: np.ndarray, step: int, sample_rate: int) -> None:
        if self.writes:
            self._tb.add_audio(tag, np.clip(np.asarray(wave, np.float32), -1.0, 1.0), step, sample_rate=sample_rate)

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        """`image` (H, W, 3 or 4) float in [0, 1], as matplotlib reads a PNG."""
        if self.writes:
            self._tb.add_image(tag, np.asarray(image)[..., :3], step, dataformats="HWC")

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
