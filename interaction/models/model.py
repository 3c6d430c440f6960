"""The interaction model: micro-turn blocks in, text logits and audio-patch conditioning out.

Training sees a window of T micro-turn blocks as one causal sequence of T x block_len tokens
(docs/design.md). Input-segment positions embed what arrived; output-segment positions embed the model's
*previous* output group (teacher forcing: text position p sees the text slots of position p-1, audio position
q the frames of q-1, across block boundaries), so the hidden state at an output position predicts that
position's own group: the text depth head reads its slots out one by one (`text_depth`), the flow head draws
its frames as one patch. With groups of 1 a position is one slot or one frame. Positions are absolute
(micro-turn index x block_len + position), and every position adds its stream's embedding.

The hidden state at a block's first text-out position is where the model decides whether to speak (its first
slot's token is its speaking state); the listening heads read the same vector, so what they are taught
to hear (`listening.NAMES`) is what the decision sees.
"""
from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from interaction.codecs import dmel, pitch, text
from interaction.codecs.dmel import DMelConfig
from interaction.data import listening
from interaction.data.layout import END_MARK_TOKEN, MicroTurnLayout, Stream
from interaction.models import embedders, spoken_words
from interaction.models.flow_head import FlowHead, flow_loss
from interaction.models.flow_head import sample as flow_sample
from interaction.models.layers import LECUN, Linear, dense, param
from interaction.models.moe import MoE
from interaction.models.moe import param_count as moe_param_count
from interaction.models.text_depth import TextDepth
from interaction.models.transformer import DecoderSpec, make_decoder, moe_spec
from interaction.sharding import constrain


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    decoder: DecoderSpec
    layout: MicroTurnLayout = MicroTurnLayout()
    flow_hidden: int = 128
    flow_depth: int = 2
    balance_weight: float = 0.01
    z_weight: float = 0.001
    listen_weight: float = 0.5  # of the listening heads' cross-entropy beside the text and flow losses
    stop_weight: float = 1.0  # of the listening heads, again, where the user stops and the block after (`stops`)
    turn_stem: bool = False  # the user's micro-turn of audio also heard whole (`InteractionModel.heard`)
    transcript_weight: float = 0.0  # of the user's transcript read out at the user-audio slots (0: not trained)
    text_alone_weight: float = 0.0  # of its words as text alone (`text_alone_logits`; 0: not trained)
    depth_reads_before: bool = False  # the text depth head also reads the group before its position's (`TextDepth`)
    voice_reads_words: bool = False  # the flow head also reads the words being said (`spoken_words`)
    voice_prior: bool = False  # ... and its flow starts from their patch's mean, learned apart (`spoken_words`)
    flow_noise: float = 1.0  # the spread of the noise the flow starts from, in normalised frame units (`FlowHead`)
    floor_weight: float = 4.0  # of the speaking-state slot against one byte slot in the text loss
    silent_byte_weight: float = 0.1  # of the byte slots of a silent row (always PAD; the step forces them)
    switch_weight: float = 8.0  # of the speaking state, again, where it changes (a start or a stop)
    hold_weight: float = 1.0  # of the speaking state, again, where it holds through a hold (`holds`)
    flat_audio_share: float = 0.0  # training: windows whose fed-back voiced frames are flattened (`flatten_fed_audio`)
    own_audio_share: float = 0.5  # training: windows whose fed-back voiced frames are the model's own (`own_fed_audio`)
    level_audio_share: float = 0.0  # training: windows whose voiced frames are one flat frame (`level_fed_audio`)
    babble_text_share: float = 0.0  # training: windows whose fed-back voiced bytes are babble (`babble_fed_text`)
    babble_voiced: bool = False  # training: ... and whose fed-back frames are its own voicing of that babble
    babble_runs: bool = False  # training: ... and whose babble reads the window's own text on, round and round
    babble_ends: bool = False  # training: ... and whose byte slots learn where its words end (`words_end_loss`)
    audio_temperature: float = 0.0  # of the flow's own frames: in `own_fed_audio` and the streaming step's default
    dtype: str = "float32"  # activations and matmuls; parameters and optimizer state stay float32

    @classmethod
    def from_config(cls, c) -> "ModelSpec":
        """From an `experiments/configs/model.py` config."""
        d, lay = c.decoder, c.layout
        layout = MicroTurnLayout(dmel=DMelConfig(frame_rate=lay.frame_rate), video_size=lay.video_size,
                                 text_in_slots=lay.text_in_slots, text_out_slots=lay.text_out_slots,
                                 # runs saved before the groups existed have one position per frame and slot
                                 user_audio_group=lay.get("user_audio_group", 1),
                                 audio_group=lay.get("audio_group", 1), text_group=lay.get("text_group", 1),
                                 pitch=lay.get("pitch", False), end_mark=lay.get("end_mark", False))
        moe = moe_spec(d.moe) if d.get("moe") and d.moe.num_experts else None  # 0 experts: dense in every layer
        window_turns = d.get("local_window_turns")  # configs speak micro-turns; the decoder, positions
        decoder = DecoderSpec(embed=d.embed, layers=d.layers, heads=d.heads, kv_heads=d.kv_heads,
                              head_dim=d.head_dim, mlp=d.mlp, moe=moe, rope_base=d.rope_base,
                              deterministic=d.get("deterministic", False),  # runs saved before the fields existed
                              remat=d.get("remat", False), scan_layers=d.get("scan_layers", False),
                              local_window=None if window_turns is None else window_turns * layout.block_len,
                              global_every=d.get("global_every"))
        return cls(decoder=decoder, layout=layout, flow_hidden=c.flow_hidden, flow_depth=c.flow_depth,
                   balance_weight=c.balance_weight, z_weight=c.z_weight,
                   listen_weight=c.get("listen_weight", cls.listen_weight),
                   stop_weight=c.get("stop_weight", cls.stop_weight),
                   turn_stem=c.get("turn_stem", cls.turn_stem),
                   transcript_weight=c.get("transcript_weight", cls.transcript_weight),
                   text_alone_weight=c.get("text_alone_weight", cls.text_alone_weight),
                   depth_reads_before=c.get("depth_reads_before", cls.depth_reads_before),
                   voice_reads_words=c.get("voice_reads_words", cls.voice_reads_words),
                   voice_prior=c.get("voice_prior", cls.voice_prior),
                   flow_noise=c.get("flow_noise", cls.flow_noise),
                   floor_weight=c.get("floor_weight", cls.floor_weight),
                   silent_byte_weight=c.get("silent_byte_weight", cls.silent_byte_weight),
                   switch_weight=c.get("switch_weight", cls.switch_weight),
                   hold_weight=c.get("hold_weight", cls.hold_weight),
                   flat_audio_share=c.get("flat_audio_share", cls.flat_audio_share),
                   own_audio_share=c.get("own_audio_share", cls.own_audio_share),
                   level_audio_share=c.get("level_audio_share", cls.level_audio_share),
                   babble_text_share=c.get("babble_text_share", cls.babble_text_share),
                   babble_voiced=c.get("babble_voiced", cls.babble_voiced),
                   babble_runs=c.get("babble_runs", cls.babble_runs),
                   babble_ends=c.get("babble_ends", cls.babble_ends),
                   audio_temperature=c.get("audio_temperature", cls.audio_temperature),
                   dtype=c.get("dtype", "float32"))

    @property
    def mel_center(self) -> float:
        return (self.layout.dmel.log_min + self.layout.dmel.log_max) / 2

    @property
    def mel_scale(self) -> float:
        return (self.layout.dmel.log_max - self.layout.dmel.log_min) / 2

    def log_mel(self, flow_out: jax.Array) -> jax.Array:
        """The flow head's (normalised) frames as log-mel in the codec's range."""
        dm = self.layout.dmel
        return jnp.clip(flow_out * self.mel_scale + self.mel_center, dm.log_min, dm.log_max)

    def __post_init__(self):
        if self.transcript_weight > 0 and self.layout.user_audio_group > 1:
            raise ValueError(f"transcript_weight={self.transcript_weight} reads the user's words out at one "
                             f"position per frame; user_audio_group={self.layout.user_audio_group} groups the "
                             "frames. Set one of them to its default (0, 1).")
        if self.flat_audio_share > 0 and self.own_audio_share > 0:
            raise ValueError(f"flat_audio_share={self.flat_audio_share} and own_audio_share={self.own_audio_share}: "
                             "both replace the fed-back frames; set one of them to 0")
        if self.babble_voiced and not (self.babble_text_share > 0 and self.own_audio_share > 0):
            raise ValueError(f"babble_voiced=True voices the babble of the babble windows with the model's own frames: "
                             f"it needs babble_text_share > 0 and own_audio_share > 0 (got {self.babble_text_share} "
                             f"and {self.own_audio_share})")
        for name in ("babble_runs", "babble_ends"):
            if getattr(self, name) and not self.babble_text_share > 0:
                raise ValueError(f"{name}=True acts on the babble windows: it needs babble_text_share > 0 "
                                 f"(got {self.babble_text_share})")
        if self.voice_prior and not self.voice_reads_words:
            raise ValueError("voice_prior=True draws the patch's mean from the words being said: it needs "
                             "voice_reads_words=True as well")


