"""The micro-turn streaming step (docs/design.md): step(model, state, inputs, rng) -> (state, outputs).

One call consumes one micro-turn's input segment (user audio, video patches, text-in slots) together
with the first text-out position (whose input, the last text group, is already known) in a single pass
through the cached decoder, then emits the output segment position by position, one pass each: the text
positions, whose slots the depth head reads out one after another (the first slot is the speaking state:
speak or stay silent; then the bytes, each sampled and fed back), and then the audio positions, each a patch
of `audio_group` frames drawn from the flow head, quantised to dMel and fed back (exact silence when the
model chose to stay silent). `MicroTurnLayout.passes` counts the passes. All state is an explicit pytree of
fixed-shape arrays: one ring-buffer KV cache per block, the micro-turn index, the last emitted text group
and audio group and the last camera frame of every session. Nothing grows with the session; a session
longer than the cache keeps running with a sliding attention window. Within a micro-turn the caches are read
only: the turn's keys collect in a block of their own (`KVCache` of block_len slots per layer) and are
written into the caches at its end.

With `teacher` outputs the step feeds back the given tokens instead of its own choices; its logits and
audio conditioning then equal the full-sequence training forward (tested).
"""
from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx, struct
from jax.sharding import NamedSharding

from interaction import sharding
from interaction.codecs import dmel, text, video
from interaction.data.layout import STEP_INPUTS
from interaction.models import invariant, spoken_words
from interaction.models.cache import KVCache
from interaction.models.flow_head import sample as flow_sample
from interaction.models.model import InteractionModel


INPUTS = STEP_INPUTS  # what `step` reads of a micro-turn


@struct.dataclass
class StreamState:
    caches: tuple  # one KVCache per block (scanned layers: one KVCache with a leading layers axis)
    time: jax.Array  # (B,) int32 micro-turn index of the next step
    last_text: jax.Array  # (B, text_group) int32 last text-out group emitted
    last_audio: jax.Array  # (B, audio_group, n_mels) int32 last audio group emitted, as dMel tokens
    speaking: jax.Array  # (B,) bool whether the last micro-turn was voiced
    last_frame: jax.Array  # (B, P, 40, 40, 3) uint8 patches of the last new camera frame
    saw_frame: jax.Array  # (B,) bool whether a new camera frame has come in this session
    words: jax.Array  # (B, spoken_words.CARRY) int32 the words of its text stream (`spoken_words.push`)


def init_state(model: InteractionModel, batch: int, capacity_turns: int, start_time=None,
               dtype=jnp.float32) -> StreamState:
    """Empty state for `batch` sessions with room for `capacity_turns` micro-turns of attention context
    (keys and values stored in `dtype`); a local layer keeps the last `local_window` positions, if fewer."""
    spec = model.spec
    window = spec.decoder.local_window
    if window is not None and window % spec.layout.block_len:
        raise ValueError(f"local_window={window} positions is not a whole number of {spec.layout.block_len}-slot "
                         "micro-turns: a local layer's cache is a ring of whole micro-turns.")
    caches = model.decoder.init_cache(batch, capacity_turns * spec.layout.block_len, dtype, windowed=True)
    time = jnp.zeros(batch, jnp.int32) if start_time is None else jnp.asarray(start_time, jnp.int32)
    lay = spec.layout
    return StreamState(caches=caches, time=time,
                       last_text=jnp.full((batch, lay.text_group), int(text.Special.PAD), jnp.int32),
                       last_audio=jnp.zeros((batch, lay.audio_group, lay.dmel.n_mels), jnp.int32),
                       speaking=jnp.zeros(batch, bool),
                       last_frame=jnp.zeros((batch, lay.patches, video.PATCH, video.PATCH, 3), jnp.uint8),
                       saw_frame=jnp.zeros(batch, bool), words=spoken_words.empty(batch))


