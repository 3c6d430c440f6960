"""The floor, text and hearing probes and the intelligibility measure, run as users run them on a trained run's
workdir."""
import json

from programs import run_module, succeeded


def test_probe_writes_its_figures_and_compares_runs(smoke_run, tmp_path):
    out = tmp_path / "probe.json"
    log = succeeded(run_module("experiments.probe_floor", f"--workdir={smoke_run}", "--per_kind=1",
                               "--serve.sessions=4", f"--out={out}"))
    probe = json.loads(out.read_text())
    assert probe["conversations"] == 11 and "probing step 6" in log
    for name in ("talk_over", "floor_f1", "stop_tf", "start_tf", "utterance_s_reference", "interrupt_stop_tf",
                 "turn_end_auc_no_stories", "hearing_auc", "smart_turn_auc", "go_on_tf", "go_on_own_frames",
                 "own_frame_level"):
        fig = probe["figures"][name]
        assert set(fig) >= {"value", "ci", "n"}, name
    assert 0 <= probe["figures"]["talk_over"]["value"] <= 1
    png = tmp_path / "curves.png"
    table = succeeded(run_module("experiments.probe_floor", f"--compare={out}", f"--curves={png}"))
    header, _, row, *_ = table.splitlines()
    assert "| stop_tf |" in header and row.startswith(f"| {tmp_path.name} | 6 |")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    missing = run_module("experiments.probe_floor", f"--workdir={smoke_run}", "--step=1")
    assert missing.returncode != 0 and "holds no checkpoint of step 1; it holds [4, 6]" in missing.stderr


def test_intelligibility_scores_the_model_and_the_reference(smoke_run, tmp_path):
    out = tmp_path / "wer.json"
    succeeded(run_module("experiments.intelligibility", f"--workdir={smoke_run}", "--per_kind=1",
                         "--kinds=turn_taking,interruption", f"--out={out}"))
    result = json.loads(out.read_text())
    assert result["model"]["words"] == result["reference"]["words"] > 0
    assert result["reference"]["value"] < 0.6  # the measuring chain hears the reference's own speech
    assert result["model"]["value"] > result["reference"]["value"]  # two steps of training do not speak
    assert 0 <= result["heard_as_speech"]["value"] <= 1 and result["heard_as_speech"]["n"] == 2
    gap = result["conditioning_gap"]
    assert gap["n"] == 2 and gap["patches"] > 0 and gap["ci"][0] <= gap["value"] <= gap["ci"][1]
    assert set(result["readout"]) == {"conditioning", "previous_patch"}
    assert result["readout"]["previous_patch"] > 0  # speech runs on: the last 100 ms tells of the next
    assert set(result["spread"]) == {"draws", "data", "error"} and result["spread"]["draws"] > 0


def test_text_probe_scores_bytes_by_their_place_and_the_words_said(smoke_run, tmp_path):
    out = tmp_path / "text.json"
    log = succeeded(run_module("experiments.probe_text", f"--workdir={smoke_run}", "--per_kind=1",
                               "--serve.sessions=4", "--shown=2", f"--out={out}"))
    result = json.loads(out.read_text())
    assert "words of step 6 on 11 held-out" in log and result["conversations"] == 11 and len(result["said"]) == 2
    figures = result["figures"]
    assert {"first_accuracy", "inner_accuracy", "space_accuracy", "known_words", "repeated_words",
            "inner_slot7_accuracy"} <= set(figures)
    assert figures["first_accuracy"]["n"] > 0 and 0 <= figures["inner_accuracy"]["value"] <= 1


def test_a_bytes_place_in_its_word_and_what_is_counted_at_it():
    import numpy as np

    from interaction.codecs import text
    from interaction.evals import text_probe

    pad, voiced = int(text.Special.PAD), int(text.Special.VOICED)
    rows = np.array([[voiced, *text.encode("ab c")], [voiced, *text.encode("d "), pad, pad],
                     [voiced, int(text.Special.DELEGATE), *text.encode("e"), pad, pad]])
    places = text_probe.byte_places(rows)
    # a b ' ' c | d ' ' | <delegate> e: "cd" is one word split over two rows; a word begins after a special
    np.testing.assert_array_equal(places, [[-1, 0, 1, 2, 0], [-1, 1, 2, -1, -1], [-1, -1, 0, -1, -1]])
    logits = np.zeros(rows.shape + (text.VOCAB_SIZE,))
    logits[0, 1, rows[0, 1]] = logits[1, 1, rows[1, 1]] = 1.0  # right at "a" and at "d", the likeliest byte
    logits[0, 2, pad] = 9.0  # PAD likeliest at "b": not a byte, so the likeliest byte (the first) is scored
    counts = text_probe.byte_counts(logits, rows)
    assert (counts["first_bytes"], counts["first_hits"]) == (3.0, 1.0)
    assert (counts["inner_bytes"], counts["inner_hits"]) == (2.0, 1.0)
    assert (counts["inner_slot1_bytes"], counts["inner_slot1_hits"], counts["inner_slot2_bytes"]) == (1.0, 1.0, 1.0)
    free = np.array([[voiced, *text.encode("so so ")], [voiced, *text.encode("qx "), pad, pad, pad]])
    said = text_probe.said_counts(free, {"so"})
    assert said == {"words": 3.0, "known": 2.0, "repeats": 1.0}
    figures = text_probe.summarize([counts | said, counts | said])
    assert figures["first_accuracy"]["value"] == 1 / 3 and figures["known_words"]["value"] == 2 / 3


def test_hearing_probe_scores_four_readers_on_the_held_out_moments(smoke_run, tmp_path):
    out = tmp_path / "hearing.json"
    log = succeeded(run_module("experiments.probe_hearing", f"--workdir={smoke_run}", "--per_kind=2",
                               f"--out={out}"))
    result = json.loads(out.read_text())
    assert "hearing at step 6" in log and result["moments"]["train"] > 0 and result["moments"]["held_out"] > 0
    assert set(result["figures"]) == {"head", "hidden", "embedded", "dmel"}
    for reader in result["figures"].values():
        assert set(reader) == {"all", "stories", "rest"} and 0 <= reader["all"]["value"] <= 1
    bad = run_module("experiments.probe_hearing", f"--workdir={smoke_run}", "--blocks=1")
    assert bad.returncode != 0 and "--blocks=1 must be at least 2" in bad.stderr


def test_a_linear_reader_learns_what_separates_the_moments():
    import numpy as np

    from interaction.evals.floor_probe import auc, fit_logistic

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 50)).astype(np.float32)
    y = x[:, 3] - 0.5 * x[:, 7] + 0.3 * rng.normal(size=400) > 0  # two of fifty features matter
    read = fit_logistic(x[:300], y[:300], l2=0.1)
    assert auc(list(zip(y[300:], read(x[300:])))) > 0.95
