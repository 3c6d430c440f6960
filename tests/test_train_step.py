"""Training pieces in-process: optimizer, train step, held-out baselines, checkpoints, sharded equality."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import soundfile
from absl import logging

from experiments.configs import train as train_config
from interaction import sharding
from interaction.codecs import text
from interaction.data import pipeline, records
from interaction.models.model import ModelSpec
from interaction.train import checkpoint, heldout, optimizer, reporting, sample_session
from interaction.train import state as train_state
from interaction.train.step import make_train_step


@pytest.fixture(scope="module")
def smoke():
    return train_config.get_config("smoke")


@pytest.fixture(scope="module")
def batches(tiny_corpus, smoke):
    spec = ModelSpec.from_config(smoke.model)
    ds = pipeline.make_dataset(str(tiny_corpus / "train.array_record"), spec.layout,
                               window_turns=smoke.data.window_turns, batch_size=smoke.data.batch_size, seed=0)
    it = iter(ds)
    return [next(it) for _ in range(3)]


def _trainer(smoke, mesh, rules=sharding.DEFAULT_RULES, total_steps=10):
    spec = ModelSpec.from_config(smoke.model)
    tx = optimizer.make_optimizer(smoke.optim, total_steps)
    graphdef, state, shardings = train_state.create(spec, tx, mesh, rules, seed=0)
    return graphdef, tx, state, shardings


def _run(smoke, mesh, batches, rules=sharding.DEFAULT_RULES):
    graphdef, tx, state, shardings = _trainer(smoke, mesh, rules)
    glob = [sharding.global_batch(b, mesh, rules) for b in batches]
    step = make_train_step(graphdef, tx, optimizer.schedule(smoke.optim, 10), shardings,
                           jax.tree.map(lambda x: x.sharding, glob[0]), mesh, rules)
    losses = []
    for b in glob:
        state, metrics = step(state, b)
        losses.append({k: float(metrics[k]) for k in ("loss", "text_loss", "flow_loss", "balance_loss")})
    return state, losses


def test_schedule_warms_up_then_decays(smoke):
    c = smoke.optim.copy_and_resolve_references()
    c.warmup_steps, c.lr, c.final_lr_fraction = 10, 1.0, 0.1
    lr = optimizer.schedule(c, 110)
    assert float(lr(0)) == 0.0 and float(lr(5)) == pytest.approx(0.5)
    assert float(lr(10)) == pytest.approx(1.0)
    assert float(lr(60)) == pytest.approx(0.55, abs=1e-3)  # half way down the cosine to 0.1
    assert float(lr(110)) == pytest.approx(0.1)
    c.warmup_steps = 200
    with pytest.raises(ValueError, match="warmup_steps"):
        optimizer.schedule(c, 110)


def test_weight_decay_spares_vectors(smoke):
    c = smoke.optim.copy_and_resolve_references()
    c.lr, c.weight_decay, c.grad_clip = 0.1, 0.5, 1.0
    c.warmup_steps = 0
    tx = optimizer.make_optimizer(c, 10)
    params = {"matrix": jnp.ones((2, 2)), "scale": jnp.ones(2)}
    updates, _ = tx.update(jax.tree.map(jnp.zeros_like, params), tx.init(params), params)
    assert float(jnp.abs(updates["matrix"]).max()) > 0  # decayed with zero gradient
    assert float(jnp.abs(updates["scale"]).max()) == 0.0


def test_gaussian_flow_baseline_matches_monte_carlo():
    """The closed form equals the error of the exact posterior velocity, estimated by sampling."""
    rng = np.random.default_rng(0)
    var, mean, n = 0.3, 0.7, 400_000
    t = rng.uniform(size=n)
    x0, x1 = rng.normal(size=n), mean + math.sqrt(var) * rng.normal(size=n)
    xt = (1 - t) * x0 + t * x1
    cov = t * var - (1 - t)
    predicted = (mean - 0.0) + cov / ((1 - t) ** 2 + t**2 * var) * (xt - t * mean)  # E[x1 - x0 | x_t]
    mc = float(np.mean((predicted - (x1 - x0)) ** 2))
    assert heldout.gaussian_flow_loss(np.array([var])) == pytest.approx(mc, rel=0.01)
    assert heldout.gaussian_flow_loss(np.array([0.0])) == pytest.approx(0.0, abs=1e-9)  # a known frame: no error


def test_summarize_baselines():
    counts = np.zeros(text.VOCAB_SIZE)
    counts[text.Special.PAD], counts[20] = 75, 25
    total = {"text_ce": 30.0, "text_tokens": 100.0, "text_correct": 80.0, "nonpad_tokens": 25.0,
             "nonpad_correct": 5.0, "label_counts": counts, "flow": 10.0, "frames": 20.0, "frame_se": 2.0,
             "mel_sum": np.full(2, 20.0), "mel_sqsum": np.array([40.0, 20.0]),
             "listen_bce": 2.0, "blocks": 10.0, "listen_sum": np.array([5.0, 1.0]),
             "byte_ce": 40.0, "bytes": 20.0, "byte_correct": 5.0}
    s = heldout.summarize(total)
    assert s["byte_loss"] == pytest.approx(2.0) and s["byte_accuracy"] == pytest.approx(0.25)
    head_entropy = [-(y * math.log(y) + (1 - y) * math.log(1 - y)) for y in (0.5, 0.1)]
    assert s["listen_loss"] == pytest.approx(0.2)
    assert s["listen_loss_baseline"] == pytest.approx(np.mean(head_entropy))
    entropy = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert s["text_loss_baseline"] == pytest.approx(entropy)
    assert s["text_loss_ratio"] == pytest.approx(0.3 / entropy)
    assert s["text_accuracy_always_pad"] == pytest.approx(0.75)
    assert s["text_accuracy_non_pad"] == pytest.approx(0.2)
    assert s["frame_mse_baseline"] == pytest.approx(0.5)  # channel variances 1 and 0
    assert s["flow_loss_baseline"] == pytest.approx(heldout.gaussian_flow_loss(np.array([1.0, 0.0])))
    with pytest.raises(ValueError, match="no valid"):
        heldout.summarize(dict(total, text_tokens=0.0))


def test_non_finite_step_leaves_state_unchanged(smoke, batches):
    mesh = sharding.make_mesh({}, jax.devices()[:1])
    graphdef, tx, state, shardings = _trainer(smoke, mesh)
    before = jax.device_get(state)
    bad = dict(batches[0], model_mel=np.full_like(batches[0]["model_mel"], np.nan))
    glob = sharding.global_batch(bad, mesh)
    step = make_train_step(graphdef, tx, optimizer.schedule(smoke.optim, 10), shardings,
                           jax.tree.map(lambda x: x.sharding, glob), mesh, sharding.DEFAULT_RULES)
    state, metrics = step(state, glob)
    assert not bool(metrics["finite"]) and not np.isfinite(float(metrics["loss"]))
    for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(jax.device_get(state))):
        assert np.array_equal(a, b)


def test_eight_devices_match_one(smoke, batches):
    """data x fsdp x expert = 2 x 2 x 2: the same losses as one device, step after step."""
    assert jax.device_count() == 8
    _, one = _run(smoke, sharding.make_mesh({}, jax.devices()[:1]), batches)
    mesh = sharding.make_mesh({"data": 2, "fsdp": 2, "expert": 2})
    eight_state, eight = _run(smoke, mesh, batches)
    shard_shapes = {x.sharding.shard_shape(x.shape) != x.shape for x in jax.tree.leaves(eight_state.params)}
    assert True in shard_shapes  # some parameters really are split
    for a, b in zip(one, eight):
        for k in a:
            assert b[k] == pytest.approx(a[k], rel=2e-5, abs=1e-6), k
    assert eight[-1]["loss"] < eight[0]["loss"]


def test_checkpoints_fall_back_past_a_corrupt_latest(tmp_path, smoke, caplog):
    mesh = sharding.make_mesh({}, jax.devices()[:1])
    _, _, state, _ = _trainer(smoke, mesh)
    ckpts = checkpoint.Checkpoints(tmp_path, keep=3)
    for i in (1, 2, 3):
        state = state.replace(step=state.step + 1)
        ckpts.save(i, state, {"next_index": 10 * i})
    ckpts.wait()
    (tmp_path / "4.orbax-checkpoint-tmp-123").mkdir()  # a save killed half way: never taken for a checkpoint
    assert ckpts.steps() == [1, 2, 3]
    for f in (tmp_path / "3" / "state").rglob("*"):
        if f.is_file() and f.parent.name == "d":
            f.write_bytes(b"not an array")
    with caplog.at_level(logging.WARNING, logger="absl"):
        restored, data = ckpts.restore(train_state.abstract_like(state))
    assert int(restored.step) == 2 and data == {"next_index": 20}
    assert "checkpoint" in caplog.text and "/3 cannot be used" in caplog.text
    assert (tmp_path / "corrupt-3").is_dir() and ckpts.steps() == [1, 2]
    ckpts.save(3, restored, data)  # the step can be written again
    ckpts.close()


def test_reporter_writes_jsonl_and_trims_on_resume(tmp_path):
    r = reporting.Reporter(tmp_path, total_steps=10, start_step=0)
    for s in (1, 2, 3):
        r.write(s, "train", {"loss": 1.0 / s, "expert_load": np.array([0.25, 0.75])})
    r.close()
    rows = reporting.read_metrics(tmp_path, "train")
    assert [row["step"] for row in rows] == [1, 2, 3] and rows[0]["expert_load/1"] == 0.75
    reporting.Reporter(tmp_path, total_steps=10, start_step=2).close()  # resumed from a step-2 checkpoint
    assert [row["step"] for row in reporting.read_metrics(tmp_path)] == [1, 2]
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_sample_session_writes_stereo_audio_and_timeline(tmp_path, tiny_corpus, smoke):
    spec = ModelSpec.from_config(smoke.model)
    mesh = sharding.make_mesh({}, jax.devices()[:1])
    graphdef, _, state, _ = _trainer(smoke, mesh)
    conv = records.read(tiny_corpus / "eval.array_record", [0])[0]
    turns = 6
    inputs, real = sample_session.session_inputs(conv, spec.layout, turns)
    assert real == turns and inputs["user_audio"].shape[:2] == (1, turns)
    sampler = sample_session.make_sampler(graphdef, capacity_turns=turns, flow_steps=2, temperature=1.0)
    outputs = jax.device_get(sampler(jax.device_get(state.params), inputs, 0))
    out = sample_session.write(conv, outputs, real, spec.layout, tmp_path, "s")
    wave, rate = soundfile.read(out["wav"])
    assert rate == 16000 and wave.shape == ((turns + 1) * 3200, 2)
    assert np.abs(wave[:3200, 1]).max() == 0.0  # the model says nothing before its first output turn
    assert np.abs(wave[3200:, 1]).max() > 0.0
    assert out["png"].stat().st_size > 10_000 and out["image"].ndim == 3