def state_shardings(state: StreamState, mesh, rules) -> StreamState:
    """Sessions split by the `batch` rule and cached keys by the `heads` rule (a stacked cache's layers axis
    by `layers`); for a streaming step run across a mesh."""
    stacked = state.caches[0].pos.ndim == 3
    lead = ("layers", "batch") if stacked else ("batch",)
    def named(names):
        return lambda x: NamedSharding(mesh, sharding.mesh_spec(names, x.shape, mesh, rules))
    caches = tuple(KVCache(k=named(lead + ("heads",))(c.k), v=named(lead + ("heads",))(c.v), pos=named(lead)(c.pos))
                   for c in state.caches)
    per_session = named(("batch",))
    return StreamState(caches=caches, time=per_session(state.time), last_text=per_session(state.last_text),
                       last_audio=per_session(state.last_audio), speaking=per_session(state.speaking),
                       last_frame=per_session(state.last_frame), saw_frame=per_session(state.saw_frame),
                       words=per_session(state.words))


def abstract_inputs(layout, sessions: int) -> dict[str, jax.ShapeDtypeStruct]:
    """Shapes and dtypes of one micro-turn's `INPUTS` for `sessions` sessions (`MicroTurnLayout.step_spec`)."""
    return {name: jax.ShapeDtypeStruct(shape, dtype) for name, (shape, dtype) in layout.step_spec(sessions).items()}


def reset(state: StreamState, rows: jax.Array) -> StreamState:
    """Starts new sessions in the slots flagged in `rows` (B,) bool; other sessions go on untouched."""
    return StreamState(
        caches=tuple(c.clear(rows) for c in state.caches),  # rows broadcast over a stacked cache's layers axis
        time=jnp.where(rows, 0, state.time),
        last_text=jnp.where(rows[:, None], int(text.Special.PAD), state.last_text),
        last_audio=jnp.where(rows[:, None, None], 0, state.last_audio),
        speaking=state.speaking & ~rows,
        last_frame=state.last_frame,  # unread until the session's first new frame replaces it
        saw_frame=state.saw_frame & ~rows,
        words=jnp.where(rows[:, None], 0, state.words),
    )


KEEP_THRESHOLD = 0.3  # see `floor_thresholds`
# A byte slot of a voiced row emits a byte while its chance of not PAD is above this. Where the next word
# starts is uncertain by a micro-turn, so at even odds (0.5) neither of the two gets the word, the model
# emits two thirds of the data's bytes, hears its rows run empty and ends its turn early; 0.4, chosen on a
# development split, emits the data's rate of bytes.
BYTE_THRESHOLD = 0.4


def floor_thresholds(spec, speak: float | None = None, keep: float | None = None) -> tuple[float, float]:
    """(speak, keep): the thresholds on the chance of speaking at which the model starts speaking when silent
    and goes on when speaking; those given, else the defaults. Training weighs the speaking state
    `switch_weight` (w) times more where it changes, which multiplies the odds the model gives a change by w:
    after a silent micro-turn its odds of speaking are w times the data's, so even odds in the data are
    w / (w + 1) to start. The same argument puts the bar to go on at 1 / (w + 1), but free-running, hearing its
    own frames, the model then holds on past its turn's end; `KEEP_THRESHOLD`, chosen on a development split
    of held-out conversations (not the one the results are measured on), ends its turns at the reference's
    length. Both make taking the floor harder than keeping it."""
    w = float(spec.switch_weight)
    return (w / (w + 1.0) if speak is None else speak), (KEEP_THRESHOLD if keep is None else keep)


