"""Synthetic duplex corpus. `--config=experiments/configs/corpus.py:tiny` (default), `:small` or `:long`.

tiny: 198 training conversations (18 per kind) and 220 held out (20 per kind, so that every rate the
benchmark reports rests on at least 20 samples), in under a minute on 2 CPU cores.
small: 1,980 training conversations and the same 220 held out, for longer CPU or accelerator runs.
long: small with the stories (`model_backchannel`) three times in the training split's cycle of 13 kinds (457 of
  the 1,980), the long recipe's corpus; the same 220 held out, byte for byte.
"""
import ml_collections

from interaction.data import scenarios

SIZES = {"tiny": (198, 220), "small": (1980, 220), "long": (1980, 220)}
_EXTRA_KINDS = {"long": "model_backchannel,model_backchannel"}  # a story's sentence ends take many stories to learn


def get_config(arg: str = "tiny") -> ml_collections.ConfigDict:
    if arg not in SIZES:
        raise ValueError(f"unknown corpus size {arg!r}; choose one of {sorted(SIZES)}")
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.num_train, c.num_eval = SIZES[arg]
    c.kinds = ",".join(scenarios.KINDS)  # comma-separated; conversation i has the (i mod count)-th kind
    # kinds the training split's cycle holds again after `kinds` (more of them to learn from)
    c.train_extra_kinds = _EXTRA_KINDS.get(arg, "")
    c.workers = 0  # 0: one per CPU core
    c.export_fdb = True  # held-out split also in Full-Duplex-Bench's per-sample layout

    c.voices = ml_collections.ConfigDict()
    c.voices.model = "en-us+f2"
    c.voices.user = ["en-us+m3", "en+m1", "en-us+f4", "en+f5", "en-us+m7"]  # training users (and bystanders)
    c.voices.heldout_user = ["en+m2", "en-us+f3", "en+m6"]  # the held-out split's: never heard in training
    c.voices.foreign = ["es+m3", "fr+f2", "de+m2"]  # translation sources (one per language)

    c.video = ml_collections.ConfigDict()
    c.video.fps = 5.0  # one frame per micro-turn
    c.video.size = 80  # 2x2 patches of 40x40

    t = c.timing = ml_collections.ConfigDict()
    t.gap_median, t.gap_sigma = 0.2, 0.4  # turn-taking gaps, log-normal around 200 ms
    t.overlap_prob = 0.3  # share of user turns that start before the model has finished
    t.overlap_median, t.overlap_sigma = 0.25, 0.5
    t.pause_min, t.pause_max = 0.3, 1.2  # mid-turn user pauses
    t.hesitation_prob = 0.3  # share of ordinary user turns that open with "um, so," and a pause
    t.interrupt_min, t.interrupt_max = 1.5, 3.0  # interruption onset into the model's speech
    # The model keeps talking this long into an interruption (rounded up to a micro-turn's edge): 0.4 s, when a
    # backchannel is mostly over, so a stop the model makes sooner is one it cannot yet know it should make
    t.stop_latency_median, t.stop_latency_sigma = 0.4, 0.0
    # How the user's voice marks an onset over the model's speech, against the user's turns (dB; espeak pitch
    # steps of 0-99): an interruption cuts in louder and higher, as turn-competitive incomings do; a backchannel
    # is quieter and lower. 0 and 0: both sound like the user's turns, and only their words tell them apart
    t.interruption_db, t.interruption_pitch = 0.0, 0
    t.backchannel_db, t.backchannel_pitch = 0.0, 0
    t.false_start_prob = 0.5  # training only: share of paused turns' and stories' pauses (those without a
    # backchannel) where the model starts too soon and stops when the user goes on (`Script.false_start`)
    t.false_yield_prob = 0.5  # training only: share of the user's backchannels the model stops for, then goes on
    # with the next sentence of its answer once the user is quiet (`Script.false_yield`)
    t.contrast_onset_prob = 0.0  # training only: share of interruptions with backchannels before them, and of
    # backchannel conversations interrupted after the first (`Script.contrast_onsets`)
    t.background_db_min, t.background_db_max = 10.0, 25.0  # background speakers below the user
    t.side_talk_db, t.side_talk_lowpass_hz = -10.0, 1500.0  # the user turned away, talking to someone else
    t.snr_db_min, t.snr_db_max = 20.0, 40.0  # noise on the user channel
    t.user_gain_db_min, t.user_gain_db_max = -6.0, 3.0
    t.reasoner_latency_min, t.reasoner_latency_max = 1.0, 3.0
    t.search_delegation_share = 0.25  # delegated questions about the search collection (search, open, read)
    t.remark_latency_median = 0.6  # model's reaction to a visual cue
    t.timer_seconds = [5, 6, 8, 10]
    t.tail = 1.0  # seconds of audio after the last speech
    return c
