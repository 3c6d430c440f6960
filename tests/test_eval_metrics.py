"""Benchmark metrics on hand-built outputs whose words and times are known, so every score is known."""
import math

import numpy as np
import pytest

from interaction import SAMPLE_RATE
from interaction.evals import baseline, fdb_rules, score_dir, scoring
from interaction.evals import words as wordlib


def spoken(start: float, text: str, per_word: float = 0.25) -> list:
    """Words of `text`, back to back from `start`."""
    return [(start + i * per_word, start + (i + 1) * per_word, w) for i, w in enumerate(text.split())]


def heard(words, out_segments=(), in_segments=(), duration=10.0, said=None) -> scoring.Heard:
    return scoring.Heard(output_words=list(words), output_segments=list(out_segments),
                         input_segments=list(in_segments), duration=duration, said_text=said)


# ---------------------------------------------------------------- Full-Duplex-Bench v1


def test_take_over_rule():
    assert not fdb_rules.takes_over([])
    assert not fdb_rules.takes_over(spoken(0.0, "mm hm yeah", per_word=0.3))  # 0.9 s, 3 words
    assert fdb_rules.takes_over(spoken(0.0, "yes I see that", per_word=0.2))  # 0.8 s, but 4 words
    assert fdb_rules.takes_over([(0.0, 1.0, "okaaay")])  # one word lasting 1 s


def test_turn_taking_latency_clamped_and_only_on_take_over():
    assert fdb_rules.turn_taking(spoken(2.3, "sure I can help with that"), user_end=2.0) == (True, pytest.approx(0.3))
    assert fdb_rules.turn_taking(spoken(1.7, "sure I can help with that"), user_end=2.0) == (True, 0.0)
    assert fdb_rules.turn_taking(spoken(2.3, "mm hm"), user_end=2.0) == (False, None)


def test_interruption_scores_only_words_after_it_ends():
    words = spoken(0.0, "so the first thing you do is") + spoken(4.6, "oh sure we can do that instead")
    taken, latency = fdb_rules.interruption(words, interrupt_end=4.0)
    assert taken and latency == pytest.approx(0.6)
    assert fdb_rules.interruption(spoken(0.0, "so the first thing you do is"), 4.0) == (False, None)


def test_backchannel_rule_frequency_and_stop_at_a_long_segment():
    words = [(1.0, 1.3, "mm"), (3.0, 3.4, "yeah")]
    taken, found = fdb_rules.backchannels([(1.0, 1.3), (3.0, 3.4)], words)
    assert not taken and found == [(1.0, 1.3), (3.0, 3.4)]
    three_words = [(5.0, 5.1, "oh"), (5.1, 5.2, "i"), (5.2, 5.4, "see")]
    assert fdb_rules.backchannels([(5.0, 5.4)], three_words) == (True, [(5.0, 5.4)])  # under 1 s, 3 words
    assert fdb_rules.backchannels([(1.0, 1.3), (2.0, 6.0), (7.0, 7.2)], words) == (True, [(1.0, 1.3)])  # stops at > 3 s
    assert fdb_rules.backchannels([(1.0, 2.5)], [(1.0, 1.3, "mm")])[0]  # 1.5 s long: a turn


def test_backchannel_timing_distance():
    ref = [(1.0, 1.4), (4.0, 4.4)]
    assert fdb_rules.timing_distance(ref, ref, 6.0) == pytest.approx(0.0, abs=1e-6)
    assert fdb_rules.timing_distance([], ref, 6.0) == 1.0
    assert fdb_rules.timing_distance([(2.0, 2.2)], [(5.0, 5.2)], 6.0) == pytest.approx(math.sqrt(math.log(2)), abs=1e-4)
    np.testing.assert_allclose(fdb_rules.timing_distribution([(0.0, 0.2)], 1.0)[:3], [0.5, 0.5, 0.0], atol=1e-9)


# ---------------------------------------------------------------- v1.5


def test_merge_overlaps_and_response_gaps():
    assert fdb_rules.merge([(2.5, 3.0), (0.0, 1.0), (1.4, 1.8)], gap=0.5) == [(0.0, 1.8), (2.5, 3.0)]
    user = [(0.0, 2.0), (5.0, 6.0)]
    model = [(1.5, 4.0), (4.3, 4.5), (6.2, 8.0)]  # 4.0 -> 4.3 merges (gap 0.3 <= 0.5)
    assert fdb_rules.overlaps(user, model) == [(1.5, 2.0)]
    # Merged model starts are 1.5 and 6.2: both user ends are answered at 6.2, which counts for the later one.
    assert fdb_rules.response_gaps(user, model) == [(6.0, 6.2)]