def _shift_right(x: jax.Array, fill, group: int = 1) -> jax.Array:
    """Shifts a (B, T, S, ...) stream by one group of `group` slots along the flattened (T*S) axis, a group
    of `fill` entering first."""
    b, t, s = x.shape[:3]
    flat = x.reshape(b, t * s // group, group, *x.shape[3:])
    first = jnp.full_like(flat[:, :1], fill)
    return jnp.concatenate([first, flat[:, :-1]], axis=1).reshape(x.shape)


def _grouped(group: embedders.GroupEmbed | None, x: jax.Array) -> jax.Array:
    """(..., n, embed) per-item embeddings as positions: grouped, or as they are where the group is 1."""
    return x if group is None else group(x)


CHANGE_WIDTH = 1024  # the change stem's width at most: all of embed up to `small`, 14M parameters at 7168


class InteractionModel(nnx.Module):
    def __init__(self, spec: ModelSpec, *, rngs: nnx.Rngs, dtype=None):
        d, lay = spec.decoder.embed, spec.layout
        dtype = jnp.dtype(spec.dtype if dtype is None else dtype)
        self.spec = spec
        det = spec.decoder.deterministic
        self.audio = embedders.DMelEmbed(lay.dmel.n_mels, lay.dmel.n_bins, d, rngs=rngs, dtype=dtype, deterministic=det)
        self.video = embedders.HMLPStem(d, rngs=rngs, dtype=dtype, deterministic=det)
        self.motion = embedders.HMLPStem(d, rngs=rngs, dtype=dtype, deterministic=det, signed=True,
                                         width=CHANGE_WIDTH)
        self.text = embedders.embedding_table(text.VOCAB_SIZE, d, rngs=rngs, dtype=dtype)
        self.streams = embedders.embedding_table(len(Stream), d, rngs=rngs, dtype=dtype)
        def group(k: int) -> embedders.GroupEmbed | None:  # none where a position holds one item
            return embedders.GroupEmbed(k, d, rngs=rngs, dtype=dtype, deterministic=det) if k > 1 else None

        self.user_audio_group, self.audio_group = group(lay.user_audio_group), group(lay.audio_group)
        self.turn_stem = (Linear(lay.frames * lay.dmel.n_mels, d, (None, "embed"), rngs, dtype, zero=True,
                                 deterministic=det) if spec.turn_stem else None)
        self.pitch_stem = (Linear(lay.frames * pitch.FEATURES, d, (None, "embed"), rngs, dtype, zero=True,
                                  deterministic=det) if lay.pitch else None)
        self.text_group = group(lay.text_group)
        self.text_depth = (TextDepth(lay.text_group, d, spec.decoder.mlp, rngs=rngs, dtype=dtype, deterministic=det,
                                     reads_before=spec.depth_reads_before) if lay.text_group > 1 else None)
        self.decoder = make_decoder(spec.decoder, rngs=rngs, dtype=dtype, key_chunk=lay.block_len)
        self.text_head = param(rngs, LECUN, ("embed", "vocab"), (d, text.VOCAB_SIZE))
        self.listen_head = param(rngs, LECUN, ("embed", None), (d, len(listening.NAMES)))
        self.flow = FlowHead(lay.dmel.n_mels, d, spec.flow_hidden, spec.flow_depth, rngs=rngs, dtype=dtype,
                             deterministic=det, frames=lay.audio_group, prior=spec.voice_prior,
                             noise=spec.flow_noise)
        reads = spec.voice_reads_words
        self.spoken = spoken_words.SpokenWords(d, lay.frames, rngs=rngs, dtype=dtype, deterministic=det,
                                               group=lay.audio_group,
                                               prior=lay.dmel.n_mels if spec.voice_prior else 0) if reads else None

    def words_said(self, carry: jax.Array, turn: jax.Array) -> jax.Array:
        """The word tracker's carry after a micro-turn's text row (..., `spoken_words.CARRY`) and the micro-turn
        (...) -> (..., audio_positions, embed [+ patch]): what `flow_conditioning` adds to the decoder's outputs
        (`voice_reads_words`), and the patch's mean after it (`voice_prior`)."""
        lay = self.spec.layout
        return self.spoken(*spoken_words.words_and_ages(carry, turn, lay.frames, lay.audio_group))

    def flow_conditioning(self, h: jax.Array, said: jax.Array) -> jax.Array:
        """Decoder outputs at audio positions (..., embed) and their `words_said` -> the flow head's conditioning:
        the words' vector added, then the patch's mean the flow starts from (`voice_prior`)."""
        said = said.astype(h.dtype)
        d = h.shape[-1]
        cond = h + said[..., :d]
        return jnp.concatenate([cond, said[..., d:]], axis=-1) if self.spec.voice_prior else cond

    def text_logits(self, h: jax.Array) -> jax.Array:
        """(..., embed) decoder outputs -> (..., vocab) text logits."""
        return dense(h, self.text_head[...].astype(h.dtype), self.spec.decoder.deterministic)

    def listen_logits(self, h: jax.Array) -> jax.Array:
        """(..., embed) decoder outputs at a first text-out slot -> (..., len(listening.NAMES)) logits."""
        return dense(h, self.listen_head[...].astype(h.dtype), self.spec.decoder.deterministic).astype(jnp.float32)

    def text_vectors(self, h: jax.Array, tokens: jax.Array) -> jax.Array:
        """(..., P, embed) text-out positions and the (..., P * text_group) tokens of their slots -> the
        (..., P * text_group, embed) vectors the text head reads: the depth head's, or the positions' own."""
        if self.text_depth is None:
            return h
        g = self.spec.layout.text_group
        embedded = self.text(tokens).reshape(*h.shape[:-1], g, h.shape[-1])
        previous = None  # the group each position was fed: the one before it in the stream
        if self.text_depth.before is not None:
            previous = self.text(_shift_right(tokens, text.Special.PAD, g)).reshape(embedded.shape)
        out = self.text_depth(h, embedded, previous)
        return out.reshape(*out.shape[:-3], out.shape[-3] * g, out.shape[-1])

    def seen(self, frame: jax.Array, previous: jax.Array, new: jax.Array) -> jax.Array:
        """(..., P, 40, 40, 3) uint8 patches of the latest frame and of the new frame before it (the frame itself
        where none came before), `new` (...) whether the latest frame is new -> (..., P, embed): each patch's
        look plus its change, zero without a new frame. The change is what a drifting scene does not have:
        a shape that appears, vanishes or turns colour."""
        change = frame.astype(jnp.int16) - previous.astype(jnp.int16)
        return (self.video(frame) + self.motion(change)) * new[..., None, None]

    def heard(self, tokens: jax.Array, pitches: jax.Array) -> jax.Array:
        """(..., F, n_mels) user-audio dMel tokens and the same frames' (..., F, pitch.FEATURES) pitch numbers ->
        (..., user_positions, embed). With the turn stem, each position also gets a linear map of the whole
        micro-turn's bins as numbers in [-1, 1]: a weight for every frame and channel, so a level's rise or fall
        across the 200 ms is one learned direction; with the layout's `pitch`, likewise of its pitch numbers. The input
        segment has arrived whole when it is read, so its positions may see all of it."""
        out = _grouped(self.user_audio_group, self.audio(tokens))
        if self.turn_stem is not None:
            values = dmel.levels(tokens.astype(out.dtype), self.spec.layout.dmel)
            out = out + self.turn_stem(values.reshape(*values.shape[:-2], -1))[..., None, :]
        if self.pitch_stem is not None:
            out = out + self.pitch_stem(pitches.astype(out.dtype).reshape(*pitches.shape[:-2], -1))[..., None, :]
        return out

    def fed_text(self, tokens: jax.Array) -> jax.Array:
        """(..., n * text_group) text-out tokens heard back -> (..., n, embed) position embeddings."""
        return _grouped(self.text_group, self.text(tokens))

    def fed_audio(self, tokens: jax.Array) -> jax.Array:
        """(..., n * audio_group, n_mels) model-audio dMel tokens heard back -> (..., n, embed)."""
        return _grouped(self.audio_group, self.audio(tokens))

    def embed(self, batch: dict, fed_audio: jax.Array | None = None) -> jax.Array:
        """(B, T, block_len, embed) token embeddings of a window of blocks. `fed_audio` (default the batch's
        `model_audio`) is the model's own audio as it hears it back."""
        lay = self.spec.layout
        frames, new = batch["video"], batch["video_new"]
        # The new frame before each block's, within the window (the streaming state carries it across steps).
        before = jnp.cumsum(new, axis=1) - new > 0
        last_new = jnp.concatenate([frames[:, :1], frames[:, :-1]], axis=1)
        video = self.seen(frames, jnp.where(before[..., None, None, None, None], last_new, frames), new)
        prev_text = _shift_right(batch["text_out"], text.Special.PAD, lay.text_group)
        prev_audio = _shift_right(batch["model_audio"] if fed_audio is None else fed_audio, 0, lay.audio_group)
        parts = [self.heard(batch["user_audio"], batch["user_pitch"]), video, self.text(batch["text_in"]),
                 self.fed_text(prev_text), self.fed_audio(prev_audio)]
        blocks = jnp.concatenate(parts, axis=2) + self.streams(jnp.asarray(lay.stream_ids()))
        return constrain(blocks, ("activation_batch", "activation_time", None, "activation_embed"))

    def sequence(self, batch: dict, fed_audio: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        """A window of blocks as the decoder's one causal sequence: tokens (B, T*block_len, embed) and their
        absolute positions (B, T*block_len)."""
        x = self.embed(batch, fed_audio)
        b, t, length, d = x.shape
        positions = batch["time_index"][..., None] * length + jnp.arange(length)
        return x.reshape(b, t * length, d), positions.reshape(b, t * length)

    def hidden(self, batch: dict, fed_audio: jax.Array | None = None) -> tuple[jax.Array, dict]:
        """-> the decoder's output at every slot, (B, T, block_len, embed), and the MoE auxiliaries."""
        b, t = batch["time_index"].shape
        h, aux = self.decoder(*self.sequence(batch, fed_audio))
        return h.reshape(b, t, self.spec.layout.block_len, -1), aux

    def heads(self, h: jax.Array, batch: dict) -> tuple[jax.Array, jax.Array, jax.Array]:
        """(B, T, block_len, embed) and the window's `text_out` tokens (B, T, S_out) the depth head is teacher-forced
        on, with their `word_onset` and `time_index` -> text logits (B, T, S_out, vocab), audio conditioning (B, T,
        audio_positions, embed) and listening logits (B, T, K), read off the output segment."""
        lay = self.spec.layout
        out = h[:, :, lay.input_len :]
        vectors = self.text_vectors(out[:, :, : lay.text_positions], batch["text_out"])
        logits = constrain(self.text_logits(vectors), ("activation_batch", "activation_time", None, "activation_vocab"))
        cond = out[:, :, lay.text_positions :]
        if self.spoken is not None:
            said = self.spoken(*spoken_words.window_words(batch["text_out"], batch["word_onset"],
                                                          batch["time_index"], lay.frames, lay.audio_group))
            cond = self.flow_conditioning(cond, said)
        return logits.astype(jnp.float32), cond, self.listen_logits(out[:, :, 0])

    def text_alone_logits(self, rows: jax.Array, time_index: jax.Array) -> jax.Array:
        """(B, T, S_out) rows of text with nothing else (`pipeline.packed_words`) and their (B, T) micro-turns
        -> text logits (B, T, S_out, vocab): the decoder over the text-out positions alone, each at the position
        and with the stream embedding it has in a block, so that the language it learns here is the one the
        stream reads out."""
        lay = self.spec.layout
        b, t, _ = rows.shape
        x = self.fed_text(_shift_right(rows, text.Special.PAD, lay.text_group)).reshape(b, t * lay.text_positions, -1)
        first = lay.input_len
        streams = self.streams(jnp.asarray(lay.stream_ids()[first : first + lay.text_positions]))
        x = x + jnp.tile(streams, (t, 1))
        positions = (time_index[..., None] * lay.block_len + first + jnp.arange(lay.text_positions)).reshape(b, -1)
        h, _ = self.decoder(x, positions)
        h = h.reshape(b, t, lay.text_positions, -1)
        return self.text_logits(self.text_vectors(h, rows)).astype(jnp.float32)

    def transcript_logits(self, h: jax.Array) -> jax.Array:
        """(B, T, block_len, embed) -> (B, T, F, vocab): the user's words read out at the user-audio positions
        (one per frame), through the text head (one vocabulary for what it hears and what it says)."""
        return self.text_logits(h[:, :, : self.spec.layout.frames]).astype(jnp.float32)

    def __call__(self, batch: dict, fed_audio: jax.Array | None = None) -> tuple[jax.Array, jax.Array, jax.Array, dict]:
        """-> text logits (B, T, S_out, vocab), audio conditioning (B, T, audio_positions, embed), listening
        logits (B, T, K) and the MoE auxiliaries. `fed_audio`: see `embed`."""
        h, aux = self.hidden(batch, fed_audio)
        return (*self.heads(h, batch), aux)


def parameter_counts(model: InteractionModel) -> tuple[int, int]:
    """(total, active per token). Works on abstract models from `nnx.eval_shape` too."""
    total = sum(math.prod(p.shape) for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
    idle = 0  # routed experts a token does not use
    for block, _ in model.decoder.counted_blocks():  # a stacked block's experts hold every layer's
        if isinstance(block.ffn, MoE):
            moe_total, moe_active = moe_param_count(block.ffn)
            idle += moe_total - moe_active
    return total, total - idle


def _target(listen: jax.Array, name: str) -> jax.Array:
    """(..., K) listening targets -> (...) the one named (`listening.NAMES`)."""
    return listen[..., listening.NAMES.index(name)]


def stops(listen: jax.Array) -> jax.Array:
    """(B, T) where, by its listening targets (B, T, K), the user stops speaking in a block (and is silent for
    the next micro-turn) or stopped in the block before: where a mid-turn pause is told from a turn's end."""
    stop = (_target(listen, "user_now") > 0) & (_target(listen, "user_0.2s") == 0)
    return stop | jnp.concatenate([jnp.zeros_like(stop[:, :1]), stop[:, :-1]], axis=1)


def listen_loss(logits: jax.Array, targets: jax.Array, valid: jax.Array, stop_weight: float = 1.0) -> jax.Array:
    """Weighted mean binary cross-entropy of the listening heads (soft targets) over valid blocks, the blocks
    where the user stops (`stops`) weighing `stop_weight`: they are few (about 9%) and the rest are easy, so the
    weight moves the loss onto them without adding to it."""
    bce = optax.sigmoid_binary_cross_entropy(logits, targets).mean(-1)
    weights = valid * jnp.where(stops(targets), stop_weight, 1.0)
    return jnp.sum(bce * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def transcript_loss(logits: jax.Array, targets: jax.Array, valid: jax.Array, pad_weight: float) -> jax.Array:
    """Cross-entropy of the user's transcript (B, T, F) over valid blocks, its PAD slots weighing `pad_weight`
    (most slots are empty: without it the read-out learns to say nothing)."""
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    weights = jnp.where(targets == text.Special.PAD, pad_weight, 1.0) * valid[..., None]
    return jnp.sum(ce * weights) / jnp.maximum(jnp.sum(valid) * targets.shape[-1], 1.0)


def holds(listen: jax.Array, state: jax.Array) -> jax.Array:
    """(B, T) where, by its listening targets (B, T, K), a block's speaking state (B, T) is a hold: silent,
    the user has paused and goes on within 1.2 s, or the user's speech is not addressed to the model (side
    talk); speaking, the user speaks over it and it goes on for most of the next 2 s (a backchannel, not an
    interruption, which it yields to)."""
    now = _target(listen, "user_now")
    paused = (now == 0) & (_target(listen, "user_1.2s") > 0)
    aside = (now > 0) & (_target(listen, "addressed") == 0)
    through = (now > 0) & (_target(listen, "model_2.0s") >= 0.75)
    return jnp.where(state > 0, through, paused | aside)


def text_weights(spec: ModelSpec, trained: jax.Array, state: jax.Array, slots: int,
                 hold: jax.Array | None = None) -> jax.Array:
    """(B, T, S_out) weights of the text loss from (B, T) `trained` and `state` (1 where the model speaks):
    the speaking state weighs `floor_weight`, times `switch_weight` where it differs from the row before
    (elsewhere it repeats what the fed-back audio already shows: after a silent row comes exact silence)
    and times `hold_weight` where it holds its state through a `hold`; a byte slot weighs 1, or
    `silent_byte_weight` in a silent row; untrained rows 0."""
    rows = jnp.where(state > 0, 1.0, spec.silent_byte_weight) * trained
    switch = jnp.concatenate([jnp.zeros_like(state[:, :1]), state[:, 1:] != state[:, :-1]], axis=1)
    first = spec.floor_weight * jnp.where(switch, spec.switch_weight, 1.0) * trained
    if hold is not None:
        first = first * jnp.where(hold, spec.hold_weight, 1.0)
    return jnp.concatenate([first[..., None], jnp.broadcast_to(rows[..., None], trained.shape + (slots - 1,))], -1)


def byte_loss(logits: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Cross-entropy of the byte slots (labels at or past `text.NUM_SPECIAL`) among the bytes alone, as the
    streaming step draws a byte once it has chosen to say one: (sum over them, their count)."""
    is_byte = labels >= text.NUM_SPECIAL
    byte_logits = logits[..., text.NUM_SPECIAL :]
    ce = optax.softmax_cross_entropy_with_integer_labels(byte_logits, jnp.maximum(labels - text.NUM_SPECIAL, 0))
    return jnp.sum(ce * is_byte), is_byte.sum().astype(jnp.float32)


def words_end_loss(logits: jax.Array, labels: jax.Array, rows: jax.Array) -> jax.Array:
    """(sum over the byte slots of (B, T) `rows`) binary cross-entropy of PAD against any byte: whether a slot
    holds a word's byte, not which. In the babble windows the bytes it heard say nothing of the answer, so
    where its words end has to come from how long it has spoken and what it heard, as it must free-running,
    where a small model's words run on past its answer's end."""
    log_p = jax.nn.log_softmax(logits[..., 1:, :].astype(jnp.float32))[..., text.Special.PAD]
    log_not = jnp.log(-jnp.expm1(jnp.minimum(log_p, -1e-6)))
    ce = -jnp.where(labels[..., 1:] == text.Special.PAD, log_p, log_not)
    return jnp.sum(ce * rows[..., None])


def flatten_fed_audio(tokens: jax.Array, voiced: jax.Array, share: float, rng: jax.Array) -> jax.Array:
    """(B, T, F, n_mels) fed-back dMel tokens with, in a `share` of the windows, every voiced micro-turn's
    frames replaced by their mean: free-running, the flow's frames from its mean are a steady spectrum with
    no pause between words and no fall at the end, so how an utterance ends must be heard elsewhere."""
    pick = jax.random.uniform(rng, tokens.shape[:1]) < share
    mean = jnp.round(tokens.mean(axis=2, keepdims=True)).astype(tokens.dtype)
    flat = (pick[:, None] & (voiced > 0))[..., None, None]
    return jnp.where(flat, jnp.broadcast_to(mean, tokens.shape), tokens)


def level_fed_audio(tokens: jax.Array, voiced: jax.Array, share: float, bins: int, rng: jax.Array) -> jax.Array:
    """(B, T, F, n_mels) fed-back dMel tokens with, in a `share` of the windows, every voiced frame replaced by
    one flat frame whose bin (of `bins`) is drawn per window, from silence to the top. Streamed, a model's own
    frames can drift to silence while it means to go on, or hold their level where it should stop; in these
    windows what it hears of itself says nothing, so when to end its turn must come from what it said and
    what it heard."""
    k_pick, k_level = jax.random.split(rng)
    pick = jax.random.uniform(k_pick, tokens.shape[:1]) < share
    level = jax.random.randint(k_level, tokens.shape[:1], 0, bins).astype(tokens.dtype)
    flat = (pick[:, None] & (voiced > 0))[..., None, None]
    return jnp.where(flat, level[:, None, None, None], tokens)


def babble_fed_text(tokens: jax.Array, voiced: jax.Array, share: float, rng: jax.Array,
                    keep: int | None = None, runs: bool = False) -> tuple[jax.Array, jax.Array]:
    """(B, T, S_out) text-out tokens as the model hears them back, with, in a `share` of the windows, the byte
    slots of every voiced row replaced by babble drawn from the window's own bytes, at a density drawn per
    window. Free-running, a small model's words are babble that runs on without an end; in these windows what
    it has said tells nothing of where its turn ends, so the stop has to come from how long it has spoken, what
    it hears of itself and the user. Each slot draws a byte at random; with `runs`, each voiced row's bytes come
    first in the row, read in order from a random byte of the window's text on, round and round: word-like text
    that loops and does not run out, as a small model's free-running words do. A `keep` token (the end mark)
    stays where it is and is never drawn: free-running, it is where the model put it. Returns the tokens and
    the (B,) windows picked."""
    k_pick, k_density, k_slot, k_byte = jax.random.split(rng, 4)
    b, rows, slots = tokens[..., 1:].shape
    pick = jax.random.uniform(k_pick, (b,)) < share
    said = tokens[..., 1:].reshape(b, -1)
    real = said >= text.NUM_SPECIAL
    if keep is not None:
        real &= said != keep
    n = real.sum(-1, keepdims=True)
    order = jnp.argsort(~real, axis=-1, stable=True)  # the window's bytes first, in order
    density = jax.random.uniform(k_density, (b, 1), minval=0.1, maxval=0.9)
    on = (jax.random.uniform(k_slot, said.shape) < density) & (n > 0)
    replace = (pick[:, None] & (voiced > 0))[..., None]
    if runs:
        count = on.reshape(b, rows, slots).sum(-1, keepdims=True)
        on = ((jnp.arange(slots) < count) & (voiced > 0)[..., None]).reshape(b, -1)
        start = jax.random.randint(k_byte, (b, 1), 0, jnp.maximum(n, 1))
        at = (start + jnp.cumsum(on, -1) - 1) % jnp.maximum(n, 1)
    else:
        at = jnp.floor(jax.random.uniform(k_byte, said.shape) * jnp.maximum(n, 1)).astype(jnp.int32)
    drawn = jnp.take_along_axis(said, jnp.take_along_axis(order, at, -1), -1)
    babble = jnp.where(on, drawn, text.Special.PAD).astype(tokens.dtype).reshape(tokens[..., 1:].shape)
    if keep is not None:
        replace &= tokens[..., 1:] != keep
    return jnp.concatenate([tokens[..., :1], jnp.where(replace, babble, tokens[..., 1:])], -1), pick


OWN_AUDIO_FLOW_STEPS = 8  # as the streaming step samples by default


def own_fed_audio(model: InteractionModel, batch: dict, voiced: jax.Array, share: float,
                  rng: jax.Array, also: jax.Array | None = None) -> jax.Array:
    """(B, T, F, n_mels) fed-back dMel tokens with, in a `share` of the windows, every voiced micro-turn's
    frames replaced by the model's own: the flow at the spec's `audio_temperature` from one teacher-forced
    pass, quantised as the streaming step quantises what it feeds back. Free-running, the model hears its
    own frames, not the reference's; trained on them it learns to stop from what they carry (parallel
    scheduled sampling, one pass, no gradient through it)."""
    _, cond, _, _ = model(batch)
    mel = flow_sample(model.flow, jax.lax.stop_gradient(cond), rng, steps=OWN_AUDIO_FLOW_STEPS,
                      temperature=model.spec.audio_temperature)
    lay = model.spec.layout
    own = dmel.quantize(model.spec.log_mel(lay.audio_frames(mel)), lay.dmel).astype(batch["model_audio"].dtype)
    tokens = batch["model_audio"]
    pick = jax.random.uniform(jax.random.fold_in(rng, 1), tokens.shape[:1]) < share
    if also is not None:
        pick |= also
    return jnp.where((pick[:, None] & (voiced > 0))[..., None, None], own, tokens)


def losses(model: InteractionModel, batch: dict, rng: jax.Array) -> tuple[jax.Array, dict]:
    """Text cross-entropy on the output segment of trained blocks, flow matching on their voiced frames
    (a silent micro-turn plays exact silence, nothing is sampled there), the listening heads and the user's
    transcript on every valid block, plus the MoE terms."""
    spec = model.spec
    state = (batch["text_out"][..., 0] == text.Special.VOICED).astype(jnp.float32)
    fed, worded, babbled = batch, jnp.ones_like(state), None  # worded: rows whose bytes and frames are trained
    if spec.babble_text_share > 0:
        fed_text, babbled = babble_fed_text(batch["text_out"], state, spec.babble_text_share,
                                            jax.random.fold_in(rng, 4),
                                            keep=END_MARK_TOKEN if spec.layout.end_mark else None,
                                            runs=spec.babble_runs)
        fed, worded = dict(batch, text_out=fed_text), 1.0 - babbled[:, None] * state  # no words to learn there
    fed_audio = None
    if spec.flat_audio_share > 0:
        fed_audio = flatten_fed_audio(batch["model_audio"], state, spec.flat_audio_share, jax.random.fold_in(rng, 1))
    if spec.own_audio_share > 0:
        # With `babble_voiced`, a babble window hears its babble voiced, as free-running it hears its own words:
        # then neither what it wrote nor what it heard of itself tells where the reference's turn ends.
        fed_audio = own_fed_audio(model, fed if spec.babble_voiced else batch, state, spec.own_audio_share,
                                  jax.random.fold_in(rng, 2), also=babbled if spec.babble_voiced else None)
    if spec.level_audio_share > 0:
        fed_audio = level_fed_audio(batch["model_audio"] if fed_audio is None else fed_audio, state,
                                    spec.level_audio_share, spec.layout.dmel.n_bins, jax.random.fold_in(rng, 3))
    h, aux = model.hidden(fed, fed_audio)
    logits, cond, listen = model.heads(h, fed)
    trained = batch["trained"].astype(jnp.float32)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, batch["text_out"])  # (B, T, S_out)
    voiced = trained * state * worded
    weights = text_weights(spec, trained, state, ce.shape[-1], holds(batch["listen"], state))
    weights = weights.at[..., 1:].multiply(worded[..., None])
    text_loss = jnp.sum(ce * weights) / jnp.maximum(
        jnp.sum(trained) * ce.shape[-1], 1.0)
    target = spec.layout.audio_patches((batch["model_mel"] - spec.mel_center) / spec.mel_scale)
    audio_loss = flow_loss(model.flow, target, cond, rng, mask=jnp.broadcast_to(voiced[..., None], target.shape[:-1]))
    hear_loss = listen_loss(listen, batch["listen"], batch["valid"].astype(jnp.float32), spec.stop_weight)
    metrics = {"text_loss": text_loss, "flow_loss": audio_loss, "listen_loss": hear_loss}
    total = text_loss + audio_loss + spec.listen_weight * hear_loss
    if spec.babble_ends:  # as the text loss weighs a voiced row's byte slots, over the same count
        metrics["words_end_loss"] = words_end_loss(logits, batch["text_out"], trained * state * babbled[:, None]) / \
            jnp.maximum(jnp.sum(trained) * ce.shape[-1], 1.0)
        total = total + metrics["words_end_loss"]
    if model.spoken is not None:  # its words' dates and, with `voice_prior`, the patch's mean, each taught by its
        # own loss alone, from the window's own text (not its babble) wherever the speech is the model's
        turns, lay = batch["time_index"], spec.layout
        carries, before = spoken_words.track(batch["text_out"], batch["word_onset"], turns, lay.frames)
        at = (batch["word_onset"] >= 0) & ((batch["valid"] * state)[..., None] > 0)  # each word's first byte
        ce = optax.softmax_cross_entropy_with_integer_labels(model.spoken.onset_logits(before, turns[..., None]),
                                                             jnp.maximum(batch["word_onset"], 0))
        metrics["onset_loss"] = jnp.sum(ce * at) / jnp.maximum(jnp.sum(at), 1)
        total = total + metrics["onset_loss"]
        if spec.voice_prior:  # the mean where the word is known
            hashes, ages = spoken_words.words_and_ages(carries, turns, lay.frames, lay.audio_group)
            error = jnp.square(model.spoken.patch_mean(hashes, ages).astype(jnp.float32) - target).mean(-1)
            mask = (batch["valid"] * state)[..., None] * (hashes[..., 0] > 0)
            metrics["prior_loss"] = jnp.sum(error * mask) / jnp.maximum(jnp.sum(mask), 1.0)
            total = total + metrics["prior_loss"]
    if spec.text_alone_weight > 0:
        total_ce, count = byte_loss(model.text_alone_logits(batch["text_alone"], batch["time_index"]),
                                    batch["text_alone"])
        metrics["text_alone_loss"] = total_ce / jnp.maximum(count, 1.0)
        total = total + spec.text_alone_weight * metrics["text_alone_loss"]
    if spec.transcript_weight > 0:
        metrics["transcript_loss"] = transcript_loss(model.transcript_logits(h), batch["user_text"],
                                                     batch["valid"].astype(jnp.float32), spec.silent_byte_weight)
        total = total + spec.transcript_weight * metrics["transcript_loss"]
    if aux:
        total = total + spec.balance_weight * aux["balance_loss"] + spec.z_weight * aux["router_z_loss"]
        metrics.update(balance_loss=aux["balance_loss"], router_z_loss=aux["router_z_loss"],
                       expert_load=aux["expert_load"])
    return total, metrics
