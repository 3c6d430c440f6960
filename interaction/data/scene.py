"""Synthetic video: coloured shapes drifting on a plain background, with scripted changes (cues).

A change (a shape appears, vanishes or changes colour) is a visual cue with an exact time; between
changes the shapes only drift, so the cue is the only event a model should remark on.
"""
from __future__ import annotations

import dataclasses

import numpy as np

COLOURS = {
    "red": (220, 40, 40), "green": (40, 180, 60), "blue": (50, 80, 220),
    "yellow": (235, 210, 40), "purple": (150, 60, 190), "orange": (245, 140, 30),
}
KINDS = ("circle", "square", "triangle")
_BACKGROUND = (235, 235, 230)


@dataclasses.dataclass
class Shape:
    kind: str
    colour: str
    x: float  # centre, as a fraction of the frame
    y: float
    size: float  # radius, as a fraction of the frame
    vx: float  # fraction of the frame per second
    vy: float


@dataclasses.dataclass(frozen=True)
class Change:
    """At `time`, `action` ('appear' | 'vanish' | 'recolour') applies to `shape` (index or new Shape)."""

    time: float
    action: str
    shape: Shape | int
    colour: str | None = None
    description: str = ""


def random_shape(rng: np.random.Generator, avoid_colours=()) -> Shape:
    colours = [c for c in COLOURS if c not in avoid_colours] or list(COLOURS)
    return Shape(
        kind=str(rng.choice(KINDS)), colour=str(rng.choice(colours)),
        x=float(rng.uniform(0.25, 0.75)), y=float(rng.uniform(0.25, 0.75)), size=float(rng.uniform(0.1, 0.16)),
        vx=float(rng.uniform(-0.05, 0.05)), vy=float(rng.uniform(-0.05, 0.05)),
    )


def _mask(shape: Shape, t: float, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    # Bounce inside the frame: a triangle wave keeps the motion smooth and deterministic.
    def bounce(p0, v):
        lo, hi = shape.size, 1.0 - shape.size
        p = (p0 - lo + v * t) % (2 * (hi - lo))
        return lo + (p if p <= hi - lo else 2 * (hi - lo) - p)

    cx, cy, r = bounce(shape.x, shape.vx), bounce(shape.y, shape.vy), shape.size
    if shape.kind == "circle":
        return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    if shape.kind == "square":
        return (np.abs(xx - cx) <= r * 0.85) & (np.abs(yy - cy) <= r * 0.85)
    # triangle pointing up
    return (yy <= cy + r * 0.8) & (yy >= cy - r) & (np.abs(xx - cx) <= (yy - (cy - r)) * 0.6)


def render(shapes: list[Shape], changes: list[Change], duration: float, fps: float, size: int,
           rng: np.random.Generator) -> np.ndarray:
    """(ceil(duration * fps), size, size, 3) uint8 frames; frame i shows the scene at time i / fps."""
    n = int(np.ceil(duration * fps - 1e-9))
    grid = (np.arange(size) + 0.5) / size
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    frames = np.empty((n, size, size, 3), np.uint8)
    noise = rng.integers(-6, 7, size=(size, size, 3))
    live = list(shapes)
    pending = sorted(changes, key=lambda c: c.time)
    for i in range(n):
        t = i / fps
        while pending and pending[0].time <= t:
            c = pending.pop(0)
            if c.action == "appear":
                live.append(c.shape)
            elif c.action == "vanish":
                live[c.shape] = None
            else:  # recolour
                live[c.shape] = dataclasses.replace(live[c.shape], colour=c.colour)
        frame = np.empty((size, size, 3), np.int16)
        frame[:] = _BACKGROUND
        for s in live:
            if s is not None:
                frame[_mask(s, t, yy, xx)] = COLOURS[s.colour]
        frames[i] = np.clip(frame + np.roll(noise, i, axis=1), 0, 255)
    return frames
