#!/usr/bin/env bash
# Trains on GKE through xpk: one container per host, the same command in each; on TPU slices JAX finds
# its peers by itself, on GPU node pools xpk sets the coordinator variables.
#
#   CLUSTER=my-cluster IMAGE=us-docker.pkg.dev/my-project/interaction:latest TPU_TYPE=v5litepod-32 \
#   WORKDIR=gs://my-bucket/runs/small bash launch/xpk.sh --config=experiments/configs/train.py:small
#
# IMAGE is this repository installed on a Python 3.12+ JAX image (plus espeak-ng for building corpora).
set -euo pipefail
: "${CLUSTER:?set CLUSTER}" "${IMAGE:?set IMAGE}" "${TPU_TYPE:?set TPU_TYPE}" "${WORKDIR:?set WORKDIR}"
xpk workload create \
  --cluster="$CLUSTER" \
  --workload="interaction-$(date +%Y%m%d-%H%M%S)" \
  --docker-image="$IMAGE" \
  --tpu-type="$TPU_TYPE" \
  --num-slices="${NUM_SLICES:-1}" \
  --command="python -m experiments.train --workdir=$WORKDIR $*"
