"""What the model decides at the moments that matter: a probe of its speaking state and listening heads.

Per held-out conversation it reads four things of the model, block by block:
- teacher-forced (the reference model channel fed back): the chance of speaking at the first text slot,
  at every block and where the reference starts and stops speaking;
- free-running (its own output fed back, as a listener hears it): whether it spoke, and its listening
  heads' probabilities. (Teacher-forced heads would see the reference's reply begin and so "predict" it.)
- its own channel held silent: the listening heads hearing the user alone, so how well they hear a turn's
  end is not mixed with what they hear of its own speech (`hearing_auc`);
- between the two, the reference's text and speaking state forced but its own frames fed back: the chance
  of going on speaking where the reference goes on, which says how much of its hold on the floor it takes
  from hearing itself;
and turns them into per-conversation counts at labelled moments, which `summarize` pools into rates with
95% bootstrap intervals over conversations. It reads decisions off the speaking state, so it needs no
vocoder or recognizer; the benchmark (`experiments.evaluate`) measures the same behaviour from audio.

Output of block m is played in micro-turn m + 1 (`MICROTURN_SECONDS` each); user speech in micro-turn k
is `listening.targets(...)[k, user_now]`.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from interaction import MICROTURN_SECONDS, SAMPLE_RATE
from interaction.data import listening
from interaction.data.conversation import Conversation
from interaction.evals import fdb_rules, intervals

STOP_WITHIN_S = 0.6  # an interruption is handled when the model is silent this soon after it begins
REPLY_WITHIN_S = 2.0  # a reply later than this after a turn end is a miss, not a latency
FALSE_AFTER_S = 0.5  # side talk and background: a response up to this long after they end counts
CUED_WITHIN_S = 2.0  # a timer going off or a visual change is answered by a turn begun this soon after it
# A pause is taken over by speaking in it for a turn's length, not by a backchannel (the stories' reference
# backchannels in their pauses): Full-Duplex-Bench's 1 s, plus the micro-turn its edges can add to a run.
TAKEOVER_S = fdb_rules.TURN_SECONDS + MICROTURN_SECONDS
_UNDER = listening.NAMES.index("user_now")
_END = listening.NAMES.index("turn_end")
_MODEL_2S, _USER_2S = listening.NAMES.index("model_2.0s"), listening.NAMES.index("user_2.0s")
STORY_KIND = "model_backchannel"  # the user tells a story in sentences, pausing after each whole one


def shift(listen: np.ndarray) -> np.ndarray:
    """The heads' chance that the model, not the user, speaks next: its share of the projected activity of
    the next 2 s (Voice Activity Projection's shift-or-hold)."""
    return listen[..., _MODEL_2S] / np.maximum(listen[..., _MODEL_2S] + listen[..., _USER_2S], 1e-6)


def _turns(t0: float, t1: float, n: int) -> np.ndarray:
    """Micro-turns overlapping [t0, t1), clipped to [0, n)."""
    a, b = listening.turn_of(t0), int(np.ceil(t1 / MICROTURN_SECONDS - 1e-6))
    return np.arange(max(a, 0), min(max(b, a + 1), n))


def played(voiced_blocks: np.ndarray) -> np.ndarray:
    """(M,) speaking state of blocks -> (M + 1,) whether the model speaks in each micro-turn."""
    return np.concatenate([[False], np.asarray(voiced_blocks, bool)])


def _run_edges(says: np.ndarray) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], says.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def runs(says: np.ndarray) -> list[float]:
    """Lengths in seconds of the runs of True in a (micro-turn,) speaking mask."""
    return [float(b - a) * MICROTURN_SECONDS for a, b in _run_edges(says)]


def run_seconds(says: np.ndarray) -> np.ndarray:
    """(len(says),) the length in seconds of the run of True each micro-turn is in (0 where False)."""
    out = np.zeros(len(says))
    for a, b in _run_edges(says):
        out[a:b] = (b - a) * MICROTURN_SECONDS
    return out


# Where floor F1 loses (`floor_errors`): F1 = 2TP / (2TP + FP + FN), so 1 - F1 is the sum of these shares of
# its denominator.
FLOOR_ERRORS = ("run_on", "early_start", "over_user", "elsewhere", "never_started", "late_start", "early_stop",
                "gap")


