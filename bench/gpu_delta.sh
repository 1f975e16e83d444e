#!/usr/bin/env bash
# The chunked Triton delta rule on the GPU (H200) against flash-linear-attention's chunk_delta_rule
# (issue #20 item 2): bench/delta_rule.py checks ours and fla against one float64 truth (forward and
# gradients), then times ours, fla and the PyTorch chunked reference (fwd, fwd+bwd; bf16, fp32) in one
# process, with the HBM/matmul floor. About 3.5 minutes: the bench stops starting parts at
# DELTA_BUDGET_S (default 170 s) and is killed at DELTA_BUDGET_S + 45; its JSON is written after every part.
#
# fla is a bench-only peer, carried as a wheel (the H200 image has einops, torch, triton). Once, where
# pip works, in the repository root:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl fla-core==0.6.0
# then run with `.whl` in the device call's carry:
#   OUT=$OUT bash bench/gpu_delta.sh      # writes $OUT/<date>-delta_rule.json and $OUT/gpu_delta.log
#
# Needs only torch + triton (+ the fla wheel): the files the benchmark imports are staged as a minimal
# `bkdsl` package (kernels/ installs as bkdsl.kernels), so bkdsl's other dependencies are not needed.
set -euo pipefail
export PYTHONUNBUFFERED=1
unset TRITON_INTERPRET
OUT=${OUT:-bench/results}
mkdir -p "$OUT"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
SITE=$(mktemp -d)
if ls "$ROOT"/.whl/fla_core-*.whl >/dev/null 2>&1; then
  timeout 60 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" \
    "$ROOT"/.whl/fla_core-*.whl || echo "fla wheel did not install: the bench runs without the peer"
else
  echo "no .whl/fla_core-*.whl: the bench runs without the fla peer (see this file's header)"
fi
STAGE=$(mktemp -d)
mkdir -p "$STAGE/bkdsl/nn" "$STAGE/bkdsl/kernels"
touch "$STAGE/bkdsl/__init__.py" "$STAGE/bkdsl/nn/__init__.py" "$STAGE/bkdsl/kernels/__init__.py"
cp "$ROOT/bkdsl/nn/fast_weights.py" "$STAGE/bkdsl/nn/"
cp "$ROOT/kernels/dispatch.py" "$STAGE/bkdsl/kernels/"
cp -r "$ROOT/kernels/delta_rule" "$STAGE/bkdsl/kernels/"
export PYTHONPATH="$STAGE:$SITE${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv || true
"$PY" -c 'import torch, triton; print("torch", torch.__version__, "triton", triton.__version__, torch.cuda.get_device_name())' || true
budget=${DELTA_BUDGET_S:-170}
rc=0
timeout "$((budget + 45))" "$PY" "$ROOT/bench/delta_rule.py" --out "$OUT" --budget-s "$budget" "$@" 2>&1 \
  | tee "$OUT/gpu_delta.log" || rc=$?
echo "== gpu_delta.sh: exit $rc; JSON: $(ls "$OUT"/*-delta_rule.json 2>/dev/null || echo none)"
grep '^SUMMARY' "$OUT/gpu_delta.log" || echo "no SUMMARY line (killed at the time limit? the JSON holds the parts done)"
exit $rc
