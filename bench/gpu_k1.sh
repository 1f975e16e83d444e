#!/usr/bin/env bash
# Resolvent diagonal and hyperbolic routing on the GPU (H200): correctness against the references,
# then the benchmarks (bench/resolvent.py, bench/hyperbolic_routing.py).
#
#   bash bench/gpu_k1.sh              # writes bench/results/<date>-resolvent.json, -hyperbolic_routing.json
#   OUT=/some/dir bash bench/gpu_k1.sh
#   ONLY=causal OUT=$OUT bash bench/gpu_k1.sh   # the causal resolvent scan vs its peers, < 4 min
#                                               # (bench/resolvent_causal.py → <date>-resolvent_causal.json)
#
# Needs torch + triton (+ geoopt, installed from .whl/ when the machine lacks it and the wheel was
# carried: pip download --no-deps geoopt==0.5.1 -d .whl). bkdsl need not be installed: the modules the
# benchmarks import are staged as a minimal `bkdsl` package (kernels/ installs as bkdsl.kernels).
set -euo pipefail
export PYTHONUNBUFFERED=1
unset TRITON_INTERPRET
OUT=${OUT:-bench/results}
mkdir -p "$OUT"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
STAGE=$(mktemp -d)
mkdir -p "$STAGE/bkdsl/nn" "$STAGE/bkdsl/kernels"
touch "$STAGE/bkdsl/__init__.py" "$STAGE/bkdsl/nn/__init__.py"
cp "$ROOT/bkdsl/diagnostics.py" "$STAGE/bkdsl/"
cp "$ROOT/bkdsl/nn/resolvent.py" "$ROOT/bkdsl/nn/poincare.py" "$ROOT/bkdsl/nn/hyperbolic_moe.py" "$STAGE/bkdsl/nn/"
# kernels/ installs as bkdsl.kernels: the whole tree (kernels/<op>/ packages and the dispatcher)
cp -r "$ROOT/kernels/." "$STAGE/bkdsl/kernels/"
find "$STAGE/bkdsl/kernels" -name __pycache__ -prune -exec rm -rf {} +
# geoopt is needed by the routing bench only (the resolvent benches import torch + triton alone)
case "${ONLY:-}" in causal|resolvent|layouts) ;; *)
  if ! "$PY" -c 'import geoopt' 2>/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$STAGE/site" "$ROOT"/.whl/geoopt-*.whl
    export PYTHONPATH="$STAGE/site"
  fi ;;
esac
export PYTHONPATH="$STAGE${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv || true
"$PY" -c 'import torch, triton; print("torch", torch.__version__, "triton", triton.__version__, torch.cuda.get_device_name())'
# Each benchmark gets a wall-clock cap (RESOLVENT_S, ROUTING_S seconds) so one cannot starve the other;
# each writes its JSON as soon as its main timings are in.
status=0
# RESOLVENT_FIRST=1 runs the resolvent bench first; RESOLVENT_ARGS (e.g. "--budget 200") go to it.
# ROUTING_ARGS (e.g. "--budget 140") go to the routing bench; ONLY=routing / ONLY=resolvent runs just that one.
routing() { timeout "${ROUTING_S:-200}" "$PY" "$ROOT/bench/hyperbolic_routing.py" --out "$OUT" ${ROUTING_ARGS:-} 2>&1 | tee "$OUT/gpu_k1-routing.log" || status=1; }
resolvent() { timeout "${RESOLVENT_S:-280}" "$PY" "$ROOT/bench/resolvent.py" --out "$OUT" ${RESOLVENT_ARGS:-} 2>&1 | tee "$OUT/gpu_k1-resolvent.log" || status=1; }
causal() { timeout "${CAUSAL_S:-230}" "$PY" "$ROOT/bench/resolvent_causal.py" --out "$OUT" ${CAUSAL_ARGS:-} 2>&1 | tee "$OUT/gpu_k1-resolvent_causal.log" || status=1; }
layouts() { timeout "${LAYOUTS_S:-200}" "$PY" "$ROOT/bench/resolvent_layouts.py" --out "$OUT" ${LAYOUTS_ARGS:-} 2>&1 | tee "$OUT/gpu_k1-resolvent_layouts.log" || status=1; }
# ONLY=layouts runs just the segment-layout sweep of the resolvent kernels (bench/resolvent_layouts.py);
# LAYOUTS_ARGS (e.g. "--budget 120 --bwd --layouts 4,256,1 4,256,1,tile") go to it.
# ONLY=causal runs just the causal resolvent bench (CAUSAL_ARGS, e.g. "--budget 180", go to it).
if [ "${ONLY:-}" = layouts ]; then layouts
elif [ "${ONLY:-}" = causal ]; then causal
elif [ "${ONLY:-}" = routing ]; then routing
elif [ "${ONLY:-}" = resolvent ]; then resolvent
elif [ "${RESOLVENT_FIRST:-0}" = 1 ]; then resolvent; routing; else routing; resolvent; fi
exit $status