def floor_errors(says: np.ndarray, reference: np.ndarray, user: np.ndarray) -> dict[str, float]:
    """Micro-turns where its speaking state (says) and the reference's disagree, by where they lie. Speaking
    where the reference is silent: `run_on` (its speech goes on past the end of a reference turn it spoke
    in, unbroken), `early_start` (unbroken up to the start of one), else `over_user` (the user speaks) or
    `elsewhere`. Silent where the reference speaks, in each reference turn: all of it (`never_started`), or
    before its first micro-turn of speech there (`late_start`), after its last (`early_stop`), or between."""
    wrong = says & ~reference
    after, before = np.zeros_like(wrong), np.zeros_like(wrong)
    out = dict.fromkeys(FLOOR_ERRORS, 0.0)
    for a, b in _run_edges(reference):
        e = b
        while e < len(says) and wrong[e]:
            after[e], e = True, e + 1
        e = a - 1
        while e >= 0 and wrong[e]:
            before[e], e = True, e - 1
        spoken = np.flatnonzero(says[a:b])
        if not spoken.size:
            out["never_started"] += b - a
            continue
        first, last = spoken[0], spoken[-1]
        out["late_start"] += first
        out["early_stop"] += b - a - 1 - last
        out["gap"] += last - first + 1 - spoken.size
    rest = wrong & ~after & ~before
    out.update(run_on=after.sum(), early_start=(before & ~after).sum(), over_user=(rest & user).sum(),
               elsewhere=(rest & ~user).sum())
    return {k: float(v) for k, v in out.items()}


def words_ends(conv: Conversation, says: np.ndarray, reference: np.ndarray, wrote: np.ndarray) -> dict:
    """Where its words end and where it stops, at each reference turn it is speaking at the end of (micro-turn
    masks, as `counts` plays them; `wrote`: it wrote a byte there). `words_late`: from the micro-turn the
    reference's last word of the turn begins in to the last it wrote a byte in before falling silent (or before
    the recording ends); `stop_after_words`: from that micro-turn to its first silent one, where it stopped
    before the recording's end, and `stop_after_words_reference` the same of the reference. Seconds. Late
    words mean that what it says runs on; a late stop after its words, that it does not hear itself end."""
    starts = np.array([listening.turn_of(a) for a, _, _ in conv.model_words], np.int64)
    out = {"words_late": [], "stop_after_words": [], "stop_after_words_reference": []}
    for a, b in _run_edges(reference):
        inside = starts[(starts >= a) & (starts < b)]
        if not says[b - 1] or not inside.size:
            continue
        begun = b - 1
        while begun > 0 and says[begun - 1]:
            begun -= 1
        e = b
        while e < len(says) and says[e]:
            e += 1
        written = begun + np.flatnonzero(wrote[begun:e])
        if not written.size:
            continue
        out["words_late"].append(float(written[-1] - inside.max()) * MICROTURN_SECONDS)
        out["stop_after_words_reference"].append(float(b - inside.max()) * MICROTURN_SECONDS)
        if e < len(says):
            out["stop_after_words"].append(float(e - written[-1]) * MICROTURN_SECONDS)
    return out


def moments(conv: Conversation, m: int) -> list[tuple[bool, int]]:
    """(a turn end?, the micro-turn the user stops in) of every mid-turn pause and turn end that has a
    block after it: where hearing is probed."""
    stops = [(False, listening.turn_of(e.start)) for e in conv.events_of("pause")]
    stops += [(True, listening.turn_of(e.end)) for kind in listening.TURN_ENDS for e in conv.events_of(kind)]
    return [(end, k) for end, k in stops if k + 1 < m]


def smart_turn_scores(conv: Conversation, m: int, scorer) -> list[tuple[bool, float]]:
    """(a turn end?, Smart Turn's end-of-turn chance) at the probe's moments, from the user's channel (its last
    8 s) up to the end of the micro-turn after the stop (what the model has heard when its score is read): how much of
    the cue an end-of-turn model trained on real speech finds in the audio."""
    stops = moments(conv, m)
    if not stops:
        return []
    waves = [conv.user_audio[: int(round((k + 2) * MICROTURN_SECONDS * SAMPLE_RATE))] for _, k in stops]
    return [(end, float(p)) for (end, _), p in zip(stops, scorer.probabilities(waves))]