def step(model: InteractionModel, state: StreamState, inputs: dict, rng: jax.Array, *, teacher: dict | None = None,
         flow_steps: int = 8, temperature: float = 1.0, audio_temperature: float | None = None,
         speak_threshold: float | None = None, keep_threshold: float | None = None,
         byte_threshold: float | None = None) -> tuple[StreamState, dict]:
    """One micro-turn for every session of the batch.

    inputs: user_audio (B, F, n_mels) int, user_pitch (B, F, 3) float, video (B, P, 40, 40, 3) uint8,
    video_new (B,) bool, text_in (B, S_in) int. teacher (optional): text_out (B, S_out) and model_audio
    (B, F, n_mels) tokens to feed back instead of the model's own, and word_onset (B, S_out) the frames its words
    begin in (`voice_reads_words`; else its own, `SpokenWords.onset_logits`); with text_out alone the model voices the
    given text (its own frames fed back), which is how its speech is heard apart from its turn-taking. rng: one key for
    the batch, or (B,) keys, one per session (then a session's samples do not depend on the batch it is in).

    The first text slot is the decision: the model speaks in the next micro-turn when its chance of
    VOICED against PAD there exceeds `speak_threshold`, or, when it spoke in the last one, `keep_threshold`
    (defaults: `floor_thresholds`: a start at even odds under the training's weighting). Silent, the rest
    of the row is PAD and the audio is exact silence, and that is what is fed back (as in training, where
    silent micro-turns are silent).
    Speaking, each byte slot first decides whether a byte comes now (its chance of not PAD above
    `byte_threshold`, default `BYTE_THRESHOLD`; a row's bytes come first, so after one PAD the row stays
    PAD), then draws the byte at `temperature` (0: the likeliest); the frames come from the flow head at
    `audio_temperature` (default: the spec's, the temperature its own frames were trained with). Comparing PAD with the
    likeliest single byte instead would favour PAD, which takes the mass that all bytes share, and leave
    the model speaking without words.

    Returns text_tokens (B, S_out), text_logits (B, S_out, V), speak (B,) the chance of VOICED, voiced (B,)
    bool, word_onset (B, S_out) the frame a word beginning at a slot begins in (-1 without `voice_reads_words`),
    listen (B, K) the listening heads' probabilities (`listening.NAMES`), audio_cond (B, audio_positions, embed),
    mel (B, F, n_mels) and audio_tokens (B, F, n_mels).
    """
    spec, lay = model.spec, model.spec.layout
    audio_temperature = spec.audio_temperature if audio_temperature is None else audio_temperature
    byte_threshold = BYTE_THRESHOLD if byte_threshold is None else byte_threshold
    streams = model.streams(jnp.asarray(lay.stream_ids()))  # (block_len, embed)
    base = state.time * lay.block_len
    sessions, g, k = state.time.shape[0], lay.text_group, lay.audio_group
    first_text, first_audio = lay.input_len, lay.input_len + lay.text_positions

    frame, new = inputs["video"], inputs["video_new"]
    previous = jnp.where(state.saw_frame[:, None, None, None, None], state.last_frame, frame)
    heard = model.heard(inputs["user_audio"], inputs["user_pitch"])
    x = jnp.concatenate([heard, model.seen(frame, previous, new), model.text(inputs["text_in"]),
                         model.fed_text(state.last_text)], axis=1)
    positions = base[:, None] + jnp.arange(lay.input_len + 1)
    blocks = model.decoder.init_cache(sessions, lay.block_len, state.caches[0].v.dtype)
    h, blocks = model.decoder.step(x + streams[: lay.input_len + 1], positions, state.caches, blocks)
    h0 = h[:, -1]

    def emit(blocks, position_embedding, slot):
        pos = (base + slot)[:, None]
        h, blocks = model.decoder.step(position_embedding + streams[slot], pos, state.caches, blocks)
        return h[:, 0], blocks

    def slot_vector(h, group, j, previous):
        """The vector the text head reads at slot j of a text position with hidden state h, its group's tokens so
        far `group` and the group it was fed, `previous`."""
        if model.text_depth is None:
            return h
        before = None if model.text_depth.before is None else model.text(previous)
        return model.text_depth.slot(h, model.text(group), j, before)

    pad, voiced_id = int(text.Special.PAD), int(text.Special.VOICED)
    empty = jnp.full((sessions, g), pad, jnp.int32)
    first_logits = model.text_logits(slot_vector(h0, empty, 0, state.last_text)).astype(jnp.float32)
    speak = jax.nn.sigmoid(first_logits[:, voiced_id] - first_logits[:, pad])
    speak_threshold, keep_threshold = floor_thresholds(spec, speak_threshold, keep_threshold)
    threshold = jnp.where(state.speaking, keep_threshold, speak_threshold)
    voiced = teacher["text_out"][:, 0] == voiced_id if teacher is not None else speak > threshold
    first = jnp.where(voiced, voiced_id, pad).astype(jnp.int32)
    text_rng, audio_rng = invariant.split(rng)

    def read(h, group, previous, open_row, key, words, p, slots):
        """Reads `slots` of text position p (hidden state h, fed the group `previous`) one by one: bytes, fed to
        the depth head, and the words they write (`spoken_words.push`)."""
        def body(carry, j):
            group, open_row, key, words = carry
            vector = slot_vector(h, group, j, previous)
            logits = model.text_logits(vector).astype(jnp.float32)
            onset = -jnp.ones(sessions, jnp.int32)  # the frame a word begins in, were one to begin here
            if teacher is not None and "word_onset" in teacher:
                onset = teacher["word_onset"][:, p * g + j]
            elif model.spoken is not None:
                onset = jnp.argmax(model.spoken.onset_logits(words, state.time), axis=-1).astype(jnp.int32)
            key, sub = invariant.split(key)
            if teacher is not None:
                token = teacher["text_out"][:, p * g + j]
            else:
                byte_logits = logits.at[:, voiced_id].set(-jnp.inf).at[:, pad].set(-jnp.inf)
                if temperature > 0:
                    token = invariant.categorical(sub, byte_logits / temperature).astype(jnp.int32)
                else:
                    token = jnp.argmax(byte_logits, axis=-1).astype(jnp.int32)
                p_pad = jax.nn.softmax(logits.at[:, voiced_id].set(-jnp.inf), axis=-1)[:, pad]
                open_row = open_row & (1.0 - p_pad > byte_threshold)
                token = jnp.where(open_row, token, pad)
            if model.spoken is not None:
                words = spoken_words.push(words, token, onset, state.time, lay.frames)
            return (group.at[:, j].set(token), open_row, key, words), (logits, onset)
        (group, open_row, key, words), (logits, onsets) = jax.lax.scan(body, (group, open_row, key, words), slots)
        return group, open_row, key, words, logits, onsets

    group0, open_row, text_rng, words, logits0, onsets0 = read(h0, empty.at[:, 0].set(first), state.last_text,
                                                               voiced, text_rng, state.words, 0, jnp.arange(1, g))

    def text_position(carry, p):
        blocks, prev, open_row, key, words = carry
        h, blocks = emit(blocks, model.fed_text(prev), first_text + p)
        group, open_row, key, words, logits, onsets = read(h, empty, prev, open_row, key, words, p, jnp.arange(g))
        return (blocks, group, open_row, key, words), (group, logits, onsets)

    (blocks, last_text, _, _, words), (groups, logits, onsets) = jax.lax.scan(
        text_position, (blocks, group0, open_row, text_rng, words), jnp.arange(1, lay.text_positions))
    slots_first = lambda x: jnp.moveaxis(x, 0, 1)  # scan stacks slots first
    text_tokens = jnp.concatenate([group0, slots_first(groups).reshape(sessions, -1)], axis=1)
    word_onset = jnp.concatenate([-jnp.ones((sessions, 1), jnp.int32), slots_first(onsets0),
                                  jnp.moveaxis(onsets, 2, 0).reshape(sessions, -1)], axis=1)
    text_logits = jnp.concatenate([first_logits[:, None], slots_first(logits0),
                                   jnp.moveaxis(logits, 2, 0).reshape(sessions, -1, logits.shape[-1])], axis=1)

    silence = jnp.zeros((k, lay.dmel.n_mels), jnp.int32)  # dMel bin 0 in every channel: log_min
    teacher_audio = None if teacher is None or "model_audio" not in teacher else (
        teacher["model_audio"].reshape(sessions, lay.audio_positions, k, lay.dmel.n_mels))

    said = 0.0 if model.spoken is None else model.words_said(words, state.time)

    def audio_position(carry, q):
        blocks, prev, key = carry
        h, blocks = emit(blocks, model.fed_audio(prev), first_audio + q)
        cond = h if model.spoken is None else model.flow_conditioning(h, said[:, q])
        key, sub = invariant.split(key)
        patch = flow_sample(model.flow, cond, sub, steps=flow_steps, temperature=audio_temperature)
        mel = spec.log_mel(patch).reshape(sessions, k, lay.dmel.n_mels)
        mel = jnp.where(voiced[:, None, None], mel, lay.dmel.log_min)
        token = jnp.where(voiced[:, None, None], dmel.quantize(mel, lay.dmel), silence)
        if teacher_audio is not None:
            token = teacher_audio[:, q]
        return (blocks, token, key), (cond, mel, token)

    (blocks, last_audio, _), (cond, mel, audio_tokens) = jax.lax.scan(
        audio_position, (blocks, state.last_audio, audio_rng), jnp.arange(lay.audio_positions))

    caches = model.decoder.write_cache(state.caches, blocks)  # the whole turn's keys, once
    new_state = StreamState(caches=caches, time=state.time + 1, last_text=last_text, last_audio=last_audio,
                            speaking=voiced, last_frame=jnp.where(new[:, None, None, None, None], frame,
                                                                  state.last_frame),
                            saw_frame=state.saw_frame | new, words=words)
    frames = lambda x: slots_first(x).reshape(sessions, lay.frames, lay.dmel.n_mels)  # noqa: E731
    return new_state, {
        "text_tokens": text_tokens, "text_logits": text_logits, "speak": speak,
        "voiced": voiced, "word_onset": word_onset, "listen": jax.nn.sigmoid(model.listen_logits(h0)),
        "audio_cond": slots_first(cond), "mel": frames(mel), "audio_tokens": frames(audio_tokens),
    }


