#!/usr/bin/env bash
# phase8 on an H200: a larger training run with the fused kernels (resolvent diagonal, scattering-aware
# block-sparse attention, hyperbolic routing), then the same run with the PyTorch references
# (BKDSL_KERNELS=reference) for the tokens/s ratio. Summary JSON and the curve land in $OUT.
#
#   OUT=/tmp/out bash bench/gpu_phase8.sh
#   STEPS=200 REF_STEPS=100 MAX_BYTES=2000000 OUT=/tmp/out bash bench/gpu_phase8.sh   # tokens/s only (≈ 3 min)
#
# The machine has torch + triton but not every bkdsl dependency: bench/gpu_setup.sh installs the
# carried wheels (.whl/) and bkdsl itself.
set -euo pipefail
source "$(dirname "$0")/gpu_setup.sh"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv || true
MODEL=${MODEL:-'phase8(d = 256, layers = 4, heads = 8, experts = 8, blk = 64, tau = 3.0)'}
COMMON=(--device cuda --quiet --set train.batch=32 --set data.seq_len=512 --set "train.model=$MODEL"
        --set "train.schedule=cosine(warmup_steps = 50)")
# STEPS (2000) over ~4.5 MB of text (≈ 275 steps an epoch, validation after each) with the kernels.
python3 -m bkdsl train specs/phase8.bk "${COMMON[@]}" --set data.max_bytes=${MAX_BYTES:-5000000} --set train.steps=${STEPS:-2000} \
  --out /tmp/p8-kernels
# The same model and data with the references for REF_STEPS (150) steps: tokens/s only. Both rates leave
# out warm-up steps (the first at each batch size: compilation), reported as warmup_s.
BKDSL_KERNELS=reference python3 -m bkdsl train specs/phase8.bk "${COMMON[@]}" --set data.max_bytes=${MAX_BYTES:-5000000} \
  --set train.steps=${REF_STEPS:-150} --out /tmp/p8-reference
python3 bench/phase8_summary.py /tmp/p8-kernels /tmp/p8-reference --model "$MODEL" --out "$OUT"
cp /tmp/p8-kernels/metrics.jsonl "$OUT/phase8-h200-metrics.jsonl"
