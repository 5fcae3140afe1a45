#!/usr/bin/env bash
# Multi-node MAE pretraining with torchrun (models/train.py: DDP, NCCL on GPUs, gloo on CPUs). Run the same
# command on every node, with the address of the node that hosts the rendezvous (any one of them):
#
#   NNODES=4 MASTER_ADDR=10.0.0.1 deploy/torchrun/pretrain.sh            # on each of the 4 nodes
#   NNODES=1 deploy/torchrun/pretrain.sh --steps 100                      # one node, every GPU
#
# Arguments after the script go to `python -m models.train` (--steps N, --device cpu, --exclude-patients FILE:
# always pass the held-out patients, `brainfm held-out-patients data/clinical_tables --out held_out.txt`). docs/OPERATIONS.md,
# "Multi-node training"; tests/ops/test_deploy.py runs it as two CPU "nodes" on one machine.
set -euo pipefail
NNODES="${NNODES:-1}"                    # machines taking part
NPROC_PER_NODE="${NPROC_PER_NODE:-gpu}"  # worker processes per machine; "gpu": one per visible GPU
MASTER_ADDR="${MASTER_ADDR:-127.0.0.1}"  # the rendezvous host, reachable from every node
MASTER_PORT="${MASTER_PORT:-29500}"
RDZV_ID="${RDZV_ID:-brainfm-pretrain}"   # the same on every node of one training, new for the next
PROFILE="${PROFILE:-full}"
DATA="${DATA:-data/normalized_slices}"   # the same path on every node (shared volume, or `dvc pull` first)
OUT="${OUT:-outputs/mae}"                # rank 0 writes the checkpoint; a rerun resumes from it
exec "${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="$NNODES" --nproc-per-node="$NPROC_PER_NODE" \
    --rdzv-backend=c10d --rdzv-endpoint="$MASTER_ADDR:$MASTER_PORT" --rdzv-id="$RDZV_ID" \
    --max-restarts=3 \
    -m models.train --profile "$PROFILE" --data "$DATA" --out "$OUT" "$@"
