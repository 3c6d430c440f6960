#!/usr/bin/env bash
# Trains on a Cloud TPU VM slice: every worker runs the same command; JAX finds its peers by itself.
#
#   TPU_NAME=my-v5e-32 ZONE=us-west4-a WORKDIR=gs://my-bucket/runs/small bash launch/tpu_vm.sh \
#       --config=experiments/configs/train.py:small --config.model.mesh.fsdp=8
#
# The first call copies this checkout to every worker and installs it (Python 3.12 or later, so the
# newer JAX line with TPU support). Checkpoints, metrics and the corpus go under WORKDIR, which must be
# storage every worker sees (a gs:// bucket, or a shared filesystem mount).
set -euo pipefail
: "${TPU_NAME:?set TPU_NAME}" "${ZONE:?set ZONE}" "${WORKDIR:?set WORKDIR}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
gcloud compute tpus tpu-vm scp --recurse --zone="$ZONE" --worker=all "$repo" "$TPU_NAME":~/interaction
gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE" --worker=all --command="
  set -e
  sudo apt-get install -y -qq espeak-ng
  cd ~/interaction && pip install -q -e . 'jax[tpu]'
  INTERACTION_DISTRIBUTED=1 python -m experiments.train --workdir='$WORKDIR' $*"
