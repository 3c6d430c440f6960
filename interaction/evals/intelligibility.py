"""How intelligible the model's speech is, apart from its turn-taking: the model voices the reference's
own text stream (its speaking state and words fed in, its own audio frames fed back), the frames are
vocoded and recognized, and the words heard are scored against the words it was given.

The same vocoder and recognizer on the reference's own log-mel give the ceiling: what this measuring
chain loses on speech that is right. `conditioning_gap` and `linear_readout` look inside: how much of what the
flow head draws comes from what the model tells it, rather than from what speech frames look like at all.
`word_table` and `table_voice` give a ceiling with no model: the voice of a table that knows, for each word and
each frame into it, the mean log-mel of the training split. `fit_prior` and `prior_voice` fit the model's own
patch-mean MLP (`spoken_words.SpokenWords` with a prior) alone on the training split and voice with its means: in
minutes, what the words alone can teach it.
"""
from __future__ import annotations

import collections

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from interaction import MICROTURN_SECONDS, SAMPLE_RATE
from interaction.codecs import text, vocoder
from interaction.data import pipeline
from interaction.data.conversation import Conversation
from interaction.data.layout import MicroTurnLayout
from interaction.evals import floor, intervals
from interaction.evals import words as wordlib
from interaction.models import spoken_words, streaming
from interaction.models.flow_head import FlowHead, sample, velocity_errors
from interaction.models.model import ModelSpec


def voicer(graphdef, *, flow_steps: int = 8, audio_temperature: float | None = None, context_s: float = 20.0,
           data_onsets: bool = False):
    """Jitted (params, features, seed) -> (T, F, n_mels) log-mel the model plays in micro-turns 1..T when
    given `features`' text stream (`pipeline.whole` of `pipeline.conversation_features`), and (T, S_out) the
    frames it dates the words to (`word_onset`); its frames drawn at `audio_temperature` (default: its spec's);
    with `data_onsets`, its words dated by the data's onsets rather than by its onset head (`voice_reads_words`)."""
    teacher = ("text_out", "word_onset") if data_onsets else ("text_out",)
    def run(params, feats, seed):
        model = nnx.merge(graphdef, params)
        state = streaming.init_state(model, 1, int(round(context_s / MICROTURN_SECONDS)))
        inputs = {k: feats[k][None] for k in streaming.INPUTS}
        _, out = streaming.run_session(model, state, inputs, jax.random.key(seed)[None],
                                       teacher={k: feats[k][None] for k in teacher}, flow_steps=flow_steps,
                                       audio_temperature=audio_temperature)
        return out["mel"][0], out["word_onset"][0]

    return jax.jit(run)


def wave_of(mel: np.ndarray, layout: MicroTurnLayout) -> np.ndarray:
    """(T, F, n_mels) log-mel of micro-turns 1..T -> the waveform of the model's channel from micro-turn 1,
    scaled down where the vocoder's phase estimate peaks above full scale (the level changes no word)."""
    wave = vocoder.decode(np.asarray(mel).reshape(-1, layout.dmel.n_mels), layout.dmel)
    return wave / max(1.0, float(np.abs(wave).max(initial=0.0)))


def errors(conv: Conversation, wave: np.ndarray, recognizer, *, offset_s: float = MICROTURN_SECONDS) -> tuple[int, int]:
    """(word edits, reference words) of what `recognizer` hears in `wave` (the model's channel from
    `offset_s`) against the model's words in `conv` that begin before the wave ends."""
    end = offset_s + len(wave) / SAMPLE_RATE
    ref = wordlib.normalize(" ".join(w for a, _, w in conv.model_words if a < end))
    hyp = wordlib.normalize(" ".join(w for _, _, w in recognizer.words(wave)))
    return wordlib.edit_distance(ref, hyp), len(ref)


def _pooled(rows: list[tuple[float, float]], whole: str) -> dict:
    """Pooled ratio of per-conversation (part, whole) counts, with its 95% interval over conversations and the
    wholes' total under the key `whole`."""
    r = np.asarray(rows, np.float64).reshape(-1, 2)
    total = r.sum(0)
    ratio = lambda s: np.where(s[..., 1] > 0, s[..., 0] / np.maximum(s[..., 1], 1e-12), np.nan)  # noqa: E731
    return {"value": float(total[0] / total[1]) if total[1] else float("nan"), "ci": intervals.interval(r, ratio),
            "n": float(len(r)), whole: float(total[1])}


