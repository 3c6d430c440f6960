"""The learned reasoner: episode encoding, and learning to write tool calls and answers from scratch."""
import threading

import numpy as np
import pytest

from interaction.codecs import text
from interaction.models.transformer import DecoderSpec
from interaction.reasoner import episodes, learned, training
from interaction.reasoner.base import Request


def test_episodes_target_only_what_the_model_writes():
    e = episodes.Episode("What is 12 times 11?", ("calculator(12*11)",), ("132",), "12 times 11 is 132.", "calculator",
                         0)
    tokens, target = episodes.encode(e)
    written = text.decode(tokens[target], markup=True)
    assert written == "calculator(12*11)<call_end><answer>12 times 11 is 132.<eos>"
    assert "132" not in text.decode(tokens[:np.argmax(target)])  # the question does not leak the result
    assert text.decode(tokens[~target], markup=True).startswith("<delegate>What is 12 times 11?<delegate_end><call>")
    rng = np.random.default_rng(0)
    drawn = [episodes.make_episode(rng) for _ in range(80)]
    assert {x.tool for x in drawn} == {"calculator", "units", "knowledge", "clock", "search", "not found"}
    assert {x.tool for x in drawn if x.surface} == {"units", "search"}  # a table, a card; nothing else shown
    u = next(x for x in drawn if x.tool == "units")
    tokens, target = episodes.encode(u)
    line = f"table|{u.calls[0][len('units('):].partition(' to ')[0]}|{u.results[0]}"
    assert text.decode(tokens[target], markup=True).endswith(f"<answer>{u.answer}<surface>{line}<eos>")


def test_a_conversion_is_read_with_its_rounding_as_spoken():
    """The answer says one decimal; the model reads it beside the tool's six digits, so rounding is copied."""
    rng = np.random.default_rng(1)
    e = next(x for x in (episodes.make_episode(rng, search_share=0.0) for _ in range(300))
             if x.calls[0] == "units(17 miles to km)")
    tokens, target = episodes.encode(e)
    assert "<tool_result>27.3588 km ≈ 27.4<tool_result_end>" in text.decode(tokens[~target], markup=True)
    assert e.answer == "That is about 27.4 kilometres."
    assert episodes.view("units(1000 m to km)", "1 km") == "1 km"  # nothing to round
    assert episodes.view("units(1 parsec to km)", "error: unknown unit 'parsec'") == "error: unknown unit 'parsec'"
    assert episodes.view("calculator(1/3)", "0.333333") == "0.333333"  # the calculator's result is said as is


def test_search_episodes_search_open_and_read_through_views_and_hold_subjects_out():
    """Two calls, each written by the model, each result read through its view (the search's first hit,
    the passage's start) and never a target; held-out subjects never occur in training."""
    from interaction.tools import documents

    q = documents.search_questions()[1]
    e = next(x for x in (episodes.make_episode(np.random.default_rng(s)) for s in range(200))
             if x.tool == "search")
    tokens, target = episodes.encode(e)
    name = e.calls[0][len("search("):-1]
    doc = e.calls[1][len("open("):-1]
    title = e.results[0].splitlines()[0].split(" | ")[1]
    assert text.decode(tokens[target], markup=True) == (f"search({name})<call_end><call>open({doc})<call_end>"
                                                        f"<answer>{e.answer}<surface>card|{doc}|{title}<eos>")
    shown = text.decode(tokens[~target], markup=True)
    assert f"<tool_result>{doc} | " in shown and e.results[0].splitlines()[0] not in shown  # the hit, no snippet
    assert f"<tool_result>{e.results[1][:episodes.PASSAGE_VIEW]}<tool_result_end>" in shown
    assert episodes.view("search(x)", "no results") == "no results"
    train, held = set(episodes.search_questions("train")), set(episodes.search_questions("eval"))
    assert not train & held and len(held) >= 80 and q.question in train | held
    eval_rng = np.random.default_rng(0)
    asked = {episodes.make_episode(eval_rng, split="eval").question for _ in range(200)}
    assert asked & held and not asked & train


def test_a_batch_is_cut_to_its_longest_episode_and_the_loss_is_the_same():
    import jax.numpy as jnp
    from flax import nnx

    b = episodes.batch(np.random.default_rng(0), 8, search_share=0.0)
    width = b["tokens"].shape[1]
    longest = max(int(np.flatnonzero(row != text.Special.PAD)[-1]) + 1 for row in b["tokens"])
    assert width % episodes.BUCKET == 0 and longest <= width < longest + episodes.BUCKET < episodes.LENGTH
    full = {k: np.pad(v, ((0, 0), (0, episodes.LENGTH - width))) for k, v in b.items()}
    model = learned.ReasonerModel(DecoderSpec(embed=32, layers=2, heads=4, kv_heads=2, head_dim=8, mlp=64),
                                  rngs=nnx.Rngs(0))
    loss = nnx.jit(training.loss_fn)
    cut, padded = (float(loss(model, {k: jnp.asarray(v) for k, v in x.items()})) for x in (b, full))
    assert cut == pytest.approx(padded, rel=1e-6)