def counts(conv: Conversation, speak_tf: np.ndarray, voiced_fr: np.ndarray, listen_fr: np.ndarray,
           speak_own: np.ndarray | None = None, level_own: np.ndarray | None = None,
           level_ref: np.ndarray | None = None, listen_silent: np.ndarray | None = None,
           bytes_fr: np.ndarray | None = None) -> dict:
    """Per-conversation counts. speak_tf (M,) teacher-forced chance of speaking, voiced_fr (M,) the
    free-running speaking state and listen_fr (M, K) its listening probabilities; M blocks. speak_own (M,),
    if given: the chance of speaking with the reference's text forced but the model's own frames fed back;
    level_own and level_ref (M,), if given: the mean dMel bin of each block's own frames in that pass, and
    of the reference's; listen_silent (M, K), if given: the listening probabilities with its own channel
    held silent (what its heads hear of the user alone); bytes_fr (M,), if given: whether each free-running
    block wrote a byte."""
    m = len(voiced_fr)
    says = played(voiced_fr)  # (M + 1,) micro-turns
    targets = listening.targets(conv, m + 1)
    reference = played(listening.voiced_turns(conv.model_words, m + 1)[1:])
    user = np.concatenate([targets[:, _UNDER] > 0, [False]])
    excused = np.zeros(m + 1, bool)  # where speaking over the user is right, or not yet wrong
    for e in conv.events_of("interruption"):
        excused[_turns(e.start, e.start + STOP_WITHIN_S, m + 1)] = True
    for e in conv.events_of("user_backchannel"):
        excused[_turns(e.start, e.end, m + 1)] = True
    over = user & ~excused
    out = {"user_turns": float(over.sum()), "talk_over": float((says & over).sum()),
           "ref_talk_over": float((reference & over).sum()),
           "uncalled_talk_over": float((says & over & ~reference).sum()),
           "tp": float((says & reference).sum()), "fp": float((says & ~reference).sum()),
           "fn": float((~says & reference).sum()),
           "speak_block0": float(speak_tf[0]),
           "speak_user_sum": float(speak_tf[over[:m]].sum()), "speak_user_n": float(over[:m].sum()),
           "utterances": runs(says), "ref_utterances": runs(reference)}
    out.update({f"f1_lost_{k}": v for k, v in floor_errors(says, reference, user).items()})
    out["f1_denominator"] = 2 * out["tp"] + out["fp"] + out["fn"]
    # Its last turn against the reference's: still speaking from that turn's last micro-turn to the end of the
    # recording, which comes a second after it (a turn that nothing follows, ended only by the answer's end).
    edges = _run_edges(reference)
    out["last_turns"] = float(bool(edges))
    out["last_run_on"] = float(bool(edges) and says[edges[-1][1] - 1 :].all())
    if bytes_fr is not None:
        out.update(words_ends(conv, says, reference, played(bytes_fr)))
    # Teacher-forced, at the blocks where the reference's speaking state changes (elsewhere the fed-back
    # audio already shows it: a silent block is followed by exact silence).
    ref_blocks = reference[1:]
    start_blocks = np.flatnonzero(ref_blocks[1:] & ~ref_blocks[:-1]) + 1
    stop_blocks = np.flatnonzero(~ref_blocks[1:] & ref_blocks[:-1]) + 1
    out.update(start_tf_sum=float(speak_tf[start_blocks].sum()), start_tf_n=float(start_blocks.size),
               stop_tf_sum=float((1.0 - speak_tf[stop_blocks]).sum()), stop_tf_n=float(stop_blocks.size))
    # Where the reference goes on speaking: the chance of going on, hearing the reference's frames and
    # hearing its own (what free-running adds to teacher forcing is mostly what it hears of itself).
    going_on = np.flatnonzero(ref_blocks[1:] & ref_blocks[:-1]) + 1
    out.update(go_on_tf_sum=float(speak_tf[going_on].sum()), go_on_n=float(going_on.size))
    if speak_own is not None:
        out["go_on_own_sum"] = float(speak_own[going_on].sum())
    if level_own is not None:
        out.update(own_level_sum=float(level_own[going_on].sum()), ref_level_sum=float(level_ref[going_on].sum()))
    # Mid-turn pauses against turn ends, one micro-turn after the user stops: the heads' shift chance and
    # the turn-end head's chance (at the block the user stops in and the next).
    stops = moments(conv, m)
    out["story"] = conv.kind == STORY_KIND
    out["shift_scores"] = [(end, float(shift(listen_fr[k + 1]))) for end, k in stops]
    out["end_scores"] = [(end, float(listen_fr[k : k + 2, _END].max())) for end, k in stops]
    if listen_silent is not None:
        out["hearing_scores"] = [(end, float(shift(listen_silent[k + 1]))) for end, k in stops]
    pauses = conv.events_of("pause")
    out["pauses"] = float(len(pauses))
    taking = run_seconds(says) >= TAKEOVER_S
    out["pause_takeovers"] = float(sum(taking[_turns(e.start, e.end, m + 1)].any() for e in pauses))
    # Replies: the first micro-turn the model speaks in after a turn end that the reference answers.
    latencies, misses = [], 0
    for e in conv.events_of("user_turn"):
        answered = [a for a, _, _ in conv.model_words if e.end - 0.3 < a < e.end + REPLY_WITHIN_S]
        if not answered or e.data.get("text") == "filler":
            continue
        k = listening.turn_of(e.end) + 1
        after = np.flatnonzero(says[k:])
        if after.size and (k + after[0]) * MICROTURN_SECONDS - e.end <= REPLY_WITHIN_S:
            latencies.append((k + after[0]) * MICROTURN_SECONDS - e.end)
        else:
            misses += 1
    out["latencies"], out["reply_misses"] = latencies, float(misses)
    # Teacher-forced, the chance of having stopped where the reference stops for an interruption (its own
    # speech fed back until then), and the same moment into a backchannel the reference talks through: their
    # AUC says whether it tells the two apart, whichever way a run leans (yield or hold on).
    stopped, onset_scores = [], []
    for interrupts, e in [(True, e) for e in conv.events_of("interruption")] + \
            [(False, e) for e in conv.events_of("user_backchannel")]:
        k, due = listening.turn_of(e.start), min(listening.turn_of(e.start + STOP_WITHIN_S), m)
        window = says[k : due + 1]
        if interrupts and says[max(k - 1, 0)]:  # only when it was speaking as the interruption began
            stopped.append(float(not window[-1] if window.size else 1.0))
        if due >= 1 and reference[max(k - 1, 0)] and (interrupts or reference[due]):
            onset_scores.append((interrupts, 1.0 - float(speak_tf[due - 1])))
    stopped_tf = [score for interrupts, score in onset_scores if interrupts]
    out["interrupt_stops"], out["interruptions"] = float(sum(stopped)), float(len(stopped))
    out["interrupt_stops_tf"], out["interruptions_tf"] = float(sum(stopped_tf)), float(len(stopped_tf))
    out["onset_scores"] = onset_scores
    # Speech where the reference is silent, from a distractor's start until FALSE_AFTER_S after it; of those,
    # the ones it began within that span (silent as the distractor began) are responses to it, the rest its
    # own turn running on into it
    false, began = [], []
    for e in (e for kind in ("side_talk", "background_speech") for e in conv.events_of(kind)):
        span = _turns(e.start, e.end + FALSE_AFTER_S, m + 1)
        false.append(float(says[span].any() and not reference[span].any()))
        began.append(false[-1] * float(not says[max(listening.turn_of(e.start) - 1, 0)]))
    out["distractors"], out["false_responses"], out["false_starts"] = float(len(false)), float(sum(false)), \
        float(sum(began))
    kept = []
    for e in conv.events_of("user_backchannel"):
        span = _turns(e.start, e.end + 0.6, m + 1)
        span = span[reference[span]]
        if span.size:
            kept.append(float(says[span].mean() >= 0.8))
    out["backchannels"], out["floor_kept"] = float(len(kept)), float(sum(kept))
    # Cues no user turn gives: a timer going off (its reasoner's answer entering text-in; the due time in a
    # corpus without one) and a visual change. Answered when it begins a turn within CUED_WITHIN_S.
    begins = says & ~np.concatenate([[False], says[:-1]])
    answered = lambda t: float(begins[_turns(t, t + CUED_WITHIN_S, m + 1)].any())  # noqa: E731
    results = [t.time for t in conv.text_items if t.channel == "result"]
    timers = [results[0] if results else e.start for e in conv.events_of("timer_due")]
    changes = [e.start for e in conv.events_of("visual_cue")]
    out["timers"], out["timers_said"] = float(len(timers)), float(sum(map(answered, timers)))
    out["changes"], out["changes_remarked"] = float(len(changes)), float(sum(map(answered, changes)))
    return out