def summarize(rows: list[tuple[int, int]]) -> dict:
    """Pooled word error rate of per-conversation (edits, words), with its 95% interval over conversations."""
    return _pooled(rows, "words")


def heard_as_speech(wave: np.ndarray, reference_wave: np.ndarray, vad) -> tuple[float, float]:
    """(frames, of the reference's speech frames): in how many of the 20 ms frames where `vad` hears speech in
    the reference's wave it also hears speech in `wave`. A listener's first question of a voice: is it speech."""
    frames = int(np.ceil(len(reference_wave) / SAMPLE_RATE / floor.FRAME_S - 1e-9))
    ref = floor.activity(vad.segments(reference_wave), frames)
    out = floor.activity(vad.segments(wave), frames)
    return float((out & ref).sum()), float(ref.sum())


def measure(graphdef, params, convs, layout: MicroTurnLayout, recognizer, *, vad=None, seed: int = 0,
            prior_alone: bool = False, **voicing) -> dict:
    """{"model": WER of the model voicing the reference text, "reference": WER of the reference's own
    log-mel through the same vocoder and recognizer}, over the conversations in which the model speaks; with a
    `vad`, also "heard_as_speech": the share of the reference's speech frames in which the model's voicing is
    heard as speech too (`heard_as_speech`); with `prior_alone` (a model with `voice_prior`), also "prior": the
    WER of the patch means its flow starts from, played with no flow and no noise. A model that dates its own
    words (`voice_reads_words`, without `data_onsets`) also gets "onset_exact" and "onset_near": the share of its
    words it dates to the data's frame of the micro-turn, and to within one frame of it."""
    runs = {"model": voicer(graphdef, **voicing)}
    if prior_alone:
        runs["prior"] = voicer(graphdef, **{**voicing, "flow_steps": 0, "audio_temperature": 0.0})
    rows = {name: [] for name in (*runs, "reference")}
    speech_rows, onset_rows = [], []
    dates = nnx.merge(graphdef, params).spoken is not None and not voicing.get("data_onsets", False)
    for i, conv in enumerate(convs):
        if not conv.model_words:
            continue
        feats = pipeline.conversation_features(conv, layout)
        m = len(feats["valid"])
        whole = {k: jnp.asarray(v) for k, v in pipeline.whole(feats, layout.dmel.log_min).items()}
        reference = wave_of(feats["model_mel"], layout)
        rows["reference"].append(errors(conv, reference, recognizer))
        for name, run in runs.items():
            mel, onsets = jax.device_get(run(params, whole, seed + i))
            wave = wave_of(mel[:m], layout)
            rows[name].append(errors(conv, wave, recognizer))
            if vad is not None and name == "model":
                speech_rows.append(heard_as_speech(wave, reference, vad))
            if dates and name == "model":
                truth = feats["word_onset"]
                miss = np.abs(onsets[:m] - truth)[truth >= 0]
                onset_rows.append(((miss == 0).sum(), (miss <= 1).sum(), miss.size))
    out = {name: summarize(r) for name, r in rows.items()}
    if vad is not None:
        out["heard_as_speech"] = _pooled(speech_rows, "frames")
    if onset_rows:
        counts = np.asarray(onset_rows, np.float64)
        out["onset_exact"], out["onset_near"] = (_pooled(counts[:, [k, 2]], "words") for k in (0, 1))
    return out