def test_stop_latency_of_an_interruption():
    files = {"interrupt.json": [{"timestamp": [3.0, 4.0]}], "events.json": []}
    words = spoken(0.5, "well the thing about bread is") + spoken(4.5, "of course here is the short version")
    h = heard(words, out_segments=[(0.5, 3.4), (4.5, 6.2)], in_segments=[(3.0, 4.0)])
    s = scoring.score_sample("user_interruption", files, h)
    assert s["stop_latency"] == pytest.approx(0.4)  # the model kept talking 0.4 s into the interruption
    assert s["latency"] == pytest.approx(0.5) and s["takeover"] == 1.0
    assert s["response_latency"] == pytest.approx(0.5)


# ---------------------------------------------------------------- ours

EVENTS_CUE = [
    {"kind": "user_turn", "timestamp": [0.3, 1.5], "text": "nice day"},
    {"kind": "model_turn", "timestamp": [1.7, 2.5], "text": "it is"},
    {"kind": "visual_cue", "timestamp": [4.0, 4.0]},
    {"kind": "model_remark", "timestamp": [4.6, 5.5], "text": "a red circle appeared"},
    {"kind": "visual_cue", "timestamp": [8.0, 8.0]},
]


def test_visual_cue_hits_latency_and_false_alarms():
    segments = [(1.8, 2.5), (4.5, 5.4), (6.5, 6.9)]  # reply, remark 0.5 s after cue 1, a stray remark; cue 2 missed
    s = scoring.score_sample("visual_cue", {"events.json": EVENTS_CUE}, heard([], segments, duration=12.0))
    assert s["cue_hit"] == 0.5 and s["cue_latency"] == pytest.approx(0.5)
    assert s["false_alarms_per_min"] == pytest.approx(5.0)  # one in 12 s


def test_delegated_answer_accuracy_and_time_to_answer():
    events = [{"kind": "user_turn", "timestamp": [0.3, 1.8], "text": "What is 12 times 11?"},
              {"kind": "model_turn", "timestamp": [2.0, 2.6], "text": "Let me check."},
              {"kind": "delegation", "timestamp": [2.0, 4.0], "result": "132"},
              {"kind": "model_turn", "timestamp": [4.2, 6.0], "text": "12 times 11 is 132.", "delegated": True}]
    right = spoken(4.3, "twelve times eleven is one hundred and thirty two")
    wrong = spoken(4.3, "twelve times eleven is one hundred and twenty")  # most words right, the number wrong
    segs = [(2.0, 2.6), (4.3, 6.8)]

    def stream(said: str, at: float = 4.3, **live) -> dict:
        return {"words": [{"text": w, "timestamp": [at, at + 0.2]} for w in said.split()], "delegations": [], **live}

    s = scoring.score_sample("delegation", {"events.json": events, "model_text.json": stream("12 times 11 is 132.")},
                             heard(right, segs))
    assert s["answer_correct"] == 1.0 and s["answer_correct_text"] == 1.0 and s["acknowledged"] == 1.0
    assert s["time_to_answer"] == pytest.approx(4.3 - 1.8)
    assert "delegated" not in s  # the corpus' own result: no live reasoner to judge
    s = scoring.score_sample("delegation", {"events.json": events, "model_text.json": stream("12 times 11 is 120.")},
                             heard(wrong, segs[1:]))
    assert s["answer_correct"] == 0.0 and s["answer_correct_text"] == 0.0 and s["acknowledged"] == 0.0
    early = stream("132", at=3.0)  # said before the result arrived: a guess, not the answer
    assert scoring.score_sample("delegation", {"events.json": events, "model_text.json": early},
                                heard(right, segs))["answer_correct_text"] == 0.0
    # A live reasoner: its answer arrived at 5.0, so only what is said from then on counts.
    live = stream("12 times 11 is 132.", at=5.2, delegations=[{"time": 2.2, "request": "what is 12 times 11"}],
                  results=[{"time": 5.0, "text": "12 times 11 is 132.", "ok": True, "trace": []}])
    s = scoring.score_sample("delegation", {"events.json": events, "model_text.json": live},
                             heard(spoken(5.2, "twelve times eleven is one hundred and thirty two"),
                                   [(2.0, 2.6), (5.2, 7.0)]))
    assert s == pytest.approx({"delegated": 1.0, "request_exact": 1.0, "reasoner_correct": 1.0, "answer_correct": 1.0,
                               "time_to_answer": 5.2 - 1.8, "acknowledged": 1.0, "answer_correct_text": 1.0,
                               "wer_reference": s["wer_reference"]})
    s = scoring.score_sample("delegation", {"events.json": events, "model_text.json": stream("132", results=[])},
                             heard(right, segs))  # it never delegated: no answer, whatever it says
    assert s["delegated"] == 0.0 and s["answer_correct"] == 0.0 and s["time_to_answer"] is None