def run_session(model: InteractionModel, state: StreamState, inputs: dict, rng: jax.Array, *,
                teacher: dict | None = None, **kw) -> tuple[StreamState, dict]:
    """`step` scanned over micro-turns: inputs (and teacher) carry a (B, T, ...) time axis."""
    time_first = lambda tree: jax.tree.map(lambda x: jnp.moveaxis(x, 1, 0), tree)

    def body(state, xs):
        turn_inputs, turn_teacher, key = xs
        return step(model, state, turn_inputs, key, teacher=turn_teacher, **kw)

    t = inputs["user_audio"].shape[1]
    keys = jax.vmap(lambda k: jax.random.split(k, t), out_axes=1)(rng) if rng.ndim else jax.random.split(rng, t)
    state, outputs = jax.lax.scan(body, state, (time_first(inputs), time_first(teacher) if teacher else None, keys))
    return state, jax.tree.map(lambda x: jnp.moveaxis(x, 0, 1), outputs)


def make_step(graphdef, *, mesh=None, rules=None, state_shardings=None, **sampling):
    """Jitted (params, state, inputs, seeds (B,), microturns (B,), fresh (B,) bool) -> (state, outputs), the
    step of sessions held as slots of one batch: the flagged slots start new sessions, then every slot takes
    one micro-turn, sampling from its own key (its session's seed folded with the session's micro-turn), so
    a session's outputs do not depend on the slot it has or the sessions beside it. State donated.
    `sampling`: `step`'s keywords (flow_steps, temperature, audio_temperature, speak_threshold,
    keep_threshold, byte_threshold). On a `mesh`, activations are laid out by `rules` and the new state
    keeps `state_shardings`. Every caller that streams (evaluation, live sessions, training samples,
    benchmarks, the scale plan) gets its step here."""
    def run(params, state, inputs, seeds, microturns, fresh):
        model = nnx.merge(graphdef, params)
        keys = jax.vmap(lambda s, m: jax.random.fold_in(jax.random.key(s), m))(seeds, microturns)
        with sharding.use_rules(mesh, rules) if mesh is not None else contextlib.nullcontext():
            return step(model, reset(state, fresh), inputs, keys, **sampling)

    placed = {} if state_shardings is None else {"out_shardings": (state_shardings, None)}
    return jax.jit(run, donate_argnums=1, **placed)


def idle_inputs(layout, sessions: int) -> dict:
    """One micro-turn of nothing for `sessions` slots, as host arrays: silence (dMel bin 0), no video, no text."""
    shapes = abstract_inputs(layout, sessions)
    out = {name: np.zeros(s.shape, s.dtype) for name, s in shapes.items()}
    out["text_in"][:] = int(text.Special.PAD)
    return out
