"""A timeline picture of one conversation: both audio channels with their words, events, text and video.

`render_timeline(conv, path)` writes a PNG with five rows on one time axis (seconds; 1 s major ticks and
the 0.2 s micro-turn grid as faint minor ticks):

  user    the user channel's RMS envelope (10 ms windows) as a filled band, and its words as boxes
  model   the same for the model channel
  events  one lane per event kind present, its label in the kind's colour (the legend): spans as
          coloured bars, zero-length events as markers
  text    text items, one lane per channel ('typed', 'result', 'delegate', ...), with truncated labels
  video   a strip of thumbnails, each drawn from the frame's time over a width that keeps its aspect

Matplotlib is used through `Figure` + `FigureCanvasAgg`, never pyplot, so the global backend of the
calling process is left alone.
"""
from __future__ import annotations

import os
import zlib

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import to_rgba
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MultipleLocator

from interaction import SAMPLE_RATE
from interaction.data.conversation import EVENT_KINDS, Conversation

MICRO_TURN = 0.2  # s: minor grid
RMS_WINDOW = 0.01  # s
INCH_PER_SECOND = 1.2
MIN_WIDTH, MAX_WIDTH = 8.0, 40.0
DPI = 100
MAX_THUMBNAILS = 12
LEFT_IN, RIGHT_IN = 1.7, 0.25  # margins in inches, so the plot width is proportional to the figure width

# Known kinds (conversation.EVENT_KINDS) get distinct tab20 colours (dark shades first, then light); any
# other kind hashes into tab20.
_TAB20_ORDER = tuple(range(0, 20, 2)) + tuple(range(1, 20, 2))
_CHANNEL_STYLE = {  # text channel -> (marker, colour)
    "typed": ("s", "tab:blue"),
    "result": ("D", "tab:green"),
    "delegate": ("^", "tab:red"),
}
_USER_COLOUR, _MODEL_COLOUR = "tab:blue", "tab:orange"


def kind_colour(kind: str):
    """A stable RGBA colour for an event kind (independent of Python's string hash salt)."""
    tab20 = colormaps["tab20"]
    if kind in EVENT_KINDS:
        return tab20(_TAB20_ORDER[EVENT_KINDS.index(kind)])
    return tab20(zlib.crc32(kind.encode()) % 20)


def _channel_style(channel: str):
    if channel in _CHANNEL_STYLE:
        return _CHANNEL_STYLE[channel]
    return "o", colormaps["tab20"](zlib.crc32(channel.encode()) % 20)


def _readable(colour):
    """`colour` darkened enough to be legible as text on white (tab20's light shades are not)."""
    r, g, b, _ = to_rgba(colour)
    k = min(1.0, 0.55 / max(0.299 * r + 0.587 * g + 0.114 * b, 1e-6))  # cap the luma at 0.55
    return (r * k, g * k, b * k)