def test_reference_answers_heard_is_the_recognizers_ceiling():
    events = [{"kind": "user_turn", "timestamp": [0.3, 1.8], "text": "What is 12 times 11?"},
              {"kind": "delegation", "timestamp": [2.0, 4.0], "result": "132"},
              {"kind": "model_turn", "timestamp": [2.0, 2.6], "text": "Let me check."},
              {"kind": "model_turn", "timestamp": [4.2, 6.0], "text": "12 times 11 is 132.", "delegated": True}]
    reply = lambda text, heard: baseline.Reply(start=0.0, text=text, wave=np.zeros(1), words=spoken(0.0, heard))
    heard = [reply("Let me check.", "let me check"),
             reply("12 times 11 is 132.", "twelve times eleven is one hundred and thirty two")]
    assert scoring.reference_answers_heard(events, heard) == [True]  # the acknowledgement is not an answer
    misheard = [reply("12 times 11 is 132.", "twelve times eleven is one hundred and thirty")]
    assert scoring.reference_answers_heard(events, misheard) == [False]


def test_translation_bleu_and_lag():
    events = [{"kind": "translation", "timestamp": [3.0, 4.5], "source_start": 1.0, "source_end": 2.5,
               "target": "the weather is lovely today and the sun is out"}]
    exact = spoken(3.0, "the weather is lovely today and the sun is out")
    s = scoring.score_sample("translation", {"events.json": events}, heard(exact, [(3.0, 5.5)]))
    assert s["bleu"] == pytest.approx(100.0) and s["translation_lag"] == pytest.approx(0.5)
    other = spoken(3.0, "my cat sleeps on a chair all afternoon long")
    assert scoring.score_sample("translation", {"events.json": events}, heard(other, [(3.0, 5.5)]))["bleu"] < 10


def test_timer_error_ignores_the_acknowledgement():
    events = [{"kind": "timer_request", "timestamp": [0.3, 2.0], "seconds": 5},
              {"kind": "model_turn", "timestamp": [2.2, 3.0], "text": "Okay."},
              {"kind": "timer_due", "timestamp": [7.0, 7.0]},
              {"kind": "model_turn", "timestamp": [7.0, 8.0], "text": "Five seconds.", "timer": True}]
    s = scoring.score_sample("timer", {"events.json": events}, heard([], [(2.2, 3.0), (7.4, 8.2)]))
    assert s["timer_error"] == pytest.approx(0.4) and s["timer_said"] == 1.0
    assert scoring.score_sample("timer", {"events.json": events}, heard([], [(2.2, 3.0)]))["timer_said"] == 0.0


def test_false_response_to_side_talk_and_behaviour_labels():
    events = [{"kind": "side_talk", "timestamp": [4.0, 5.5], "text": "just a second"},
              {"kind": "model_turn", "timestamp": [1.0, 3.5], "text": "you could try the blue one"},
              {"kind": "model_turn", "timestamp": [9.0, 10.0], "text": "welcome back shall we go on"}]
    files = {"metadata.json": {"timestamps": [4.0, 5.5]}, "events.json": events}
    barges = spoken(5.8, "sure take your time I will wait here")
    s = scoring.score_sample("talking_to_other", files, heard(barges))
    assert s["false_response"] == 1.0 and s["behaviour"] == "respond" and s["expected_behaviour"] == 0.0
    polite = spoken(9.1, "welcome back shall we go on")
    s = scoring.score_sample("talking_to_other", files, heard(polite))
    assert s["false_response"] == 0.0 and s["behaviour"] == "resume" and s["expected_behaviour"] == 1.0
    assert scoring.score_sample("talking_to_other", files, heard([]))["behaviour"] == "unknown"
    sorry = spoken(5.8, "sorry could you repeat that")
    assert scoring.score_sample("talking_to_other", files, heard(sorry))["behaviour"] == "uncertain"


def test_intelligibility_and_word_normalisation():
    assert wordlib.spell_integer(540) == "five hundred and forty"
    assert wordlib.spell_integer(2026) == "two thousand and twenty six"
    assert wordlib.normalize("It's 3.5 km, OK?") == ["it's", "three", "point", "five", "km", "ok"]
    assert wordlib.word_error_rate("the cat sat", "the cat sat") == 0.0
    assert wordlib.word_error_rate("the cat sat down", "the bat sat") == pytest.approx(0.5)  # 1 sub + 1 del
    events = [{"kind": "model_turn", "timestamp": [1.0, 2.0], "text": "Hello there friend"}]
    s = scoring.score_sample("pause_handling", {"events.json": events},
                             heard(spoken(1.0, "hello there fiend"), said="hello there friend"))
    assert s["wer_reference"] == pytest.approx(1 / 3) and s["wer_own_text"] == pytest.approx(1 / 3)


