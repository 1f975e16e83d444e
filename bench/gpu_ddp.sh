#!/usr/bin/env bash
# Data-parallel scaling on 1, 2 and 4 H200s (torchrun, DDP over NCCL), steady state: bench/ddp_scaling.py
# runs each spec at the same per-GPU batch on every process count and reads the trainer's warm-up-free
# samples/s. Needs a machine with max(GPUS) GPUs (nvidia-h200-x4 for the default); NVLink multicast off.
#   GPUS=1,2,4 STEPS=300 bash bench/gpu_ddp.sh        (about 8 minutes on four H200s)
set -euo pipefail
source "$(dirname "$0")/gpu_setup.sh"
nvidia-smi --query-gpu=name --format=csv || true
GPUS=${GPUS:-1,2,4}
STEPS=${STEPS:-300}
DATE=$(date +%F)
# u236 MTL on generated data: a fixed per-GPU batch of 128 (the thesis' batch), bf16 + compile as in the throughput bench.
timeout 300 python3 bench/ddp_scaling.py --spec specs/u236_mtl.bk --gpus "$GPUS" --steps "$STEPS" --per-gpu-batch 128 \
  --set data.samples=4096 --set train.precision=bf16 --out "$OUT/$DATE-ddp_scaling-u236.json" || echo "u236 part failed or timed out"
# The language model: 32 sequences of 512 bytes per GPU.
SPEC=${LM_SPEC:-specs/phase8.bk}
timeout 240 python3 bench/ddp_scaling.py --spec "$SPEC" --gpus "$GPUS" --steps "$STEPS" --per-gpu-batch 32 --seq-len 512 \
  --set data.seq_len=512 --set data.max_bytes=8000000 --out "$OUT/$DATE-ddp_scaling-lm.json" || echo "LM part failed or timed out"
