#!/usr/bin/env bash
# The ²³⁶U multi-task model on the H200: throughput (bkdsl vs eager PyTorch), the physics engineer's
# generation-rate bench when present, then the comparison of thesis ch. 4 (MTL d_z = 1, 2, 3 and the
# energy, autoencoder and multipole baselines) on generated data.
#
#   bash bench/gpu_u236.sh                 # the real experiment (MODE=full)
#   MODE=smoke bash bench/gpu_u236.sh      # throughput + a small experiment (512 samples, 40 s per run)
#   MODE=bench bash bench/gpu_u236.sh      # throughput only
#   MODE=experiment bash bench/gpu_u236.sh # no throughput: the generator's rate on PROBE potentials
#                                          # (physics_gen.json), then the comparison with as many
#                                          # potentials as fit GEN_TARGET_S seconds (>= SAMPLES_MIN,
#                                          # <= SAMPLES_MAX) at the measured rate
#
# Environment: OUT (results folder, default bench/results), SAMPLES, RUN_S (wall-clock per run), JOBS
# (runs at once), BENCH_S / GEN_S / EXP_S (caps of the three stages). Missing packages (lark, pint,
# pydantic, geoopt, ...) are installed from .whl/ into /tmp/site when carried (see docs/u236.md).
set -uo pipefail
T_START=$(date +%s)
export PYTHONUNBUFFERED=1
MODE=${MODE:-full}
OUT=${OUT:-bench/results}
mkdir -p "$OUT"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY=${PYTHON:-python3}
if ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# kernels/ installs as bkdsl.kernels (pyproject); without an install, link it into this copy of the tree
"$PY" -c 'import bkdsl.kernels' 2>/dev/null || ln -sfn ../kernels bkdsl/kernels
export BKDSL_CACHE=${BKDSL_CACHE:-/tmp/bkdsl-cache}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv || true
"$PY" -c 'import torch, triton, lark, pint, pydantic, geoopt; print("torch", torch.__version__, "triton", triton.__version__, torch.cuda.get_device_name())' || exit 3
status=0
BENCH_ARGS=${BENCH_ARGS:-}
if [ "$MODE" = experiment ]; then
  GEN_BATCH=${GEN_BATCH:-1024}
  # SAMPLES given: no probe; the runs get what is left of CALL_S after generating at an assumed RATE
  [ -n "${SAMPLES:-}" ] || timeout "${GEN_S:-150}" "$PY" bench/physics_gen.py --device cuda --samples "${PROBE:-2048}" --batch "$GEN_BATCH" \
    --out "$OUT/physics_gen-cuda.json" 2>&1 | tail -30 | tee "$OUT/physics_gen.log"
  # plan the rest of the call (CALL_S seconds from the start): generation at the measured rate plus
  # 60 s of set-up, then the runs in parallel, which keep RUN_MIN_S: up to SAMPLES_MAX potentials, at least
  # SAMPLES_MIN where that fits, fewer (said in the JSON) where the rate does not allow it
  read SAMPLES RUN_S EXP_S < <("$PY" - "$OUT/physics_gen-cuda.json" <<PYEOF
import json, sys
try:
    r = float(json.load(open(sys.argv[1]))["samples_per_s"])
except Exception:
    r = float("${RATE:-30}")   # no probe: the given rate (default: the 2026-11-22 eager rate)
if "${SAMPLES:-}":
    n = int("${SAMPLES:-0}")
    left = ${CALL_S:-585} - ($(date +%s) - $T_START)
    print(n, max(int(left - (n / r + 60) - 25), 30), int(left - 5))
    sys.exit()
left = ${CALL_S:-585} - ($(date +%s) - $T_START)
n = max(${SAMPLES_MIN:-20000}, min(${SAMPLES_MAX:-40000}, int(r * ${GEN_TARGET_S:-200})))
while n > 2000 and left - (n / r + 60) - 25 < ${RUN_MIN_S:-200}:
    n -= 1000
run = int(left - (n / r + 60) - 25)
print(max(n // 1000 * 1000, 2000), max(run, 30), int(left - 5))
PYEOF
)
  echo "experiment: $SAMPLES potentials at batch $GEN_BATCH, $RUN_S s per run, stage cap $EXP_S s"
  timeout "$EXP_S" "$PY" bench/u236_experiment.py --samples "$SAMPLES" --time "$RUN_S" --jobs "${JOBS:-6}" \
    --gen-batch "$GEN_BATCH" --device cuda --precision bf16 ${EXP_ARGS:-} --out /tmp/u236_exp 2>&1 | tee "$OUT/u236_experiment.log" || status=1
  cp /tmp/u236_exp/u236_experiment.json /tmp/u236_exp/u236_experiment.md /tmp/u236_exp/u236_runs.tar.gz "$OUT/" 2>/dev/null || true
  exit $status
fi
timeout "${BENCH_S:-200}" "$PY" bench/u236_throughput.py --out "$OUT" $BENCH_ARGS 2>&1 | tee "$OUT/u236_throughput.log" || status=1
[ "$MODE" = bench ] && exit $status
if [ -f bench/physics_gen.py ]; then
  timeout "${GEN_S:-60}" "$PY" bench/physics_gen.py --device cuda 2>&1 | tail -40 | tee "$OUT/physics_gen.log" || true
  cp bench/results/*physics_gen*.json "$OUT/" 2>/dev/null || true
fi
if [ "$MODE" = smoke ]; then
  SAMPLES=${SAMPLES:-512}; RUN_S=${RUN_S:-40}; JOBS=${JOBS:-6}
else
  SAMPLES=${SAMPLES:-20000}; RUN_S=${RUN_S:-300}; JOBS=${JOBS:-6}
fi
timeout "${EXP_S:-480}" "$PY" bench/u236_experiment.py --samples "$SAMPLES" --time "$RUN_S" --jobs "$JOBS" --gen-budget "${GEN_BUDGET:-0}" --gen-batch "${GEN_BATCH:-0}" \
  --device cuda --precision bf16 ${EXP_ARGS:-} --out /tmp/u236_exp 2>&1 | tee "$OUT/u236_experiment.log" || status=1
cp /tmp/u236_exp/u236_experiment.json /tmp/u236_exp/u236_runs.tar.gz "$OUT/" 2>/dev/null || true
exit $status
