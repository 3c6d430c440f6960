"""Multi-process plumbing: starting `jax.distributed` when asked, and agreeing on a stop.

`jax.distributed` is initialised only when the environment describes a multi-process job:
- `JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES` and `JAX_PROCESS_ID` set (`launch/local.py` sets them;
  so can any scheduler), or
- `INTERACTION_DISTRIBUTED=1` (`launch/tpu_vm.sh` sets it), a multi-task Slurm step, or a GKE TPU
  slice of several hosts: JAX then detects the cluster itself.
A single process never starts the coordination service. On CPU the collectives go through gloo.
"""
from __future__ import annotations

import os
import signal

import jax
import numpy as np
from jax.experimental import multihost_utils


def initialize_from_environment() -> bool:
    """Starts `jax.distributed` if the environment asks for it; returns whether it did."""
    env = os.environ
    if env.get("JAX_COORDINATOR_ADDRESS"):
        missing = [v for v in ("JAX_NUM_PROCESSES", "JAX_PROCESS_ID") if not env.get(v)]
        if missing:
            raise RuntimeError(f"JAX_COORDINATOR_ADDRESS is set but {missing} are not; set all three "
                               "(launch/local.py does) or none.")
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(env["JAX_COORDINATOR_ADDRESS"], int(env["JAX_NUM_PROCESSES"]),
                                   int(env["JAX_PROCESS_ID"]),
                                   initialization_timeout=int(env.get("JAX_INITIALIZATION_TIMEOUT", "300")))
        return True
    asked = env.get("INTERACTION_DISTRIBUTED") == "1"
    slurm = int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_STEP_ID" in env
    gke_tpu = "," in env.get("TPU_WORKER_HOSTNAMES", "")
    if asked or slurm or gke_tpu:
        jax.distributed.initialize()
        return True
    return False


class StopRequest:
    """SIGTERM / SIGINT are recorded instead of ending the process; the loop saves and exits at a step boundary.

    A second SIGINT (Ctrl-C twice) ends the process at once. In a multi-process job the processes agree
    (any one signalled stops them all at the same step).
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.received: str | None = None
        self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}

    def _handle(self, signum, frame):
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name

    def agreed(self) -> bool:
        """Whether any process has been asked to stop (a collective when there are several processes)."""
        if jax.process_count() == 1:
            return self.received is not None
        flags = multihost_utils.process_allgather(np.int32(self.received is not None))
        if self.received is None and np.any(flags):
            self.received = "a stop signal on another process"
        return bool(np.any(flags))

    def release(self) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
