#!/usr/bin/env bash
# Scattering attention on the GPU (H200): GPU-size correctness of forward and gradients against the
# reference, then the benchmark against FlexAttention and SDPA (bench/scattering_attention.py).
#
#   bash bench/gpu_k2.sh            # writes bench/results/<date>-scattering_attention.json
#   OUT=/some/dir bash bench/gpu_k2.sh
#   ONLY=variants OUT=/some/dir bash bench/gpu_k2.sh   # just the launch-variant sweep (issue #8):
#       <date>-scattering_attention-variants.json, stops at VARIANTS_BUDGET_S seconds of
#       its own wall time (default 110) and is killed at VARIANTS_BUDGET_S + 25; VARIANTS_ARGS (e.g. --only-causal)
#       go to it.
#
# Needs only torch + triton: bkdsl need not be installed. The files the benchmark imports are
# staged as a minimal `bkdsl` package (kernels/ installs as bkdsl.kernels), so the rest of the tree and
# its dependencies (lark, pint, geoopt, ...) are not needed on the GPU machine.
set -euo pipefail
export PYTHONUNBUFFERED=1
unset TRITON_INTERPRET
OUT=${OUT:-bench/results}
mkdir -p "$OUT"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
STAGE=$(mktemp -d)
mkdir -p "$STAGE/bkdsl/nn" "$STAGE/bkdsl/kernels"
touch "$STAGE/bkdsl/__init__.py" "$STAGE/bkdsl/nn/__init__.py"
cp "$ROOT/bkdsl/diagnostics.py" "$STAGE/bkdsl/"
cp "$ROOT/bkdsl/nn/scattering_attention.py" "$STAGE/bkdsl/nn/"
# kernels/ installs as bkdsl.kernels: the whole tree (kernels/<op>/ packages, dispatch, tile tables)
cp -r "$ROOT/kernels/." "$STAGE/bkdsl/kernels/"
find "$STAGE/bkdsl/kernels" -name __pycache__ -prune -exec rm -rf {} +
export PYTHONPATH="$STAGE${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv || true
"$PY" -c 'import torch, triton; print("torch", torch.__version__, "triton", triton.__version__, torch.cuda.get_device_name())'
set -o pipefail
if [ "${ONLY:-}" = variants ]; then
  budget=${VARIANTS_BUDGET_S:-110}
  timeout "$((budget + 25))" "$PY" "$ROOT/bench/scattering_attention.py" --variants --budget-s "$budget" \
    --out "$OUT" ${VARIANTS_ARGS:-} "$@" 2>&1 | tee "$OUT/gpu_k2-variants.log"
else
  "$PY" "$ROOT/bench/scattering_attention.py" --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu_k2.log"
fi