def auc(pairs) -> float:
    """Area under the ROC curve of (is_positive, score) pairs (ties count half); NaN without both kinds."""
    pos = np.array([s for p, s in pairs if p], np.float64)
    neg = np.array([s for p, s in pairs if not p], np.float64)
    if not pos.size or not neg.size:
        return float("nan")
    return float(((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (pos.size * neg.size))


def _rate(rows: list[dict], num: str, den: str) -> dict:
    return intervals.rate([[row[num], row[den]] for row in rows])


def auc_interval(pairs: list[list]) -> dict:
    """AUC of every conversation's (is_positive, score) pairs pooled, with a bootstrap interval over
    conversations (each conversation's pairs move together)."""
    value = auc([p for row in pairs for p in row])
    rng = np.random.default_rng(0)
    draws = []
    for _ in range(500):
        pick = rng.integers(0, len(pairs), len(pairs))
        draws.append(auc([p for i in pick for p in pairs[i]]))
    draws = np.array([d for d in draws if np.isfinite(d)])
    ci = (float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))) if draws.size else None
    n = [sum(p for p, _ in row) for row in pairs]
    return {"value": value, "ci": ci, "n": float(sum(len(row) for row in pairs)), "positives": float(sum(n))}


def _outside_stories(row: dict, key: str) -> list:
    """A row's pairs without the pauses between a story's sentences (turn ends kept)."""
    return [p for p in row[key] if p[0] or not row["story"]]


