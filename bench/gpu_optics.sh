#!/usr/bin/env bash
# Angular-spectrum propagation on the GPU (H200): the Gaussian-beam closed-form checks, then time per
# propagation at 1024² and 4096² for bkdsl's band-limited ASM and PADO's (bench/optics_asm.py).
#
#   bash bench/gpu_optics.sh                # writes $OUT/optics_asm-h200.json (OUT defaults to bench/results)
#
# Needs only torch (+ triton for do_bench): bkdsl/nn/optics.py is staged as a minimal `bkdsl` package.
# PADO is used when importable; to carry it, fetch its wheel beforehand where pip works:
#   pip download --no-deps pado-optics==1.0.1 -d .whl     (it imports numpy, scipy and matplotlib)
# Without it the JSON records why PADO was not timed. Bounded: the benchmark is killed after 150 s.
set -euo pipefail
export PYTHONUNBUFFERED=1
unset TRITON_INTERPRET
OUT=${OUT:-bench/results}
mkdir -p "$OUT"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
STAGE=$(mktemp -d)
mkdir -p "$STAGE/bkdsl/nn"
touch "$STAGE/bkdsl/__init__.py" "$STAGE/bkdsl/nn/__init__.py"
cp "$ROOT/bkdsl/nn/optics.py" "$STAGE/bkdsl/nn/"
if ls "$ROOT"/.whl/pado_optics-*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target "$STAGE" "$ROOT"/.whl/pado_optics-*.whl || true
fi
export PYTHONPATH="$STAGE${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv || true
"$PY" -c 'import torch, triton; print("torch", torch.__version__, "triton", triton.__version__, torch.cuda.get_device_name())'
cd "$STAGE"   # so that `bkdsl` resolves to the staged package, not the checkout
rc=0
timeout 150 "$PY" "$ROOT/bench/optics_asm.py" --device cuda --sizes 1024 4096 --out "$OUT/optics_asm-h200.json" 2>&1 \
  | tee "$OUT/gpu_optics.log" || rc=$?
echo "summary:"; grep -E "^(closed form|N = |wrote)" "$OUT/gpu_optics.log" || true
exit $rc
