"""Interaction model configs: `--config=experiments/configs/model.py:tiny` | `:small` | `:tml_small_paper`.

tiny trains on a 2-core CPU in minutes; small takes hours there and minutes on an accelerator;
tml_small_paper is the published scale (about 276B total and 12B active parameters) and is only ever
built abstractly (`nnx.eval_shape`).
"""
import ml_collections

from interaction import sharding

_DECODERS = {
    #                embed layers heads kv head_dim  mlp   experts top_k every
    "tiny": dict(embed=64, layers=4, heads=4, kv_heads=2, head_dim=16, mlp=128,
                 moe=dict(num_experts=4, top_k=2, every=2)),
    "small": dict(embed=256, layers=8, heads=8, kv_heads=2, head_dim=32, mlp=512,
                  moe=dict(num_experts=8, top_k=2, every=2)),
    "tml_small_paper": dict(embed=7168, layers=44, heads=56, kv_heads=8, head_dim=128, mlp=1792,
                            moe=dict(num_experts=160, top_k=4, every=1)),
}
# Local attention (window in micro-turns, every how many layers one is global). small's local layers see
# 5 s, the length of its training windows: training is the same with them or without, and when it serves
# a longer context only its global layers (3 and 7) attend beyond what any layer saw in training. With
# its 4:1 grouped-query heads (8 query, 2 kv), every streaming pass over 30 s of context reads 8.3 MB of
# cache instead of the 44 MB of 4 kv heads in every layer: the cache, not the weights, is what a
# micro-turn's 17 sequential passes read most.
# tiny's layers are all local over its 4 s training windows, so that a session of any length looks, to
# every layer, like what it was trained on.
_LOCAL = {"tiny": (20, None), "small": (25, 4)}
_FLOW = {"tiny": (64, 2), "small": (256, 3), "tml_small_paper": (1024, 4)}
_FRAME_RATE = {"tiny": 40, "small": 40, "tml_small_paper": 80}
# Frames and text slots per decoder position (`MicroTurnLayout`), for every size: the streaming step makes one
# sequential pass per output position, text_out_slots / text_group + frames / audio_group in all.
GROUPS = dict(user_audio_group=4, audio_group=4, text_group=4)


def get_config(arg: str = "tiny") -> ml_collections.ConfigDict:
    if arg not in _DECODERS:
        raise ValueError(f"unknown model size {arg!r}; choose one of {sorted(_DECODERS)}")
    c = ml_collections.ConfigDict()
    c.name = arg
    d = dict(_DECODERS[arg])
    moe = d.pop("moe")
    c.decoder = ml_collections.ConfigDict(d)
    c.decoder.rope_base = 10_000.0
    # Batch-invariant arithmetic (bitwise equal alone / in a batch / in training); needs moe.impl="dense".
    c.decoder.deterministic = False
    c.decoder.remat = False  # recompute each block in the backward pass (activation memory of one block, not all)
    c.decoder.scan_layers = False  # one stacked block under a scan (needs moe.every=1)
    # Local attention: layers see only the last local_window_turns micro-turns, but for every global_every-th,
    # which sees the whole context (unset: every layer global; global_every unset: every layer local).
    window, every = _LOCAL.get(arg, (None, None))
    c.decoder.local_window_turns = ml_collections.FieldReference(window, field_type=int)
    c.decoder.global_every = ml_collections.FieldReference(every, field_type=int)
    # num_experts=0: a dense SwiGLU in every layer (`--config.model.decoder.moe.num_experts=0`)
    c.decoder.moe = ml_collections.ConfigDict(dict(moe, shared_expert=False, capacity_factor=1.25,
                                                   capacity_groups="batch", dispatch="dropless",
                                                   impl="auto"))
    c.dtype = "float32"  # activations and matmuls (parameters and optimizer state are always float32)
    c.flow_hidden, c.flow_depth = _FLOW[arg]
    c.balance_weight, c.z_weight = 0.01, 0.001
    c.listen_weight = 0.5  # the listening heads' loss beside the text and flow losses
    c.turn_stem = True  # the user's micro-turn of audio also heard whole: a linear map of all its frames' bins
    c.stop_weight = 1.0  # the listening heads again where the user stops and the block after: pause or turn end
    c.transcript_weight = 0.0  # the user's words read out at the user-audio slots (0: not trained)
    c.text_alone_weight = 0.0  # its words as text alone, packed, through the same decoder (0: not trained)
    c.depth_reads_before = False  # the text depth head also reads the group its position was fed
    c.voice_reads_words = False  # the flow head also reads the words being said and how long ago each began
    c.voice_prior = False  # ... and its flow starts from the patch's mean those words give (needs the above)
    c.flow_noise = 1.0  # the spread of the noise the flow starts from (normalised frame units)
    c.floor_weight = 4.0  # the text loss's speaking-state slot against one byte slot
    c.silent_byte_weight = 0.1  # the byte slots of a silent row (always PAD)
    c.switch_weight = 8.0  # the speaking-state slot again where it changes: a start or a stop
    c.flat_audio_share = 0.0  # training: windows whose fed-back voiced frames are flattened to their mean
    c.own_audio_share = 0.5  # training: windows whose fed-back voiced frames are the model's own (teacher-forced)
    c.level_audio_share = 0.0  # training: windows whose fed-back voiced frames are one flat frame at a random level
    c.babble_text_share = 0.0  # training: windows whose fed-back voiced bytes are babble (bytes and frames untrained)
    c.babble_voiced = False  # training: ... and whose fed-back frames are its own voicing of that babble
    c.babble_runs = False  # training: ... and whose babble reads the window's own text on in order, round and round
    c.babble_ends = False  # training: ... and whose byte slots learn where its words end (PAD or a byte, not which)
    # The flow's temperature for the model's own frames, in training (own_audio_share) and by default when it
    # streams: 1, as it serves (from its mean, 0, its frames are loud flat noise; docs/results.md). Trained on its
    # frames at 0 and served at 1, it heard itself quieter than it trained and ended its turns on that; with the
    # voice options, trained and served at 0, its turns end sooner still.
    c.audio_temperature = 1.0
    c.hold_weight = 1.0  # the speaking-state slot again where it holds: silent through a pause or side talk,
    # speaking through a backchannel
    # pitch: the user's pitch numbers computed and heard by a pitch stem beside the turn stem (codecs/pitch.py)
    # end_mark: the last word of each answer in its text stream ends with a period (data/pipeline.py)
    c.layout = ml_collections.ConfigDict(dict(frame_rate=_FRAME_RATE[arg], video_size=80, text_in_slots=8,
                                              text_out_slots=8, pitch=False, end_mark=False, **GROUPS))
    c.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, expert=1, tensor=1))  # -1: all remaining devices
    c.rules = ml_collections.ConfigDict({k: v for k, v in sharding.DEFAULT_RULES.items()})
    return c