def _median_interval(rows: list[dict], key: str, resamples: int = 500) -> tuple[float, float] | None:
    """95% interval of the pooled median of the rows' `key` lists, conversations resampled."""
    rng = np.random.default_rng(0)
    draws = []
    for _ in range(resamples):
        pooled = [x for i in rng.integers(0, len(rows), len(rows)) for x in rows[i][key]]
        if pooled:
            draws.append(np.median(pooled))
    return (float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))) if draws else None


def _median(rows: list[dict], key: str) -> float:
    pooled = [x for row in rows for x in row[key]]
    return float(np.median(pooled)) if pooled else float("nan")


def summarize(rows: list[dict]) -> dict:
    """Pooled figures with 95% intervals over conversations."""
    latencies = [x for row in rows for x in row["latencies"]]
    f1_rows = np.array([[r["tp"], r["fp"], r["fn"]] for r in rows], np.float64)
    f1 = lambda s: 2 * s[..., 0] / np.maximum(2 * s[..., 0] + s[..., 1] + s[..., 2], 1e-12)  # noqa: E731
    total = f1_rows.sum(0)
    return {
        "talk_over": _rate(rows, "talk_over", "user_turns"),
        "talk_over_reference": _rate(rows, "ref_talk_over", "user_turns"),
        # Only where the reference is silent: an interpreter speaks over the user by design, so the reference
        # itself talks over some of the user's speech as `talk_over` counts it, and none as this counts it.
        "talk_over_uncalled": _rate(rows, "uncalled_talk_over", "user_turns"),
        "speak_block0": {"value": float(np.mean([r["speak_block0"] for r in rows])),
                         "ci": intervals.mean_interval([r["speak_block0"] for r in rows]), "n": float(len(rows))},
        "speak_while_user": _rate(rows, "speak_user_sum", "speak_user_n"),
        "start_tf": _rate(rows, "start_tf_sum", "start_tf_n"),
        "stop_tf": _rate(rows, "stop_tf_sum", "stop_tf_n"),
        "go_on_tf": _rate(rows, "go_on_tf_sum", "go_on_n"),
        **({"go_on_own_frames": _rate(rows, "go_on_own_sum", "go_on_n")} if all("go_on_own_sum" in r for r in rows)
           else {}),
        **({"own_frame_level": _rate(rows, "own_level_sum", "go_on_n"),
            "own_frame_level_reference": _rate(rows, "ref_level_sum", "go_on_n")}
           if all("own_level_sum" in r for r in rows) else {}),
        "floor_f1": {"value": float(f1(total)), "ci": intervals.interval(f1_rows, f1), "n": float(len(rows))},
        **{f"f1_lost_{k}": _rate(rows, f"f1_lost_{k}", "f1_denominator") for k in FLOOR_ERRORS},
        "turn_end_auc": auc_interval([r["shift_scores"] for r in rows]),
        "end_head_auc": auc_interval([r["end_scores"] for r in rows]),
        "turn_end_auc_no_stories": auc_interval([_outside_stories(r, "shift_scores") for r in rows]),
        **({"hearing_auc": auc_interval([r["hearing_scores"] for r in rows]),
            "hearing_auc_no_stories": auc_interval([_outside_stories(r, "hearing_scores") for r in rows])}
           if all("hearing_scores" in r for r in rows) else {}),
        **({"smart_turn_auc": auc_interval([r["smart_turn_scores"] for r in rows]),
            "smart_turn_auc_no_stories": auc_interval([_outside_stories(r, "smart_turn_scores") for r in rows])}
           if all("smart_turn_scores" in r for r in rows) else {}),
        "pause_takeover": _rate(rows, "pause_takeovers", "pauses"),
        "reply_latency_s": {"value": _median(rows, "latencies"),
                            "ci": _median_interval(rows, "latencies"), "n": float(len(latencies))},
        "utterance_s": {"value": _median(rows, "utterances"), "ci": _median_interval(rows, "utterances"),
                        "n": float(sum(len(r["utterances"]) for r in rows))},
        "utterance_s_reference": {"value": _median(rows, "ref_utterances"),
                                  "ci": _median_interval(rows, "ref_utterances"),
                                  "n": float(sum(len(r["ref_utterances"]) for r in rows))},
        "last_turn_run_on": _rate(rows, "last_run_on", "last_turns"),
        **{key: {"value": _median(rows, key), "ci": _median_interval(rows, key),
                 "n": float(sum(len(r[key]) for r in rows))}
           for key in ("words_late", "stop_after_words", "stop_after_words_reference") if all(key in r for r in rows)},
        "reply_miss": _rate([dict(r, replies=r["reply_misses"] + len(r["latencies"])) for r in rows],
                            "reply_misses", "replies"),
        "interrupt_stop": _rate(rows, "interrupt_stops", "interruptions"),
        "interrupt_stop_tf": _rate(rows, "interrupt_stops_tf", "interruptions_tf"),
        "onset_auc": auc_interval([r["onset_scores"] for r in rows]),
        "false_response": _rate(rows, "false_responses", "distractors"),
        "false_start": _rate(rows, "false_starts", "distractors"),
        "floor_kept": _rate(rows, "floor_kept", "backchannels"),
        "timer_said": _rate(rows, "timers_said", "timers"),
        "remark_said": _rate(rows, "changes_remarked", "changes"),
    }


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, steps: int = 500):
    """A linear reader: L2-penalised logistic regression on standardized features (Adam, full batch) -> a
    function of features giving scores. The penalty is `l2` per square root of the feature count, so that one
    `l2` suits readers of 128 features and of 1,920."""
    mean, scale = x.mean(0), x.std(0) + 1e-6
    xs, ys = jnp.asarray((x - mean) / scale, jnp.float32), jnp.asarray(y, jnp.float32)

    def loss(p):
        z = xs @ p["w"] + p["b"]
        return optax.sigmoid_binary_cross_entropy(z, ys).mean() + 0.5 * l2 * jnp.sum(p["w"] ** 2) / xs.shape[1] ** 0.5

    opt = optax.adam(0.02)

    @jax.jit
    def fit(p):
        def step(carry, _):
            p, s = carry
            updates, s = opt.update(jax.grad(loss)(p), s)
            return (optax.apply_updates(p, updates), s), None
        return jax.lax.scan(step, (p, opt.init(p)), None, length=steps)[0][0]

    p = jax.device_get(fit({"w": jnp.zeros(xs.shape[1]), "b": jnp.zeros(())}))
    return lambda f: ((f - mean) / scale) @ p["w"] + p["b"]
