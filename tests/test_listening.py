"""The floor labels: the speaking state in the text stream, untrained continuations, listening targets."""
import numpy as np
import pytest

from interaction import MICROTURN_SECONDS
from interaction.codecs import text
from interaction.data import layout as layout_lib
from interaction.data import listening, pipeline, records
from interaction.evals import floor_probe

LAYOUT = layout_lib.MicroTurnLayout()


def _convs(corpus, kind):
    return [c for c in records.read(corpus / "train.array_record") if c.kind == kind]


def test_activity_bridges_short_gaps_only():
    act = listening.activity([(0.0, 0.1, "a"), (0.3, 0.4, "b"), (1.0, 1.1, "c")], 60, bridge=0.4)
    assert act[:20].all() and not act[20:50].any() and act[50:55].all()


def test_speaking_state_is_the_first_slot_and_silence_is_exact(tiny_corpus):
    conv = _convs(tiny_corpus, "interruption")[0]
    feats = pipeline.conversation_features(conv, LAYOUT)
    state = feats["text_out"][:, 0]
    assert set(np.unique(state)) <= {text.Special.PAD, text.Special.VOICED}
    voiced = state == text.Special.VOICED
    # Every word's first byte comes in a voiced row, and the state follows the model's words (block m plays m + 1).
    for a, _, _ in conv.model_words:
        assert voiced[listening.turn_of(a) - 1]
    assert not voiced[: listening.turn_of(conv.model_words[0][0]) - 1].any()
    # A silent row is all PAD and plays exact silence, as the step does when it decides not to speak.
    assert (feats["text_out"][~voiced] == text.Special.PAD).all()
    assert (feats["model_mel"][~voiced] == LAYOUT.dmel.log_min).all()
    assert (feats["model_audio"][~voiced] == 0).all()
    # The cut-off answer ends with the model's stop: silent from the micro-turn after it on.
    stop = conv.events_of("model_stop")[0].start
    reply = conv.events_of("model_turn")[-1].start
    assert not voiced[listening.turn_of(stop) + 1 : listening.turn_of(reply) - 1].any()


def test_speech_early_in_a_window_is_not_trained_but_silence_is(tiny_corpus):
    conv = _convs(tiny_corpus, "user_backchannel")[0]
    feats = pipeline.conversation_features(conv, LAYOUT)
    voiced = feats["text_out"][:, 0] == text.Special.VOICED
    onset = int(np.argmax(voiced))
    inside = pipeline.window(feats, onset + 5, 10, LAYOUT.dmel.log_min)
    assert voiced[onset + 5 : onset + 15].all() and inside["valid"].all()
    np.testing.assert_array_equal(inside["trained"], np.arange(10) >= 5)  # the first half burns in
    inside = pipeline.window(feats, onset + 5, 10, LAYOUT.dmel.log_min, burn_in=10)
    assert not inside["trained"].any()
    before = pipeline.window(feats, onset - 3, 10, LAYOUT.dmel.log_min)  # silence, then the answer begins
    assert before["trained"][:3].all() and before["trained"][5:].all() and not before["trained"][3:5].any()
    tail = pipeline.window(feats, len(voiced) - 3, 10, LAYOUT.dmel.log_min)
    np.testing.assert_array_equal(tail["trained"], tail["valid"] & ~((np.arange(10) < 5) & (
        tail["text_out"][:, 0] == text.Special.VOICED)))


def _reference_and_chatty(conv):
    """The probe's counts of a model that speaks as the reference does, and of one that never stops."""
    feats = pipeline.conversation_features(conv, LAYOUT)
    m = len(feats["valid"])
    reference = feats["text_out"][:, 0] == text.Special.VOICED
    return (floor_probe.counts(conv, reference.astype(float), reference, feats["listen"]),
            floor_probe.counts(conv, np.ones(m), np.ones(m, bool), feats["listen"]))


def test_an_interpreter_speaking_over_the_user_talks_over_but_not_uncalled(tiny_corpus):
    as_reference, chatty = _reference_and_chatty(_convs(tiny_corpus, "translation")[0])
    assert as_reference["talk_over"] == as_reference["ref_talk_over"] > 0
    assert as_reference["uncalled_talk_over"] == 0
    assert 0 < chatty["uncalled_talk_over"] == chatty["talk_over"] - chatty["ref_talk_over"]
    figures = floor_probe.summarize([as_reference, chatty])
    assert figures["talk_over_uncalled"]["value"] < figures["talk_over"]["value"]