def _truncate(text: str, n: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _rms_envelope(x: np.ndarray, start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
    """(times, rms) per RMS_WINDOW over [start, end]; times are window centres."""
    win = int(round(RMS_WINDOW * SAMPLE_RATE))
    a, b = max(0, int(start * SAMPLE_RATE)), min(len(x), int(np.ceil(end * SAMPLE_RATE)))
    a -= a % win
    n = (b - a) // win
    if n <= 0:
        return np.zeros(0), np.zeros(0)
    seg = np.asarray(x[a: a + n * win], np.float32).reshape(n, win)
    rms = np.sqrt(np.mean(seg * seg, axis=1))
    times = (a + win * (np.arange(n) + 0.5)) / SAMPLE_RATE
    return times, rms


def _label_width(text: str, fontsize: float, sec_per_inch: float) -> float:
    """A label's approximate width in seconds (DejaVu Sans averages ~0.6 em a character, plus the box)."""
    return (0.6 * len(text) + 0.8) * fontsize / 72 * sec_per_inch


def _levels(spans: list[tuple[float, float]], n_levels: int) -> list[int]:
    """Greedy level per label span (sorted by left edge): the first level free there, else the one freed first."""
    free_at = [-np.inf] * n_levels
    out = []
    for a, b in spans:
        level = next((k for k in range(n_levels) if free_at[k] <= a), int(np.argmin(free_at)))
        free_at[level] = b
        out.append(level)
    return out


def _audio_row(ax, x, words, start, end, colour, scale, sec_per_inch):
    t, rms = _rms_envelope(x, start, end)
    if len(t):
        ax.fill_between(t, -rms / scale, rms / scale, color=colour, alpha=0.55, linewidth=0, step="mid")
    ax.set_ylim(-1.0, 1.0)
    ax.set_yticks([])
    visible = sorted((w for w in words if w[1] >= start and w[0] <= end), key=lambda w: w[0])
    centres = [(max(w0, start) + min(w1, end)) / 2 for w0, w1, _ in visible]
    widths = [_label_width(str(text), 8, sec_per_inch) for _, _, text in visible]
    levels = _levels([(c - w / 2, c + w / 2) for c, w in zip(centres, widths)], 4)
    heights = (0.74, -0.74, 0.37, -0.37)  # top, bottom, then nearer the middle when words are dense
    for (w0, w1, text), c, level in zip(visible, centres, levels):
        ax.add_patch(Rectangle((w0, -0.95), max(w1 - w0, 1e-3), 1.9, facecolor=colour, alpha=0.12,
                               edgecolor=colour, linewidth=0.8, zorder=0))
        ax.text(c, heights[level], text, ha="center", va="center", fontsize=8, clip_on=True, zorder=3,
                bbox=dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor=colour, linewidth=0.6,
                          alpha=0.9))


def _events_row(ax, events, start, end):
    kinds = list(dict.fromkeys(e.kind for e in events))  # order of first appearance
    visible = [e for e in events if e.end >= start and e.start <= end]
    lane = {k: i for i, k in enumerate(kinds)}
    for e in visible:
        y, c = lane[e.kind], kind_colour(e.kind)
        if e.end > e.start:
            ax.add_patch(Rectangle((e.start, y - 0.35), e.end - e.start, 0.7, facecolor=c, edgecolor="black",
                                   linewidth=0.4, alpha=0.9))
        else:
            ax.vlines(e.start, y - 0.42, y + 0.42, color=c, linewidth=1.5)
            ax.plot([e.start], [y], marker="D", markersize=7, color=c, markeredgecolor="black",
                    markeredgewidth=0.5, zorder=3)
    ax.set_ylim(len(kinds) - 0.5 if kinds else 0.5, -0.5)
    ax.set_yticks(range(len(kinds)), kinds, fontsize=8)
    for label, k in zip(ax.get_yticklabels(), kinds):
        label.set_color(_readable(kind_colour(k)))
        label.set_fontweight("bold")


def _text_row(ax, items, start, end, sec_per_inch):
    channels = list(dict.fromkeys(["typed", "result", "delegate"] + [t.channel for t in items]))
    channels = [c for c in channels if any(t.channel == c for t in items)]
    for y, channel in enumerate(channels):
        marker, colour = _channel_style(channel)
        visible = sorted((t for t in items if t.channel == channel and start <= t.time <= end), key=lambda t: t.time)
        labels = [_truncate(t.text, 32) for t in visible]
        spans = [(t.time, t.time + 0.1 * sec_per_inch + _label_width(label, 7.5, sec_per_inch))
                 for t, label in zip(visible, labels)]
        for t, label, level in zip(visible, labels, _levels(spans, 2)):
            ax.plot([t.time], [y], marker=marker, markersize=7, color=colour, markeredgecolor="black",
                    markeredgewidth=0.5, linestyle="", zorder=3)
            ax.text(t.time + 0.1 * sec_per_inch, y + (-0.24 if level == 0 else 0.24), label, ha="left",
                    va="center", fontsize=7.5, color="black", clip_on=True, zorder=4,
                    bbox=dict(boxstyle="round,pad=0.12", facecolor="white", edgecolor=colour, linewidth=0.5,
                              alpha=0.85))
    ax.set_ylim(max(len(channels), 1) - 0.5, -0.5)
    ax.set_yticks(range(len(channels)), channels, fontsize=8)
    for label, c in zip(ax.get_yticklabels(), channels):
        label.set_color(_readable(_channel_style(c)[1]))


def _video_row(ax, video, fps, start, end, row_height_in, sec_per_inch):
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    if video is None or len(video) == 0 or fps <= 0:
        ax.text((start + end) / 2, 0.5, "(no video)", ha="center", va="center", fontsize=8, color="grey")
        return
    f, h, w = video.shape[:3]
    thumb_w = 0.92 * row_height_in * (w / h) * sec_per_inch  # seconds, so the frame keeps its aspect
    first = max(0, int(np.ceil(start * fps - 1e-9)))
    last = min(f - 1, int(np.floor(end * fps + 1e-9)))
    if last < first:
        return
    # Greedy left to right: the first frame at or after each allowed time, thumbnails never overlapping
    # and at most MAX_THUMBNAILS of them spread over the view.
    view_end = max(start, end - thumb_w)  # last start time at which a thumbnail still fits in the view
    spacing = max(thumb_w * 1.04, (view_end - start) / (MAX_THUMBNAILS - 1))
    idx, t_next = [], start
    while len(idx) < MAX_THUMBNAILS:
        i = max(first, int(np.ceil(t_next * fps - 1e-9)))
        if i > last or (idx and i / fps > view_end + 1e-9):
            break
        idx.append(i)
        t_next = i / fps + spacing
    stride = max(1, int(np.ceil(max(h, w) / 96)))  # thumbnails need no more than ~96 px
    for i in idx:
        t = i / fps
        ax.imshow(video[i, ::stride, ::stride], extent=(t, t + thumb_w, 0.04, 0.96), aspect="auto",
                  interpolation="bilinear", zorder=2)
        ax.add_patch(Rectangle((t, 0.04), thumb_w, 0.92, fill=False, edgecolor="black", linewidth=0.5, zorder=3))
        ax.vlines(t, 0, 1, color="black", linewidth=0.8, zorder=4)
        ax.text(t + 0.06 * sec_per_inch, 0.93, f"{t:.1f}", fontsize=6.5, va="top", ha="left", zorder=5,
                color="white", bbox=dict(boxstyle="square,pad=0.08", facecolor="black", alpha=0.6, linewidth=0))


def render_timeline(conv: Conversation, path, *, start: float = 0.0, end: float | None = None) -> None:
    """Writes a PNG timeline of `conv` (or of its window [start, end] in seconds) to `path`."""
    duration = conv.duration
    start = max(0.0, float(start))
    end = duration if end is None else float(end)
    if end <= start:
        raise ValueError(f"empty view: start={start} >= end={end}.")
    view = end - start

    width = float(np.clip(INCH_PER_SECOND * view, MIN_WIDTH, MAX_WIDTH))
    n_kinds = len({e.kind for e in conv.events})
    n_channels = max(1, len({t.channel for t in conv.text_items}))
    rows = ("user", "model", "events", "text", "video")
    heights = [1.3, 1.3, max(0.6, 0.28 * n_kinds + 0.2), max(0.6, 0.45 * n_channels + 0.1), 1.0]
    top_in, bottom_in, gap_in = 0.55, 0.5, 0.12
    height = sum(heights) + top_in + bottom_in + gap_in * (len(rows) - 1)

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    plot_w = width - LEFT_IN - RIGHT_IN
    sec_per_inch = view / plot_w
    fig.subplots_adjust(left=LEFT_IN / width, right=1 - RIGHT_IN / width, top=1 - top_in / height,
                        bottom=bottom_in / height, hspace=gap_in / (sum(heights) / len(rows)))
    gs = fig.add_gridspec(len(rows), 1, height_ratios=heights)
    axes = []
    for i, name in enumerate(rows):
        ax = fig.add_subplot(gs[i], sharex=axes[0] if axes else None)
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=10, fontweight="bold",
                      labelpad=8 if name in ("user", "model", "video") else 4)
        axes.append(ax)
    ax_user, ax_model, ax_events, ax_text, ax_video = axes
    # The event and text lanes have tick labels of their own: put the row name above them.
    for ax in (ax_events, ax_text):
        ax.yaxis.label.set_visible(False)
        ax.text(-LEFT_IN / plot_w + 0.005, 1.0, ax.get_ylabel(), transform=ax.transAxes, ha="left", va="top",
                fontsize=10, fontweight="bold")

    _, u = _rms_envelope(conv.user_audio, start, end)
    _, m = _rms_envelope(conv.model_audio, start, end)
    scale = max(float(u.max()) if len(u) else 0.0, float(m.max()) if len(m) else 0.0, 1e-4) * 1.05
    _audio_row(ax_user, conv.user_audio, conv.user_words, start, end, _USER_COLOUR, scale, sec_per_inch)
    _audio_row(ax_model, conv.model_audio, conv.model_words, start, end, _MODEL_COLOUR, scale, sec_per_inch)
    _events_row(ax_events, conv.events, start, end)
    _text_row(ax_text, conv.text_items, start, end, sec_per_inch)
    _video_row(ax_video, conv.video, conv.video_fps, start, end, heights[-1], sec_per_inch)

    for ax in axes:
        ax.set_xlim(start, end)
        ax.xaxis.set_major_locator(MultipleLocator(1.0 if view <= 60 else 5.0))
        ax.xaxis.set_minor_locator(MultipleLocator(MICRO_TURN if view <= 60 else 1.0))
        ax.grid(True, which="major", axis="x", color="0.6", linewidth=0.7, alpha=0.6)
        ax.grid(True, which="minor", axis="x", color="0.8", linewidth=0.4, alpha=0.5)
        ax.set_axisbelow(True)
        ax.tick_params(axis="x", which="both", labelbottom=ax is ax_video, labelsize=8)
    ax_video.set_xlabel("time (s)" if (start, end) == (0.0, duration) else f"time (s), view {start:.1f}–{end:.1f} s",
                        fontsize=9)
    fig.suptitle(f"{conv.id} ({conv.kind}), {duration:.1f} s", x=LEFT_IN / width, ha="left",
                 y=1 - 0.12 / height, va="top", fontsize=12, fontweight="bold")
    path = os.fspath(path)
    fig.savefig(path, dpi=DPI, format="png")