def conditioning_gap(head: FlowHead, targets, conds, groups, *, draws: int = 8, seed: int = 0) -> dict:
    """What the flow head's conditioning tells it of the patches it draws, over what it models of speech frames at
    all: the velocity error of every patch given its own conditioning ("own") and given another patch's (one fixed
    random pairing, "other"), each at the same `draws` times and noise draws, and their difference ("value", per
    patch, with its 95% interval over the `groups`, e.g. conversations). targets (N, features) normalised
    patches, conds (N, cond_dim), groups (N,) ints. A flow head that draws speech-like frames whatever it is told
    has a gap of 0; one that voices the words it was given, in the voice it hears back, a large one."""
    targets, conds = jnp.asarray(targets, jnp.float32), jnp.asarray(conds)
    other = jnp.asarray(np.random.default_rng(seed).permutation(len(conds)))
    errors = jax.jit(lambda c, key: velocity_errors(head, targets, c, key))
    keys = jax.random.split(jax.random.key(seed), draws)
    own = np.mean([np.asarray(errors(conds, k)) for k in keys], axis=0)
    shuffled = np.mean([np.asarray(errors(conds[other], k)) for k in keys], axis=0)
    groups = np.asarray(groups)
    rows = [((shuffled - own)[groups == g].sum(), (groups == g).sum()) for g in np.unique(groups)]
    return {**_pooled(rows, "patches"), "own": float(own.mean()), "other": float(shuffled.mean())}


def draw_spread(head: FlowHead, targets, conds, *, temperature: float, flow_steps: int = 8, draws: int = 3,
                seed: int = 0) -> dict:
    """How widely the flow head draws about its own draw at temperature 0 ("center", deterministic; with a prior,
    near it), against how far the data lie from that center: {"draws": mean squared distance of draws at
    `temperature` from the center, "data": of the targets, "error": of the draws from the targets}, per feature of
    the normalised patches. targets (N, features), conds (N, cond_dim). A flow that draws what its conditioning
    leaves open spreads as the data do; one that leaves its starting noise in spreads wider."""
    targets, conds = jnp.asarray(targets, jnp.float32), jnp.asarray(conds)
    draw = jax.jit(lambda key, t: sample(head, conds, key, steps=flow_steps, temperature=t))
    center = np.asarray(draw(jax.random.key(seed), 0.0))
    drawn = np.stack([np.asarray(draw(k, temperature)) for k in jax.random.split(jax.random.key(seed), draws)])
    targets = np.asarray(targets)
    return {"draws": float(np.square(drawn - center).mean()), "data": float(np.square(targets - center).mean()),
            "error": float(np.square(drawn - targets).mean())}


def linear_readout(features, targets, groups, ridge: float = 1e-2) -> float:
    """Share of the targets' variance (R^2) a ridge regression from `features` explains on groups it was not fit
    on: fit on every other group (in sorted order) and scored on the rest, then the other way round, pooled.
    features (N, D), targets (N, K), groups (N,) ints (conversations, so that no conversation is both fit and
    scored)."""
    features, targets = np.asarray(features, np.float64), np.asarray(targets, np.float64)
    ranks = np.unique(groups, return_inverse=True)[1].reshape(-1)
    if ranks.max(initial=0) < 1:
        raise ValueError("a linear readout is fitted on some groups and scored on others: it needs at least two")
    fit = ranks % 2 == 0
    error = total = 0.0
    for train, test in ((fit, ~fit), (~fit, fit)):
        x_mean, y_mean = features[train].mean(0), targets[train].mean(0)
        x = features[train] - x_mean
        weights = np.linalg.solve(x.T @ x + ridge * len(x) * np.eye(x.shape[1]), x.T @ (targets[train] - y_mean))
        predicted = (features[test] - x_mean) @ weights + y_mean
        error += np.square(predicted - targets[test]).sum()
        total += np.square(targets[test] - y_mean).sum()
    return float(1.0 - error / total)