def test_listening_targets_follow_the_events(tiny_corpus):
    names = listening.NAMES
    conv = _convs(tiny_corpus, "side_talk")[0]
    feats = pipeline.conversation_features(conv, LAYOUT)
    y = feats["listen"]
    assert y.shape == (len(feats["valid"]), len(names))
    side = conv.events_of("side_talk")[0]
    inside = np.arange(listening.turn_of(side.start) + 1, listening.turn_of(side.end))
    assert y[inside, names.index("user_now")].all() and not y[inside, names.index("addressed")].any()
    first = conv.events_of("user_turn")[0]
    ends = np.flatnonzero(y[:, names.index("turn_end")])
    assert listening.turn_of(first.end) in ends
    assert len(ends) == len(conv.events_of("user_turn"))
    # Future activity: the user's share of the next 0.2 s is whether they speak in the next micro-turn.
    now, soon = y[:, names.index("user_now")], y[:, names.index("user_0.2s")]
    agree = (soon[:-1] > 0) == (now[1:] > 0)
    assert agree.mean() > 0.95
    model_soon = y[:, names.index("model_0.2s")]
    voiced = feats["text_out"][:, 0] == text.Special.VOICED
    assert ((model_soon > 0) == voiced).mean() > 0.9


def test_probe_counts_a_model_that_talks_over_and_one_that_waits(tiny_corpus):
    conv = next(c for c in _convs(tiny_corpus, "pause") if not c.events_of("false_start"))  # the reference waits
    feats = pipeline.conversation_features(conv, LAYOUT)
    m = len(feats["valid"])
    reference = feats["text_out"][:, 0] == text.Special.VOICED
    listen = feats["listen"]  # the exact targets: perfect heads
    polite = floor_probe.counts(conv, reference.astype(float), reference, listen, speak_own=reference.astype(float))
    chatty = floor_probe.counts(conv, np.ones(m), np.ones(m, bool), listen)
    assert polite["pause_takeovers"] == 0 and chatty["pause_takeovers"] == polite["pauses"] == 1
    assert chatty["talk_over"] == chatty["user_turns"] > 0
    assert polite["talk_over"] <= 0.1 * polite["user_turns"]
    assert polite["latencies"] and all(0 < x <= 0.5 for x in polite["latencies"])
    assert floor_probe.summarize([polite])["floor_f1"]["value"] == 1.0
    assert polite["utterances"] == polite["ref_utterances"] and chatty["utterances"] == [m * 0.2]
    # Its last turn ends with the reference's, or runs on to the end of the recording.
    assert polite["last_turns"] == chatty["last_turns"] == 1
    assert polite["last_run_on"] == 0 and chatty["last_run_on"] == 1
    assert floor_probe.summarize([polite, chatty])["last_turn_run_on"]["value"] == 0.5
    assert polite["stop_tf_n"] == polite["start_tf_n"] == len(polite["ref_utterances"]) > 0
    assert polite["stop_tf_sum"] == polite["stop_tf_n"] and chatty["stop_tf_sum"] == 0  # stops where it should
    assert polite["start_tf_sum"] == chatty["start_tf_sum"] == polite["start_tf_n"]
    # Going on inside the reference's utterances: every voiced block of them but their first.
    assert polite["go_on_n"] == reference.sum() - len(polite["ref_utterances"]) > 0
    assert polite["go_on_tf_sum"] == polite["go_on_own_sum"] == chatty["go_on_tf_sum"] == polite["go_on_n"]
    level = feats["model_audio"].mean(axis=(-2, -1))
    deaf = floor_probe.counts(conv, reference.astype(float), reference, listen, speak_own=np.zeros(m),
                              level_own=np.zeros(m), level_ref=level)
    figures = floor_probe.summarize([deaf])
    assert figures["go_on_tf"]["value"] == 1.0 and figures["go_on_own_frames"]["value"] == 0.0
    going_on = np.flatnonzero(reference[1:] & reference[:-1]) + 1
    assert figures["own_frame_level"]["value"] == 0.0  # its own frames silent where it should go on
    assert figures["own_frame_level_reference"]["value"] == pytest.approx(level[going_on].mean())
    assert level[going_on].mean() > 1  # the reference speaks there
    assert "own_frame_level" not in floor_probe.summarize([polite])
    assert "go_on_own_frames" not in floor_probe.summarize([chatty])
    assert floor_probe.runs(np.array([0, 1, 1, 0, 1], bool)) == [0.4, 0.2]
    # Where F1 is lost: each shares of its denominator, summing to 1 - F1.
    figures = floor_probe.summarize([polite, chatty])
    lost = sum(figures[f"f1_lost_{k}"]["value"] for k in floor_probe.FLOOR_ERRORS)
    assert lost == pytest.approx(1 - figures["floor_f1"]["value"]) and lost > 0
    assert all(polite[f"f1_lost_{k}"] == 0 for k in floor_probe.FLOOR_ERRORS)
    # The exact labels separate the pause from the turn end perfectly.
    assert floor_probe.auc(polite["shift_scores"]) == 1.0 and floor_probe.auc(polite["end_scores"]) == 1.0
    assert floor_probe.auc([(True, 0.2), (False, 0.2)]) == 0.5 and np.isnan(floor_probe.auc([(True, 1.0)]))


