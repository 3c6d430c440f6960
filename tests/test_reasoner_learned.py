"""The learned reasoner: episode encoding, and learning to write tool calls and answers from scratch."""
import threading

import numpy as np
import pytest

from interaction.codecs import text
from interaction.models.transformer import DecoderSpec
from interaction.reasoner import episodes, learned, training
from interaction.reasoner.base import Request


def test_episodes_target_only_what_the_model_writes():
    e = episodes.Episode("What is 12 times 11?", "calculator(12*11)", "132", "12 times 11 is 132.", "calculator", 0)
    tokens, target = episodes.encode(e)
    written = text.decode(tokens[target], markup=True)
    assert written == "calculator(12*11)<call_end>12 times 11 is 132.<eos>"
    assert "132" not in text.decode(tokens[:np.argmax(target)])  # the question does not leak the result
    assert text.decode(tokens[~target], markup=True).startswith("<delegate>What is 12 times 11?<delegate_end><call>")
    rng = np.random.default_rng(0)
    tools = {episodes.make_episode(rng).tool for _ in range(40)}
    assert tools == {"calculator", "units", "knowledge", "clock"}


@pytest.fixture(scope="module")
def trained():
    spec = DecoderSpec(embed=64, layers=2, heads=4, kv_heads=2, head_dim=16, mlp=256)
    return training.train(spec, steps=300, batch_size=32, lr=3e-3, seed=0)


def test_learns_to_call_tools_and_answer(trained):
    graphdef, params, losses = trained
    assert np.mean(losses[-20:]) < 0.25 * np.mean(losses[:20])
    reasoner = learned.LearnedReasoner(graphdef, params)
    rng = np.random.default_rng(99)  # questions the training stream (seed 0) did not draw in this order
    drawn = [episodes.make_episode(rng) for _ in range(24)]
    calls = [reasoner.call_for(e.question) == e.call for e in drawn]
    assert np.mean(calls) >= 0.75, calls  # chance is nil: the call must be copied byte for byte
    e = next(x for x in drawn if x.tool == "calculator")
    got = reasoner.answer(Request(e.question, "", episodes.episode_time(e)), threading.Event())
    assert got.ok and got.trace == ({"call": e.call, "result": e.result},)  # it called the tool and read it
    assert got.text.startswith(e.answer.split(" is ")[0] + " is "), got.text  # and answers in the right form


def test_cancelled_and_oversized_requests(trained):
    graphdef, params, _ = trained
    reasoner = learned.LearnedReasoner(graphdef, params)
    cancelled = threading.Event()
    cancelled.set()
    assert reasoner.answer(Request("What is 12 times 13?", "", episodes.episode_time(
        episodes.make_episode(np.random.default_rng(1)))), cancelled).text == "cancelled"
    assert not reasoner.answer(Request("x" * 200, "", episodes.EPOCH), threading.Event()).ok


def test_saved_reasoner_loads_and_answers_the_same(trained, tmp_path):
    graphdef, params, _ = trained
    spec = DecoderSpec(embed=64, layers=2, heads=4, kv_heads=2, head_dim=16, mlp=256)
    learned.save(tmp_path / "r", spec, params)
    loaded, original = learned.load(tmp_path / "r"), learned.LearnedReasoner(graphdef, params)
    for e in (episodes.make_episode(np.random.default_rng(s)) for s in range(4)):
        assert loaded.call_for(e.question) == original.call_for(e.question)
    with pytest.raises(FileNotFoundError, match="experiments.train_reasoner"):
        learned.load(tmp_path / "missing")
