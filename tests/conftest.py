"""Test setup: 8 host CPU devices (set before JAX starts), a persistent compile cache, shared corpora."""
import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_compilation_cache_dir", os.path.join(os.path.expanduser("~"), ".cache", "interaction-jax"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


@pytest.fixture(scope="session")
def tiny_corpus_config():
    """A small corpus (two conversations of every kind, one held out) for data tests."""
    from experiments.configs import corpus as corpus_config

    cfg = corpus_config.get_config("tiny")
    cfg.num_train, cfg.num_eval = 22, 11
    cfg.workers = 1
    return cfg


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory, tiny_corpus_config):
    from interaction.data import corpus

    workdir = tmp_path_factory.mktemp("corpus") / "tiny"
    corpus.write(tiny_corpus_config, workdir, progress=False)
    return workdir


@pytest.fixture(scope="session")
def batch(tiny_corpus):
    """Two 6-micro-turn training windows of the tiny corpus in the default layout, as JAX arrays."""
    import jax.numpy as jnp

    from interaction.data import layout, pipeline

    ds = pipeline.make_dataset(str(tiny_corpus / "train.array_record"), layout.MicroTurnLayout(), window_turns=6,
                               batch_size=2, seed=0)
    return {k: jnp.asarray(v) for k, v in next(iter(ds)).items()}


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, tiny_corpus):
    """The workdir of an uninterrupted smoke-config training run on the tiny corpus: 6 steps, a checkpoint
    every 2 of which the newest is kept and every 4th (so it holds steps 4 and 6), and config.json.
    Tests may add files to it (a benchmark report) but must not change its checkpoints or metrics."""
    from programs import succeeded, train

    workdir = tmp_path_factory.mktemp("smoke_run")
    out = succeeded(train(workdir, tiny_corpus, "--config.keep_checkpoints=1", "--config.keep_every=4"))
    assert "done: 6 steps" in out
    return workdir