def test_floor_errors_are_placed_where_they_lie():
    ref = np.array([0, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0], bool)
    says = np.array([0, 0, 1, 1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0], bool)
    user = np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0], bool)
    errors = floor_probe.floor_errors(says, ref, user)
    # on past the first turn's end for 2; a start one early before the third turn; over the user once;
    # the first turn begun a micro-turn late; the second stopped one early with one gap; the third never begun
    assert errors == dict(run_on=2.0, early_start=1.0, over_user=1.0, elsewhere=0.0, never_started=2.0,
                          late_start=1.0, early_stop=1.0, gap=1.0)
    assert sum(errors.values()) == (says != ref).sum()


def test_words_ends_say_whether_its_words_or_its_stop_run_late(tiny_corpus):
    conv = _convs(tiny_corpus, "turn_taking")[0]
    feats = pipeline.conversation_features(conv, LAYOUT)
    reference = feats["text_out"][:, 0] == text.Special.VOICED
    wrote = (feats["text_out"][:, 1:] >= text.NUM_SPECIAL).any(-1)

    def counted(voiced, written):
        return floor_probe.counts(conv, reference.astype(float), voiced, feats["listen"], bytes_fr=written)

    as_reference = counted(reference, wrote)
    turns = len(as_reference["words_late"])
    assert turns >= 2 and len(as_reference["stop_after_words"]) == turns  # every turn stopped before the end
    assert max(as_reference["words_late"]) <= 0.2 + 1e-9  # a word's bytes at its start (or spilled one on)
    assert as_reference["stop_after_words"] == pytest.approx(as_reference["stop_after_words_reference"], abs=0.21)
    # Words that run on 3 micro-turns past each turn's end, then the same stop after them: late words
    on = reference.copy()
    on_wrote = wrote.copy()
    for _, b in floor_probe._run_edges(reference):
        on[b : b + 3] = True
        on_wrote[b : b + 3] = True
    late = counted(on, on_wrote)
    assert np.median(late["words_late"]) > np.median(as_reference["words_late"]) + 0.4
    # The words end where the reference's do, but it goes on 3 micro-turns: a late stop after its words
    quiet = counted(on, wrote)
    assert quiet["words_late"] == as_reference["words_late"]
    assert np.median(quiet["stop_after_words"]) == pytest.approx(np.median(as_reference["stop_after_words"]) + 0.6)
    figures = floor_probe.summarize([as_reference, late])
    assert figures["words_late"]["n"] == 2 * turns and "stop_after_words_reference" in figures
    assert "words_late" not in floor_probe.summarize([as_reference, counted(reference, None)])


def test_a_backchannel_in_a_pause_is_not_a_take_over_and_a_turn_is(tiny_corpus):
    conv = next(c for c in _convs(tiny_corpus, floor_probe.STORY_KIND) if c.events_of("model_backchannel"))
    feats = pipeline.conversation_features(conv, LAYOUT)
    m = len(feats["valid"])
    reference = feats["text_out"][:, 0] == text.Special.VOICED
    pauses = conv.events_of("pause")
    spans = [floor_probe._turns(e.start, e.end, m + 1) for e in pauses]
    assert any(floor_probe.played(reference)[span].any() for span in spans)  # it backchannels in a pause
    assert floor_probe.counts(conv, reference.astype(float), reference, feats["listen"])["pause_takeovers"] == 0

    def speaking_from_each_pause(seconds):
        voiced = np.zeros(m, bool)
        for span in spans:
            voiced[span[0] - 1 : span[0] - 1 + int(round(seconds / 0.2))] = True  # block k plays in k + 1
        return floor_probe.counts(conv, np.zeros(m), voiced, feats["listen"])["pause_takeovers"]

    assert speaking_from_each_pause(1.0) == 0
    assert speaking_from_each_pause(floor_probe.TAKEOVER_S) == len(pauses) > 0


