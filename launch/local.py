r"""Starts N processes of one command on this machine as a real multi-process JAX job (CPU collectives, gloo).

  python launch/local.py --num_processes=2 -- python -m experiments.train \
      --config=experiments/configs/train.py:smoke --workdir=/tmp/two_process

Each process gets `JAX_COORDINATOR_ADDRESS` (a free local port), `JAX_NUM_PROCESSES`, `JAX_PROCESS_ID`,
`JAX_PLATFORMS=cpu` and `--devices_per_process` host CPU devices; `experiments.train` starts
`jax.distributed` from those. Output lines are prefixed with the process index. If one process fails
the others are stopped; SIGTERM / Ctrl-C are passed on to all (so a training job saves and exits). The
exit status is the first non-zero one, or 0.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time

GRACE_S = 30.0  # how long the others get to exit after one process fails


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pipe(stream, prefix: str) -> None:
    for line in iter(stream.readline, ""):
        sys.stdout.write(prefix + line)
        sys.stdout.flush()


def launch(command: list[str], num_processes: int, devices_per_process: int = 1, timeout: float | None = None) -> int:
    if num_processes < 1 or devices_per_process < 1:
        raise ValueError("num_processes and devices_per_process must be at least 1.")
    if not command:
        raise ValueError("no command given (put it after --).")
    address = f"127.0.0.1:{free_port()}"
    procs, pipes = [], []
    for i in range(num_processes):
        env = dict(os.environ, JAX_COORDINATOR_ADDRESS=address, JAX_NUM_PROCESSES=str(num_processes),
                   JAX_PROCESS_ID=str(i), JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1")
        flags = [f for f in env.get("XLA_FLAGS", "").split()
                 if not f.startswith("--xla_force_host_platform_device_count")]
        env["XLA_FLAGS"] = " ".join(flags + [f"--xla_force_host_platform_device_count={devices_per_process}"])
        p = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(p)
        pipes.append(threading.Thread(target=_pipe, args=(p.stdout, f"[{i}] "), daemon=True))
        pipes[-1].start()

    def forward(signum, frame):
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    deadline = None if timeout is None else time.monotonic() + timeout
    status, failed_at = 0, None
    try:
        while any(p.poll() is None for p in procs):
            failed = [p.returncode for p in procs if p.returncode not in (None, 0)]
            if failed and not status:
                status, failed_at = failed[0], time.monotonic()
                print(f"a process exited with status {status}; stopping the others", file=sys.stderr)
                forward(signal.SIGTERM, None)
            if failed_at is not None and time.monotonic() > failed_at + GRACE_S:
                for p in procs:  # a peer blocked in a collective with the dead process never sees SIGTERM
                    p.kill()
            if deadline is not None and time.monotonic() > deadline:
                print(f"timed out after {timeout} s; killing all processes", file=sys.stderr)
                for p in procs:
                    p.kill()
                status = status or 124
            time.sleep(0.1)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for t in pipes:
            t.join(timeout=5)
    return status or next((p.returncode for p in procs if p.returncode), 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_processes", type=int, default=2)
    parser.add_argument("--devices_per_process", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=None, help="kill everything after this many seconds")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command every process runs")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    return launch(command, args.num_processes, args.devices_per_process, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
