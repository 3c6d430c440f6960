"""Test setup: 8 host CPU devices (set before JAX starts), a persistent compile cache, shared corpora.

The suite runs in two pytest-xdist workers, one test file to a worker; the corpus and the smoke run are
built once per run and shared by the workers (`shared_dir`)."""
import contextlib
import fcntl
import os
import shutil

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


@contextlib.contextmanager
def shared_dir(tmp_path_factory, name: str):
    """Yields (path, build): `build` is true for the one worker of this run that must fill `path`; the others
    wait on a lock until it has, and get the same path with `build` false."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's folder, above each worker's own
    path, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            build = not done.exists()
            try:
                yield path, build
            except BaseException:
                if build:
                    shutil.rmtree(path, ignore_errors=True)  # the next worker builds it afresh
                raise
            if build:
                done.touch()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory, tiny_corpus_config):
    from interaction.data import corpus

    with shared_dir(tmp_path_factory, "tiny_corpus") as (workdir, build):
        if build:
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

    with shared_dir(tmp_path_factory, "smoke_run") as (workdir, build):
        if build:
            out = succeeded(train(workdir, tiny_corpus, "--config.keep_checkpoints=1", "--config.keep_every=4"))
            assert "done: 6 steps" in out
    return workdir