def test_story_pauses_can_be_left_out_of_the_hearing_auc_and_smart_turn_hears_the_same_moments(tiny_corpus):
    story, paused = _convs(tiny_corpus, floor_probe.STORY_KIND)[0], _convs(tiny_corpus, "pause")[0]
    rows = []
    for conv, score_pauses in ((story, 0.9), (paused, 0.1)):  # heads fooled by the story's pauses only
        m = len(pipeline.conversation_features(conv, LAYOUT)["valid"])
        listen = np.zeros((m, len(listening.NAMES)), np.float32)
        stops = floor_probe.moments(conv, m)
        heard = listen.copy()  # its own channel held silent: heads that hear every pause as one
        for end, k in stops:
            listen[k + 1, floor_probe._MODEL_2S] = 0.5 if end else score_pauses
            listen[k + 1, floor_probe._USER_2S] = heard[k + 1, floor_probe._USER_2S] = 0.5
            heard[k + 1, floor_probe._MODEL_2S] = 0.5 if end else 0.1
        rows.append(floor_probe.counts(conv, np.zeros(m), np.zeros(m, bool), listen, listen_silent=heard))
        assert any(not end for end, _ in stops) and any(end for end, _ in stops), conv.kind
    assert rows[0]["story"] and not rows[1]["story"]
    figures = floor_probe.summarize(rows)
    assert figures["turn_end_auc_no_stories"]["value"] == 1.0 > figures["turn_end_auc"]["value"]
    assert figures["hearing_auc"]["value"] == figures["hearing_auc_no_stories"]["value"] == 1.0
    assert "smart_turn_auc" not in figures  # only when Smart Turn scored the moments

    class Quiet:  # a stand-in end-of-turn model: whether the last 0.2 s are far below the loudest speech
        def probabilities(self, waves):
            return [float(np.sqrt(np.mean(w[-3200:] ** 2)) < 0.1 * np.abs(w).max()) for w in waves]

    m = len(pipeline.conversation_features(paused, LAYOUT)["valid"])
    scores = floor_probe.smart_turn_scores(paused, m, Quiet())
    assert [end for end, _ in scores] == [end for end, _ in floor_probe.moments(paused, m)]
    assert all(p == 1.0 for _, p in scores)  # each wave ends in the silence after the user stops


def test_probe_reads_stops_at_interruptions_free_running_and_teacher_forced(tiny_corpus):
    polite, chatty = _reference_and_chatty(_convs(tiny_corpus, "interruption")[0])
    assert polite["interruptions"] == polite["interruptions_tf"] == chatty["interruptions"] == 1
    assert polite["interrupt_stops"] == polite["interrupt_stops_tf"] == 1
    assert chatty["interrupt_stops"] == chatty["interrupt_stops_tf"] == 0


def test_speech_over_side_talk_is_told_apart_as_a_response_or_a_turn_running_on(tiny_corpus):
    """Speaking into a distractor where the reference is silent is a false response either way; it is a false
    start only if the model was silent as the distractor began."""
    conv = _convs(tiny_corpus, "side_talk")[0]
    feats = pipeline.conversation_features(conv, LAYOUT)
    reference = feats["text_out"][:, 0] == text.Special.VOICED
    side, = conv.events_of("side_talk")
    k0, k1 = listening.turn_of(side.start), listening.turn_of(side.end)
    assert not reference[k0 - 2 : k1 + 1].any()  # the reference is quiet through it

    def probed(voiced):
        return floor_probe.counts(conv, reference.astype(float), voiced, feats["listen"])

    answered = reference.copy()
    answered[k0 + 1 : k1 + 1] = True  # starts while the user, turned away, still talks
    last = np.flatnonzero(reference[:k0])[-1]
    runs_on = reference.copy()
    runs_on[last : k0 + 2] = True  # its answer runs on into the side talk, then stops
    polite = probed(reference)
    assert polite["distractors"] == 2  # the side talk and the other person's reply
    assert polite["false_responses"] == polite["false_starts"] == 0
    for voiced, starts in ((answered, 1), (runs_on, 0)):
        row = probed(voiced)
        assert row["false_responses"] >= 1 and row["false_starts"] == starts
    assert floor_probe.summarize([probed(answered)])["false_start"]["value"] > 0