def voiced_patches(graphdef, params, convs, layout: MicroTurnLayout) -> tuple[np.ndarray, ...]:
    """(targets (N, features), conds (N, cond_dim), conversation index (N,), previous (N, features)) of every voiced
    audio position of `convs`, teacher-forced (the reference's text and frames fed in): the normalised patch the
    flow head is trained to draw there, its conditioning, and the patch before it (silence at the start), which
    the model heard back there."""
    model = nnx.merge(graphdef, params)
    spec = model.spec
    forward = jax.jit(lambda p, batch: nnx.merge(graphdef, p)(batch)[1])
    normalised = lambda mel: (np.asarray(mel) - spec.mel_center) / spec.mel_scale  # noqa: E731
    targets, conds, groups, previous = [], [], [], []
    for i, conv in enumerate(convs):
        features = pipeline.conversation_features(conv, layout)
        m, batch = len(features["valid"]), pipeline.whole(features, layout.dmel.log_min)
        cond = np.asarray(forward(params, {k: jnp.asarray(v)[None] for k, v in batch.items()})[0, :m])
        voiced = np.asarray(batch["text_out"][:m, 0] == text.Special.VOICED)
        patches = layout.audio_patches(normalised(batch["model_mel"][:m]))
        flat = patches.reshape(-1, patches.shape[-1])
        before = np.concatenate([np.full_like(flat[:1], normalised(layout.dmel.log_min)), flat[:-1]])
        before = before.reshape(patches.shape)
        targets.append(patches[voiced].reshape(-1, patches.shape[-1]))
        previous.append(before[voiced].reshape(-1, patches.shape[-1]))
        conds.append(cond[voiced].reshape(-1, cond.shape[-1]))
        groups.append(np.full(len(targets[-1]), i))
    return tuple(np.concatenate(a) for a in (targets, conds, groups, previous))


def word_frames(conv: Conversation, frames: int, frame_rate: int) -> list[tuple[str, int] | None]:
    """For each of the model channel's `frames` log-mel frames from micro-turn 1 on: (the word it is in, how many
    frames into the word it is), or None outside the model's words."""
    out: list[tuple[str, int] | None] = [None] * frames
    for start, end, word in conv.model_words:
        first = int(np.ceil((start - MICROTURN_SECONDS) * frame_rate - 1e-6))
        last = int(np.ceil((end - MICROTURN_SECONDS) * frame_rate))
        key = " ".join(wordlib.normalize(word))
        for i in range(max(first, 0), min(last + 1, frames)):
            out[i] = (key, i - first)
    return out


def _model_frames(conv: Conversation, layout: MicroTurnLayout) -> np.ndarray:
    return pipeline.conversation_features(conv, layout)["model_mel"].reshape(-1, layout.dmel.n_mels)


def word_table(convs, layout: MicroTurnLayout) -> tuple[dict, np.ndarray]:
    """({(word, frames into it): mean log-mel (n_mels,)} over the model channels of `convs`, and the per-bin
    standard deviation of the frames about their pair's mean)."""
    sums: dict = collections.defaultdict(float)
    squares: dict = collections.defaultdict(float)
    counts: collections.Counter = collections.Counter()
    for conv in convs:
        mel = _model_frames(conv, layout).astype(np.float64)
        for frame, key in zip(mel, word_frames(conv, len(mel), layout.dmel.frame_rate)):
            if key is not None:
                sums[key] = sums[key] + frame
                squares[key] = squares[key] + frame ** 2
                counts[key] += 1
    if not counts:
        raise ValueError("no model words in the conversations given: a word table needs some")
    means = {k: sums[k] / counts[k] for k in counts}
    residual = sum(squares[k] - counts[k] * means[k] ** 2 for k in counts) / sum(counts.values())
    return means, np.sqrt(np.maximum(residual, 0.0))


def table_voice(conv: Conversation, table: tuple[dict, np.ndarray], layout: MicroTurnLayout, *,
                base: str = "table", noise: float = 0.0, rng: np.random.Generator | None = None) -> np.ndarray:
    """(T, F, n_mels) the model channel of `conv` voiced from `table` (`word_table`): each frame inside a word is
    its (word, frames into it) mean (the mean of all the table's frames where the pair is missing), or with
    base="reference" the reference's own frame; plus `noise` times the table's residual deviation of Gaussian
    noise; silence outside the words."""
    means, deviation = table
    reference = _model_frames(conv, layout)
    fallback = np.mean(list(means.values()), axis=0)
    rng = rng or np.random.default_rng(0)
    out = np.full_like(reference, layout.dmel.log_min)
    for i, key in enumerate(word_frames(conv, len(reference), layout.dmel.frame_rate)):
        if key is not None:
            frame = reference[i] if base == "reference" else means.get(key, fallback)
            out[i] = np.maximum(frame + noise * deviation * rng.standard_normal(deviation.shape), layout.dmel.log_min)
    return out.reshape(-1, layout.frames, layout.dmel.n_mels)


