#!/usr/bin/env bash
# The u236 half of the superposition bench (issue 16 item 4), which the shared 2-core CPU could not do:
# generating even 384 ²³⁶U densities did not finish there in 35 minutes. On the H200 machine the Skyrme
# generator runs on the GPU (a few minutes for 2000 potentials); the optimizers then train
# u236_multipole(hidden = 32) on the host CPU, one thread, with the same equal-CPU-time protocol as the
# committed tiny_regression numbers (bench/superposition.py's docstring). At most ~16 minutes: generation
# capped at GEN_S (default 420 s), the comparison at BENCH_S (default 480 s; 4 optimizers × 3 seeds ×
# BUDGET_S = 10 s of CPU each, plus evaluation).
#
#   OUT=$OUT bash bench/gpu_superposition_u236.sh     # writes $OUT/2026-12-03-superposition-u236.json
#
# Environment: OUT, SAMPLES (potentials drawn, default 2000), BUDGET_S, GEN_S, BENCH_S.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source bench/gpu_setup.sh
export OMP_NUM_THREADS=1 BKDSL_CACHE=${BKDSL_CACHE:-/tmp/bkdsl-cache}
SAMPLES=${SAMPLES:-2000}
nvidia-smi --query-gpu=name --format=csv,noheader || true
python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else "no cuda")'
# 1. the dataset, generated on the GPU into the cache the bench reads
timeout "${GEN_S:-420}" python3 - "$SAMPLES" <<'PY'
import sys, time
from bkdsl.api import compile_file
from bkdsl.train.plan import data_plan
t = time.time()
c = compile_file("specs/u236_multipole.bk", overrides={"data.samples": sys.argv[1]})
d = c.data_block(c.train_block().entries["data"].value)
ds = data_plan(d, 0, "specs").dataset
print(f"generated {len(ds)} samples in {time.time() - t:.0f} s")
PY
rc=$?
[ $rc -eq 0 ] || { echo "== generation failed or timed out (exit $rc)"; exit $rc; }
# 2. the comparison (CPU, one thread, equal optimizer CPU time)
timeout "${BENCH_S:-480}" python3 bench/superposition.py --tasks u236_multipole --u236-samples "$SAMPLES" \
  --budget "${BUDGET_S:-10}" --seeds 0 1 2 --contenders adam pi2 natural_gradient ensemble_distill \
  --out "$OUT/2026-12-03-superposition-u236.json" 2>&1 | tee "$OUT/gpu_superposition_u236.log"
rc=${PIPESTATUS[0]}
echo "== gpu_superposition_u236.sh: exit $rc"
grep "mean val" "$OUT/gpu_superposition_u236.log" || echo "no summary (killed at the time limit?)"
exit $rc