def test_a_timer_going_off_and_a_visual_change_are_answered_by_a_turn_begun_soon_after(tiny_corpus):
    """The reference begins a turn after each (answered); silence, or one turn held from before the cue
    through it, answers neither."""
    for kind, num, den, figure in (("timer", "timers_said", "timers", "timer_said"),
                                   ("visual_cue", "changes_remarked", "changes", "remark_said")):
        conv = _convs(tiny_corpus, kind)[0]
        feats = pipeline.conversation_features(conv, LAYOUT)
        reference = feats["text_out"][:, 0] == text.Special.VOICED
        m = len(reference)
        held = np.zeros(m, bool)
        cue = conv.events_of("visual_cue" if kind == "visual_cue" else "timer_due")[0]
        held[listening.turn_of(cue.start) - 3 :] = True
        rows = {name: floor_probe.counts(conv, reference.astype(float), voiced, feats["listen"])
                for name, voiced in (("reference", reference), ("silent", np.zeros(m, bool)), ("held", held))}
        assert rows["reference"][den] >= 1 and rows["reference"][num] == rows["reference"][den], kind
        assert rows["silent"][num] == 0 and rows["held"][num] < rows["held"][den], kind
        assert floor_probe.summarize([rows["reference"]])[figure]["value"] == 1.0


def test_the_onset_auc_tells_a_model_that_stops_for_interruptions_only_from_one_that_leans(tiny_corpus):
    """Stopping where the reference stops, and talking through backchannels, separates the two onsets (AUC
    1); stopping, or going on, for both does not (0.5), however often it stops."""
    convs = _convs(tiny_corpus, "interruption") + _convs(tiny_corpus, "user_backchannel")
    rows = {"polite": [], "yielding": [], "holding": []}
    for conv in convs:
        feats = pipeline.conversation_features(conv, LAYOUT)
        m = len(feats["valid"])
        reference = feats["text_out"][:, 0] == text.Special.VOICED
        for name, chance in (("polite", reference.astype(float)), ("yielding", np.full(m, 0.2)),
                             ("holding", np.full(m, 0.9))):
            rows[name].append(floor_probe.counts(conv, chance, reference, feats["listen"]))
    aucs = {name: floor_probe.summarize(r)["onset_auc"] for name, r in rows.items()}
    assert aucs["polite"]["value"] == 1.0 and aucs["polite"]["positives"] >= 1
    assert aucs["polite"]["n"] > aucs["polite"]["positives"]  # backchannels too
    assert aucs["yielding"]["value"] == aucs["holding"]["value"] == 0.5