@pytest.fixture(scope="module")
def trained():
    spec = DecoderSpec(embed=64, layers=2, heads=4, kv_heads=2, head_dim=16, mlp=256)
    return training.train(spec, steps=300, batch_size=32, lr=3e-3, seed=0, search_share=0.0)  # one call each


def test_learns_to_call_tools_and_answer(trained):
    graphdef, params, losses = trained
    assert np.mean(losses[-20:]) < 0.25 * np.mean(losses[:20])
    reasoner = learned.LearnedReasoner(graphdef, params)
    rng = np.random.default_rng(99)  # questions the training stream (seed 0) did not draw in this order
    drawn = [episodes.make_episode(rng, search_share=0.0) for _ in range(24)]
    calls = [reasoner.call_for(e.question) == e.calls[0] for e in drawn]
    assert np.mean(calls) >= 0.75, calls  # chance is nil: the call must be copied byte for byte
    e = next(x for x in drawn if x.tool == "calculator")
    got = reasoner.answer(Request(e.question, "", episodes.episode_time(e)), threading.Event())
    assert got.ok and got.trace == ({"call": e.calls[0], "result": e.results[0]},)  # it called the tool, read it
    assert got.text.startswith(e.answer.split(" is ")[0] + " is "), got.text  # and answers in the right form
    assert got.surface is None  # a product shows nothing
    u = next(x for x in drawn if x.tool == "units")
    got = reasoner.answer(Request(u.question, "", episodes.episode_time(u)), threading.Event())
    rows = [c for c in got.surface["components"] if c["component"] == "Table"][0]["rows"]  # it wrote a table line
    assert [r[0] for r in rows] == ["from", "to"] and rows[1][1].split()[-1] == u.results[0].split()[-1], rows


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


def _copy_task(rng: np.random.Generator, n: int) -> dict:
    """`<delegate>` lowercase filler, a capitalised random name at a random place, filler `<delegate_end><call>`
    the name `<call_end>`: writing it means finding the name and copying bytes never seen together before."""
    letters = list("abcdefghijklmnopqrstuvwxyz")
    rows = []
    for _ in range(n):
        name = "".join(rng.choice(letters, 6)).capitalize()
        before = int(rng.integers(0, 20))
        asked = "".join(rng.choice(letters + [" "], before)) + f" {name} " + "".join(rng.choice(letters, 20 - before))
        rows.append(text.wrap(text.Special.DELEGATE, asked, text.Special.DELEGATE_END) + [int(text.Special.CALL)] +
                    text.encode(name) + [int(text.Special.CALL_END)])
    tokens = np.asarray(rows, np.int32)
    target = np.zeros_like(tokens, bool)
    target[:, -7:] = True
    return {"tokens": tokens, "target": target}


def test_copying_pointer_is_causal_normalised_saved_and_learns_to_copy_unseen_names(tmp_path):
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    spec = DecoderSpec(embed=32, layers=2, heads=4, kv_heads=2, head_dim=8, mlp=64)
    model = learned.ReasonerModel(spec, copy=True, rngs=nnx.Rngs(0))
    b = _copy_task(np.random.default_rng(0), 2)["tokens"]
    out = model(jnp.asarray(b))
    np.testing.assert_allclose(jax.nn.logsumexp(out, -1), 0.0, atol=1e-5)  # log-probabilities
    changed = model(jnp.asarray(b).at[:, 5].set(40))
    np.testing.assert_array_equal(out[:, :5], changed[:, :5])  # a position reads no later token
    learned.save(tmp_path / "r", spec, nnx.split(model)[1], copy=True)
    loaded = learned.load(tmp_path / "r")
    np.testing.assert_allclose(loaded._logits(loaded.params, jnp.asarray(b)), out, atol=1e-5)  # the pointer too

    def exact_copies(copy: bool) -> float:
        graphdef, params = nnx.split(learned.ReasonerModel(spec, copy=copy, rngs=nnx.Rngs(0)))
        tx = optax.adam(3e-3)
        opt, rng = tx.init(params), np.random.default_rng(1)

        @jax.jit
        def step(params, opt, batch):
            loss, grads = jax.value_and_grad(lambda p: training.loss_fn(nnx.merge(graphdef, p), batch))(params)
            updates, opt = tx.update(grads, opt, params)
            return optax.apply_updates(params, updates), opt

        for _ in range(150):
            params, opt = step(params, opt, _copy_task(rng, 32))
        held = _copy_task(np.random.default_rng(2), 64)["tokens"]  # names the stream never drew
        tokens = held.copy()
        for i in range(held.shape[1] - 7, held.shape[1]):  # greedy, free-running
            tokens[:, i] = np.argmax(np.asarray(nnx.merge(graphdef, params)(jnp.asarray(tokens)))[:, i - 1], -1)
        return float(np.mean((tokens[:, -7:] == held[:, -7:]).all(-1)))

    with_pointer, without = exact_copies(True), exact_copies(False)
    assert with_pointer >= 0.9 and with_pointer > without + 0.3, (with_pointer, without)
