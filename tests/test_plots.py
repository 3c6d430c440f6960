"""The conversation timeline picture: written, decodable, sized by duration, not blank, croppable."""

import matplotlib
import matplotlib.image
import numpy as np

from interaction import SAMPLE_RATE
from interaction.data.conversation import EVENT_KINDS, Conversation, Event, TextItem
from interaction.plots.timeline import kind_colour, render_timeline


def make_conversation(duration: float = 2.0, seed: int = 0) -> Conversation:
    """A synthetic conversation: bursts of noisy tones on both channels, words, events, text, video."""
    rng = np.random.default_rng(seed)
    n = int(duration * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE

    def channel(spans, freq):
        x = 0.003 * rng.standard_normal(n)
        for s0, s1 in spans:
            on = (t >= s0) & (t < s1)
            x[on] += 0.3 * np.sin(2 * np.pi * freq * t[on]) * np.sin(np.pi * (t[on] - s0) / (s1 - s0) * 3) ** 2
        return x.astype(np.float32)

    scale = duration / 2.0
    user_words = [(0.05 * scale, 0.3 * scale, "what's"), (0.32 * scale, 0.5 * scale, "the"),
                  (0.52 * scale, 0.85 * scale, "weather")]
    model_words = [(1.05 * scale, 1.3 * scale, "sunny"), (1.32 * scale, 1.5 * scale, "and"),
                   (1.52 * scale, 1.9 * scale, "warm")]
    events = [
        Event("user_turn", user_words[0][0], user_words[-1][1], {"text": "what's the weather"}),
        Event("pause", 0.85 * scale, 1.05 * scale),
        Event("model_turn", model_words[0][0], model_words[-1][1], {"text": "sunny and warm"}),
        Event("interruption", 1.6 * scale, 1.9 * scale),
        Event("model_stop", 1.9 * scale, 1.9 * scale),  # zero-length: a marker
        Event("visual_cue", 0.6 * scale, 0.6 * scale, {"shape": 1}),
        Event("brand_new_kind", 0.2 * scale, 0.7 * scale),
    ]
    text_items = [TextItem(0.4 * scale, "typed", "and tomorrow?"),
                  TextItem(1.0 * scale, "delegate", "look up the forecast for Paris, France, tomorrow"),
                  TextItem(1.4 * scale, "result", "forecast: 24 C, clear skies")]
    fps, size = 5.0, 80
    frames = int(np.ceil(duration * fps))
    yy, xx = np.mgrid[:size, :size]
    video = np.zeros((frames, size, size, 3), np.uint8)
    video[...] = (40, 40, 60)
    for i in range(frames):
        cx = 10 + (i * 7) % 60
        video[i][(yy - 40) ** 2 + (xx - cx) ** 2 < 100] = (230, 80, 40)
    return Conversation(
        id=f"test-{seed:05d}", kind="turn_taking", seed=seed,
        user_audio=channel([(w[0], w[1]) for w in user_words], 220.0),
        model_audio=channel([(w[0], w[1]) for w in model_words], 330.0),
        video=video, video_fps=fps, user_words=user_words, model_words=model_words,
        text_items=text_items, events=events)


def _render(conv, path, **kw) -> np.ndarray:
    render_timeline(conv, path, **kw)
    assert path.exists()
    image = matplotlib.image.imread(str(path))
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    return image


def test_renders_a_nonblank_png(tmp_path):
    backend = matplotlib.rcParams["backend"]
    image = _render(make_conversation(), tmp_path / "conv.png")
    assert float(image[..., :3].var()) > 0
    assert matplotlib.rcParams["backend"] == backend  # no pyplot, no global backend switch


def test_width_grows_with_duration(tmp_path):
    short = _render(make_conversation(10.0), tmp_path / "short.png")
    long = _render(make_conversation(20.0), tmp_path / "long.png")
    assert long.shape[1] > short.shape[1]
    assert abs(long.shape[1] / short.shape[1] - 2.0) < 0.05  # 1.2 in/s, within the [8, 40] in clamp
    assert long.shape[0] == short.shape[0]


def test_cropping_changes_the_picture(tmp_path):
    conv = make_conversation(20.0)
    full = _render(conv, tmp_path / "full.png")
    crop = _render(conv, tmp_path / "crop.png", start=5.0, end=15.0)
    assert crop.shape != full.shape or not np.array_equal(crop, full)
    early = _render(conv, tmp_path / "early.png", start=0.0, end=10.0)
    assert early.shape == crop.shape and not np.array_equal(early, crop)


def test_kind_colours_are_stable_and_distinct():
    assert len({kind_colour(k) for k in EVENT_KINDS}) == len(EVENT_KINDS)
    assert kind_colour("some_new_kind") == kind_colour("some_new_kind")