def test_decision_windows_hold_a_decision_with_context_before_it(tiny_corpus):
    conv = _convs(tiny_corpus, "pause")[0]
    feats = pipeline.conversation_features(conv, LAYOUT)
    decisions = np.flatnonzero(feats["decision"])
    assert listening.turn_of(conv.events_of("pause")[0].start) in decisions
    assert listening.turn_of(conv.events_of("user_turn")[0].end) in decisions
    pick = pipeline._RandomWindow(10, LAYOUT.dmel.log_min, decision_share=1.0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        win = pick.random_map(feats, rng)
        start = int(win["time_index"][0])
        inside = decisions[(decisions >= start) & (decisions < start + 10)]
        assert inside.size and "decision" not in win
        assert (inside - start >= 5).any() or start in (0, len(feats["valid"]) - 10)


def test_text_weights_favour_the_decision_and_its_changes_over_silent_bytes():
    import jax.numpy as jnp

    from interaction.models import model as model_lib
    from interaction.models.transformer import DecoderSpec

    spec = model_lib.ModelSpec(decoder=DecoderSpec(embed=8, layers=1, heads=1, kv_heads=1, head_dim=8, mlp=8),
                               floor_weight=4.0, silent_byte_weight=0.1, switch_weight=5.0)
    trained = jnp.array([[1.0, 1.0, 1.0, 0.0]])
    state = jnp.array([[1.0, 1.0, 0.0, 1.0]])  # speaking, speaking, stops, starts again (untrained)
    w = np.asarray(model_lib.text_weights(spec, trained, state, 3))
    np.testing.assert_allclose(w[0], [[4, 1, 1], [4, 1, 1], [20, 0.1, 0.1], [0, 0, 0]])


def test_holds_are_pauses_the_user_resumes_from_talk_not_for_the_model_and_backchannels():
    import jax.numpy as jnp

    from interaction.models import model as model_lib
    from interaction.models.transformer import DecoderSpec

    listen = np.zeros((1, 6, len(listening.NAMES)), np.float32)
    col = {name: i for i, name in enumerate(listening.NAMES)}
    listen[0, 0, [col["user_now"], col["addressed"]]] = 1  # speaking to the model: no hold
    listen[0, 1, col["user_1.2s"]] = 0.5  # paused, resumes: a hold
    listen[0, 2, col["user_now"]] = 1  # side talk, but the model speaks through it: not a hold kept
    # block 3: silent and not resuming (a turn end): no hold
    listen[0, 4, [col["user_now"], col["addressed"], col["model_2.0s"]]] = 1, 1, 0.9  # a backchannel: a hold
    listen[0, 5, [col["user_now"], col["addressed"], col["model_2.0s"]]] = 1, 1, 0.2  # an interruption: none
    state = jnp.array([[0.0, 0.0, 1.0, 0.0, 1.0, 1.0]])
    hold = model_lib.holds(jnp.asarray(listen), state)
    np.testing.assert_array_equal(np.asarray(hold)[0], [False, True, False, False, True, False])
    silent = model_lib.holds(jnp.asarray(listen), jnp.zeros_like(state))
    np.testing.assert_array_equal(np.asarray(silent)[0], [False, True, True, False, False, False])
    spec = model_lib.ModelSpec(decoder=DecoderSpec(embed=8, layers=1, heads=1, kv_heads=1, head_dim=8, mlp=8),
                               floor_weight=2.0, switch_weight=1.0, hold_weight=3.0)
    w = np.asarray(model_lib.text_weights(spec, jnp.ones((1, 6)), state, 2, hold))
    np.testing.assert_allclose(w[0, :, 0], [2, 6, 2, 2, 6, 2])


def test_floor_thresholds_start_at_even_odds_under_the_text_weights():
    """A loss that weighs one answer r times more multiplies the odds a model gives it by r; the step's
    default bar to start speaking undoes exactly the weighting that `text_weights` puts on a start."""
    import jax.numpy as jnp

    from interaction.models import model as model_lib
    from interaction.models import streaming
    from interaction.models.transformer import DecoderSpec

    spec = model_lib.ModelSpec(decoder=DecoderSpec(embed=8, layers=1, heads=1, kv_heads=1, head_dim=8, mlp=8),
                               floor_weight=4.0, switch_weight=5.0)

    def weight(before: float, now: float) -> float:  # the speaking state's weight at a row, given the row before
        return float(model_lib.text_weights(spec, jnp.ones((1, 2)), jnp.array([[before, now]]), 2)[0, 1, 0])

    start_odds = weight(0, 1) / weight(0, 0)  # silent before: speaking weighs this much more than silence
    speak, keep = streaming.floor_thresholds(spec)
    assert speak == pytest.approx(start_odds / (start_odds + 1)) and keep == streaming.KEEP_THRESHOLD
    assert keep < 0.5 < speak  # harder to take the floor than to keep it
    assert streaming.floor_thresholds(spec, 0.3, None) == (0.3, keep)
    assert streaming.floor_thresholds(spec, None, 0.2) == (speak, 0.2)


def test_a_false_start_is_heard_and_its_stop_trained_in_the_training_split_only(tiny_corpus_config):
    from interaction.data import corpus

    cfg = tiny_corpus_config.copy_and_resolve_references()
    cfg.kinds, cfg.timing.false_start_prob = "pause", 1.0
    starts = 0
    for conv in (corpus.generate(cfg, "train", i) for i in range(3)):
        for e in conv.events_of("false_start"):
            starts += 1
            pause = conv.events_of("pause")[0]
            assert pause.start < e.start < pause.end < e.end and pause.end == pytest.approx(e.data["resume"], abs=1e-4)
            stop = listening.turn_of(e.end)
            assert e.end == pytest.approx(stop * MICROTURN_SECONDS)  # cut on a micro-turn edge, after the user resumes
            reply = conv.events_of("model_turn")[0].start
            assert not [w for w in conv.model_words if e.end <= w[0] < reply]  # its later words are dropped
            feats = pipeline.conversation_features(conv, LAYOUT)
            win = pipeline.window(feats, 0, len(feats["valid"]), LAYOUT.dmel.log_min, burn_in=0)
            voiced = win["text_out"][:, 0] == text.Special.VOICED
            rows = np.arange(listening.turn_of(e.start), stop) - 1  # block m plays micro-turn m + 1
            assert voiced[rows].all() and not win["trained"][rows].any()  # heard, its start not taught
            assert not voiced[stop - 1] and win["trained"][stop - 1] and feats["decision"][stop]
            assert win["trained"][rows[-1] + 1 :].all()
    assert starts >= 2
    # The held-out split keeps the reference's behaviour: no false starts, the same conversations (the same
    # words and events; espeak's timings move by milliseconds with what one process synthesised before).
    off = cfg.copy_and_resolve_references()
    off.timing.false_start_prob = 0.0
    for i in range(2):
        held, same = corpus.generate(cfg, "eval", i), corpus.generate(off, "eval", i)
        assert not held.events_of("false_start")
        for side in ("user_words", "model_words"):
            assert [w for *_, w in getattr(held, side)] == [w for *_, w in getattr(same, side)]
        assert [e.kind for e in held.events] == [e.kind for e in same.events]


def test_a_false_start_that_ends_before_its_stop_is_left_whole(tiny_corpus_config):
    from interaction.data import corpus

    cfg = tiny_corpus_config.copy_and_resolve_references()
    cfg.kinds, cfg.timing.false_start_prob = "model_backchannel", 1.0  # a story: short replies
    cfg.timing.stop_latency_median, cfg.timing.stop_latency_sigma = 1.0, 0.0  # far past its short reply's end
    whole = 0
    for conv in (corpus.generate(cfg, "train", i) for i in range(3)):
        for e in conv.events_of("false_start"):
            said = [w for w in conv.model_words if e.start <= w[0] < e.end]
            assert said and said[-1][1] == pytest.approx(e.end, abs=0.05)  # it stops where its speech ends
            whole += e.end < np.ceil((e.data["resume"] + 1.0) / MICROTURN_SECONDS) * MICROTURN_SECONDS - 1e-6
    assert whole >= 1


def test_a_false_yield_is_heard_and_its_resumption_trained_in_the_training_split_only(tiny_corpus_config):
    from interaction.data import corpus

    cfg = tiny_corpus_config.copy_and_resolve_references()
    cfg.kinds, cfg.timing.false_yield_prob = "user_backchannel", 1.0
    yields = 0
    for conv in (corpus.generate(cfg, "train", i) for i in range(2)):
        for e in conv.events_of("false_yield"):
            yields += 1
            bc = next(b for b in conv.events_of("user_backchannel")
                      if b.start == pytest.approx(e.data["backchannel"], abs=1e-3))
            assert bc.start < e.start and e.end > max(bc.end, e.start + listening.WORD_BRIDGE_S)  # resumes once over
            assert e.start == pytest.approx(listening.turn_of(e.start) * MICROTURN_SECONDS)  # on an edge
            assert not [w for w in conv.model_words if e.start <= w[0] < e.end]  # silent in between
            resumed = next(t for t in conv.events_of("model_turn") if t.start == pytest.approx(e.end))
            said = [w for a, _, w in conv.model_words if resumed.start <= a < resumed.end]
            meant = [w.strip(".,?!") for w in resumed.data["text"].split()]
            assert said and said == meant[: len(said)]  # what it set out to say, up to a later yield
            assert resumed.data["text"][0].isupper()  # it goes on with a whole sentence
            feats = pipeline.conversation_features(conv, LAYOUT)
            win = pipeline.window(feats, 0, len(feats["valid"]), LAYOUT.dmel.log_min, burn_in=0)
            voiced = win["text_out"][:, 0] == text.Special.VOICED
            stop, back = listening.turn_of(e.start), listening.turn_of(e.end)
            rows = np.arange(stop, back) - 1  # block m plays micro-turn m + 1
            assert not voiced[rows].any() and not win["trained"][rows].any()  # its silence: heard, not taught
            assert voiced[back - 1] and win["trained"][back - 1] and feats["decision"][back]  # the resumption
            assert win["trained"][listening.turn_of(bc.start) - 1 : rows[0]].all()  # talking on into it is taught
    assert yields >= 2
    off = cfg.copy_and_resolve_references()
    off.timing.false_yield_prob = 0.0
    held, same = corpus.generate(cfg, "eval", 0), corpus.generate(off, "eval", 0)
    assert not held.events_of("false_yield") and held.events_of("user_backchannel")
    assert [e.kind for e in held.events] == [e.kind for e in same.events]  # (espeak's timings move by ms)
    assert [w for *_, w in held.model_words] == [w for *_, w in same.model_words]


def test_contrasting_onsets_put_backchannels_and_an_interruption_in_one_answer_in_training_only(tiny_corpus_config):
    from interaction.data import corpus

    cfg = tiny_corpus_config.copy_and_resolve_references()
    cfg.kinds, cfg.timing.contrast_onset_prob, cfg.timing.false_yield_prob = "interruption,user_backchannel", 1.0, 0.0
    both = 0
    for conv in (corpus.generate(cfg, "train", i) for i in range(4)):
        cut = conv.events_of("interruption")
        assert len(cut) == 1 or conv.kind == "user_backchannel"  # a backchannel answer may be too short for one
        bcs = conv.events_of("user_backchannel")
        assert bcs and all(b.end < cut[0].start for b in bcs if cut)
        if not cut:
            continue
        both += 1
        stop = conv.events_of("model_stop")[0].start
        turn = next(t for t in conv.events_of("model_turn") if t.data.get("interrupted"))
        assert turn.end == stop and stop - cut[0].start <= 0.6 + 1e-6
        for b in bcs:  # it talks on through every backchannel
            assert [w for a, z, w in conv.model_words if a < b.end + 0.6 and z > b.end]
        assert not [w for a, _, w in conv.model_words if stop <= a < cut[0].end]  # and stops for the interruption
    assert both >= 3
    off = cfg.copy_and_resolve_references()
    off.timing.contrast_onset_prob = 0.0
    for i in range(2):
        held, same = corpus.generate(cfg, "eval", i), corpus.generate(off, "eval", i)
        assert [e.kind for e in held.events] == [e.kind for e in same.events]  # (espeak's timings move by ms)
        assert [e.start for e in held.events] == pytest.approx([e.start for e in same.events], abs=0.02)
        assert len(held.events_of("interruption")) == (held.kind == "interruption")


def test_onset_prosody_marks_interruptions_louder_and_higher_and_backchannels_quieter(tiny_corpus_config, monkeypatch):
    from interaction import SAMPLE_RATE
    from interaction.data import corpus, speech

    cfg = tiny_corpus_config.copy_and_resolve_references()
    cfg.kinds, cfg.timing.false_yield_prob = "interruption,user_backchannel", 0.0
    t = cfg.timing
    t.interruption_db, t.interruption_pitch, t.backchannel_db, t.backchannel_pitch = 4.0, 12, -6.0, -8
    voices, synthesize = {}, speech.synthesize

    def recording(text, voice):
        voices[text] = voice
        return synthesize(text, voice)

    monkeypatch.setattr(speech, "synthesize", recording)

    def level(conv, t0, t1):
        return 10 * np.log10(np.mean(conv.user_audio[int(t0 * SAMPLE_RATE) : int(t1 * SAMPLE_RATE)] ** 2))

    for i in range(2):
        voices.clear()
        conv = corpus.generate(cfg, "train", i)
        ask = conv.events_of("user_turn")[0]
        turn_level = np.mean([level(conv, a, b) for a, b, _ in conv.user_words if ask.start <= a < ask.end])
        onsets = conv.events_of("interruption") + conv.events_of("user_backchannel")
        assert onsets
        said = {e.data["text"] for e in onsets}
        user = voices[onsets[0].data["text"]].name
        (turn_pitch,) = {v.pitch for text, v in voices.items() if v.name == user and text not in said}
        for e in onsets:
            cut_in = e.kind == "interruption"
            assert level(conv, e.start, e.end) - turn_level == pytest.approx(4.0 if cut_in else -6.0, abs=2.0)
            assert voices[e.data["text"]].pitch - turn_pitch == (12 if cut_in else -8)
    t.backchannel_pitch = 60
    with pytest.raises(ValueError, match="backchannel_pitch=60"):
        corpus.validate(cfg)


def test_stops_are_where_pauses_begin_and_turns_end_and_weigh_stop_weight(tiny_corpus):
    import jax.numpy as jnp
    import optax

    from interaction.models import model as model_lib

    conv = _convs(tiny_corpus, "pause")[0]
    n = len(pipeline.conversation_features(conv, LAYOUT)["valid"])
    targets = listening.targets(conv, n + 1)
    stop = np.asarray(model_lib.stops(jnp.asarray(targets)[None]))[0]
    moments = floor_probe.moments(conv, n)
    assert any(not end for end, _ in moments) and any(end for end, _ in moments)  # a pause and a turn end
    for _, k in moments:  # the block the user stops in, and the next, where the probe reads its heads
        assert stop[k] and stop[k + 1]
    assert stop.mean() < 0.5  # the user speaking, or silent long after a stop, is not a stop
    # The loss is the weighted mean: the stop blocks count `stop_weight` times, the total weight is kept.
    logits = jnp.asarray(np.random.default_rng(0).normal(size=targets.shape), jnp.float32)[None]
    valid = jnp.ones((1, len(targets)))
    bce = np.asarray(optax.sigmoid_binary_cross_entropy(logits, jnp.asarray(targets)[None]).mean(-1))[0]
    w = np.where(stop, 8.0, 1.0)
    loss = float(model_lib.listen_loss(logits, jnp.asarray(targets)[None], valid, stop_weight=8.0))
    np.testing.assert_allclose(loss, (bce * w).sum() / w.sum(), rtol=1e-5)
    np.testing.assert_allclose(float(model_lib.listen_loss(logits, jnp.asarray(targets)[None], valid)), bce.mean(),
                               rtol=1e-5)
    assert abs(loss - bce.mean()) > 1e-3  # the weight moves the loss
