#!/usr/bin/env bash
# The main job: install, build the tiny corpus and train the tiny model on it, then run the duplex benchmark.
# Flags given to this script go to the trainer, e.g. `bash main.sh --config.total_steps=100`.
set -euo pipefail
cd "$(dirname "$0")"
bash install.sh
python -m experiments.train --workdir=workdir/tiny "$@"
python -m experiments.evaluate --workdir=workdir/tiny
