"""Running the project's programs as users do: subprocesses on CPU under a timeout."""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_S = 420


def cpu_env(devices: int = 1) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1",
               XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
               JAX_COMPILATION_CACHE_DIR=str(Path.home() / ".cache" / "interaction-jax"),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="1")
    for name in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
        env.pop(name, None)
    return env


def train(workdir, corpus, *overrides) -> subprocess.CompletedProcess:
    """A smoke-config training run on `corpus`."""
    return run_module("experiments.train", "--config=experiments/configs/train.py:smoke", f"--workdir={workdir}",
                      f"--config.corpus_dir={corpus}", *overrides)


def succeeded(proc: subprocess.CompletedProcess) -> str:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


def run_module(module: str, *args) -> subprocess.CompletedProcess:
    """`python -m module args...` from the repository root."""
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=cpu_env(), capture_output=True,
                          text=True, timeout=TIMEOUT_S)