def test_aggregate_skips_undefined_and_counts_labels():
    agg = scoring.aggregate([{"takeover": 1.0, "latency": 0.4, "behaviour": "resume"},
                             {"takeover": 0.0, "latency": None, "behaviour": "respond"},
                             {"takeover": 1.0, "latency": 0.2, "behaviour": "resume", "timer_error": -0.5}])
    assert agg["takeover"] == pytest.approx(2 / 3) and agg["latency"] == pytest.approx(0.3) and agg["n_latency"] == 2
    assert agg["behaviour_resume"] == pytest.approx(2 / 3) and agg["behaviour_unknown"] == 0.0
    assert agg["timer_abs_error"] == 0.5


# ---------------------------------------------------------------- the turn-based baseline


def test_baseline_threshold_trades_latency_for_pause_take_overs():
    """User speaks 0-2 s, pauses 0.7 s, speaks 2.7-4 s; the reference reply comes at 4.2 s."""
    reply = baseline.Reply(start=4.2, text="that is a fine plan", wave=np.full(SAMPLE_RATE, 0.1, np.float32),
                           words=spoken(0.0, "that is a fine plan"))
    user = [(0.0, 2.0), (2.7, 4.0)]
    n = 8 * SAMPLE_RATE
    fast_wave, fast, _ = baseline.respond_at([reply], baseline.ends_of_turn(user, 0.2), n)
    assert fast[0][0] == pytest.approx(2.2)  # barges into the pause with the reply
    assert np.abs(fast_wave[int(2.2 * SAMPLE_RATE)]) > 0
    _, slow, _ = baseline.respond_at([reply], baseline.ends_of_turn(user, 1.0), n)
    assert slow[0][0] == pytest.approx(5.0)  # waits out the pause, answers 1 s after the turn
    assert fdb_rules.turn_taking(slow, user_end=4.0) == (True, pytest.approx(1.0))
    assert baseline.ends_of_turn(user, 0.8) == [(4.0, 4.8)]


def test_task_is_read_from_the_folder_or_the_annotation(tmp_path):
    assert score_dir.task_of(tmp_path / "pause_handling" / "7", {}) == "pause_handling"
    assert score_dir.task_of(tmp_path / "candor" / "7", {"turn_taking.json": []}) == "smooth_turn_taking"
    assert score_dir.task_of(tmp_path / "x" / "7", {"metadata.json": {"background_text": "hi"}}) == "background_speech"
    assert score_dir.task_of(tmp_path / "x" / "7", {}) is None


def test_floor_of_an_output_equal_to_the_reference_is_perfect():
    from interaction.evals import floor

    user, reference = [(0.0, 1.0), (2.0, 3.0)], [(1.2, 1.8), (3.1, 3.5)]
    wave = np.zeros(4 * 16000, np.float32)
    f = floor.summarize([floor.sample_counts(wave, reference, user, reference)])
    assert (f["f1"], f["precision"], f["recall"], f["talk_over"], f["reference_talk_over"]) == (1.0, 1.0, 1.0, 0.0, 0.0)
    assert f["quiet_dbfs"] == -120.0  # digital silence wherever the reference is silent


def test_floor_of_an_output_equal_to_the_user_scores_the_known_overlap():
    from interaction.evals import floor

    user, reference = [(0.0, 1.0), (2.0, 3.0)], [(1.2, 1.8), (2.5, 3.5)]
    wave = np.zeros(4 * 16000, np.float32)
    f = floor.summarize([floor.sample_counts(wave, user, user, reference)])
    # 20 ms frames: the output speaks 100, the reference 80, both 25 (2.5-3.0 s).
    assert f["precision"] == pytest.approx(25 / 100) and f["recall"] == pytest.approx(25 / 80)
    assert f["f1"] == pytest.approx(50 / (100 + 80))
    assert f["talk_over"] == 1.0 and f["reference_talk_over"] == pytest.approx(0.25)
    # A labelled interruption over the second user turn leaves it out of talk-over, not out of F1.
    g = floor.summarize([floor.sample_counts(wave, user, user, reference, excluded=[(2.0, 3.0)])])
    assert g["talk_over"] == 1.0 and g["reference_talk_over"] == 0.0 and g["f1"] == f["f1"]