def word_patches(conv: Conversation, spec: ModelSpec) -> tuple[np.ndarray, ...]:
    """The model channel of `conv` as the voice prior reads it: word hashes and ages (T, positions, ROLES) from
    its text stream and the data's onsets, whether each micro-turn is voiced (T,), and its normalised patches
    (T, positions, group * n_mels)."""
    lay = spec.layout
    feats = pipeline.conversation_features(conv, lay)
    hashes, ages = (x[0] for x in spoken_words.window_words(
        jnp.asarray(feats["text_out"])[None], jnp.asarray(feats["word_onset"])[None],
        jnp.arange(len(feats["valid"]))[None], lay.frames, lay.audio_group))
    patches = lay.audio_patches((feats["model_mel"] - spec.mel_center) / spec.mel_scale)
    return np.asarray(hashes), np.asarray(ages), feats["text_out"][:, 0] == text.Special.VOICED, patches


def known_patches(convs, spec: ModelSpec) -> tuple[np.ndarray, ...]:
    """(N, ROLES) hashes, (N, ROLES) ages and (N, group * n_mels) patches of the voiced audio positions of `convs`
    whose word is known (as `model.losses` teaches the prior)."""
    parts = []
    for conv in convs:
        h, a, voiced, p = word_patches(conv, spec)
        known = voiced[:, None] & (h[..., 0] > 0)
        parts.append((h[known], a[known], p[known]))
    if not sum(len(p) for _, _, p in parts):
        raise ValueError("no voiced model words in the conversations given: the prior needs some")
    return tuple(np.concatenate(x) for x in zip(*parts))


def fit_prior(known: tuple[np.ndarray, ...], spec: ModelSpec, *, steps: int, batch: int = 128, lr: float = 3e-3,
              seed: int = 0) -> spoken_words.SpokenWords:
    """The model's patch-mean MLP fitted alone, by Adam on its squared error, to `known_patches`."""
    hashes, ages, patches = known
    lay = spec.layout
    module = spoken_words.SpokenWords(spec.decoder.embed, lay.frames, rngs=nnx.Rngs(seed), group=lay.audio_group,
                                      prior=lay.dmel.n_mels)
    schedule = optax.warmup_cosine_decay_schedule(0.0, lr, min(40, steps // 10), max(steps, 1), lr / 10)
    optimizer = nnx.Optimizer(module, optax.adam(schedule), wrt=nnx.Param)

    @nnx.jit
    def step(module, optimizer, h, a, target):
        optimizer.update(module, nnx.grad(lambda m: jnp.mean(jnp.square(m.patch_mean(h, a) - target)))(module))

    rng = np.random.default_rng(seed)
    for _ in range(steps):
        rows = rng.integers(0, len(patches), batch)
        step(module, optimizer, hashes[rows], ages[rows], patches[rows])
    return module


def prior_explains(prior: spoken_words.SpokenWords, known: tuple[np.ndarray, ...]) -> float:
    """The share of the variance of `known_patches` that `prior`'s means explain."""
    hashes, ages, patches = known
    error = np.square(np.asarray(prior.patch_mean(jnp.asarray(hashes), jnp.asarray(ages))) - patches).sum()
    return float(1.0 - error / np.square(patches - patches.mean(0)).sum())


def prior_voice(conv: Conversation, prior: spoken_words.SpokenWords, spec: ModelSpec) -> np.ndarray:
    """(T, F, n_mels) the model channel of `conv` voiced by `prior`'s means (`fit_prior`) where its text stream
    is voiced, silence elsewhere."""
    hashes, ages, voiced, _ = word_patches(conv, spec)
    mel = np.asarray(spec.log_mel(spec.layout.audio_frames(prior.patch_mean(jnp.asarray(hashes), jnp.asarray(ages)))))
    return np.where(voiced[:, None, None], mel, spec.layout.dmel.log_min)