def test_floor_level_in_reference_silence_and_pooling_over_samples():
    from interaction.evals import floor

    t = np.arange(2 * 16000) / 16000
    hum = (0.1 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)  # RMS 0.0707: -23 dBFS
    reference = [(0.0, 1.0)]
    a = floor.sample_counts(hum, [], [], reference)
    assert floor.summarize([a])["quiet_dbfs"] == pytest.approx(20 * np.log10(0.1 / np.sqrt(2)), abs=0.05)
    # Counts add over samples before the ratio: 2 of the 5 frames spoken are right in one, 2 of 2 in the other.
    one = floor.sample_counts(np.zeros(1600, np.float32), [(0.0, 0.1)], [], [(0.0, 0.05)])
    two = floor.sample_counts(np.zeros(1600, np.float32), [(0.0, 0.05)], [], [(0.0, 0.05)])
    pooled = floor.summarize([one, two])
    assert pooled["precision"] == pytest.approx(4 / 7) and pooled["recall"] == 1.0 and pooled["samples"] == 2
    lo, hi = pooled["ci_precision"]
    assert lo <= pooled["precision"] <= hi
    # Without a reference only talk-over is defined.
    bare = floor.summarize([floor.sample_counts(hum, [(0.0, 1.0)], [(0.5, 1.5)], None)])
    assert bare["f1"] is None and bare["quiet_dbfs"] is None and bare["talk_over"] == pytest.approx(0.5)


def test_bootstrap_intervals_cover_the_rate_and_shrink_with_samples():
    from interaction.evals import intervals

    assert intervals.mean_interval([0.3] * 5) == (0.3, 0.3)
    assert intervals.mean_interval([]) is None
    rng = np.random.default_rng(0)
    few, many = rng.random(20) < 0.5, rng.random(500) < 0.5
    lo, hi = intervals.mean_interval(few)
    assert lo < few.mean() < hi and 0.25 < hi - lo < 0.6  # about +-0.22 for 20 coin flips
    lo2, hi2 = intervals.mean_interval(many)
    assert lo2 < many.mean() < hi2 and hi2 - lo2 < (hi - lo) / 3
    assert intervals.mean_interval(few) == intervals.mean_interval(few)  # a fixed seed: the same report twice
    agg = scoring.aggregate([{"takeover": float(v)} for v in few])
    assert agg["ci_takeover"] == intervals.mean_interval(few) and agg["n_takeover"] == 20


def test_frontier_verdict_reads_the_models_point_against_the_baselines_curve():
    from interaction.evals import report

    points = [{"turn_taking_latency": lat, "pause_takeover": take, "threshold": t}
              for t, lat, take in ((0.2, 0.3, 1.0), (0.6, 0.7, 0.5), (1.0, 1.1, 0.1))]

    def verdict(latency, takeover, ci):
        return report.frontier_verdict(points, {"smooth_turn_taking": {"latency": latency},
                                                "pause_handling": {"takeover": takeover, "ci_takeover": ci}})

    v = verdict(0.5, 0.6, (0.5, 0.7))  # the frontier takes over 0.75 at 0.5 s
    assert v["frontier_takeover"] == pytest.approx(0.75) and v["inside"] and v["strictly"]
    v = verdict(0.5, 0.7, (0.6, 0.8))  # below the curve, but not its whole interval
    assert v["inside"] and not v["strictly"]
    assert not verdict(0.9, 0.4, (0.3, 0.5))["inside"]  # the frontier takes over 0.3 there
    v = verdict(0.1, 0.9, (0.8, 0.95))  # faster than the baseline can answer: its fastest point bounds it
    assert v["frontier_takeover"] == 1.0 and v["strictly"]
    assert report.frontier_verdict(points, {"pause_handling": {"takeover": 0.5}}) is None
    # A model that seldom answers a turn end takes over few pauses: outside unless it answers as often.
    for p, answers in zip(points, (1.0, 0.9, 0.8)):
        p["turn_taking_takeover"] = answers
    quiet = report.frontier_verdict(points, {"smooth_turn_taking": {"latency": 0.5, "takeover": 0.05},
                                             "pause_handling": {"takeover": 0.05, "ci_takeover": (0.0, 0.15)}})
    assert quiet["frontier_answers"] == pytest.approx(0.95) and not quiet["inside"] and not quiet["strictly"]
    v = report.frontier_verdict(points, {"smooth_turn_taking": {"latency": 0.5, "takeover": 0.95},
                                         "pause_handling": {"takeover": 0.6, "ci_takeover": (0.5, 0.7)}})
    assert v["inside"] and v["strictly"]
