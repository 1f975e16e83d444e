#!/usr/bin/env bash
# phase8 against the plain GPT baseline on one H200, in one call of at most ~9.5 minutes (python
# capped at 540 s, its parts planned to end by 480 s, plus ~20 s of set-up)
# (bench/phase8_vs_gpt.py: equal steps, equal wall-clock, the τ sweep against random and sliding-window
# pruning, ablations, MoE load and centroid travel). JSON, PNG and the log land in $OUT.
#
#   OUT=/tmp/out bash bench/gpu_phase8_vs_gpt.sh
#   BUDGET_S=150 ABLATION_S=30 DEADLINE_S=900 TIMEOUT_S=960 bash bench/gpu_phase8_vs_gpt.sh   # longer, if the call allows
#
# The script skips (and records in parts_skipped) any part that would not end before DEADLINE_S, and
# rewrites its JSON after every part, so the outer timeout keeps what was done.
#
# On a CPU, to test the driver itself (≈ 4 min on 2 cores):
#   SETUP=0 PY=.venv/bin/python TINY=1 OUT=/tmp/p8 bash bench/gpu_phase8_vs_gpt.sh
set -euo pipefail
PY=${PY:-python3}
if [ "${SETUP:-1}" = 1 ]; then
  source "$(dirname "$0")/gpu_setup.sh"
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv || true
fi
OUT=${OUT:-bench/results}
mkdir -p "$OUT"
export BKDSL_CACHE=${BKDSL_CACHE:-/tmp/bkdsl-cache}
timeout "${TIMEOUT_S:-540}" "$PY" bench/phase8_vs_gpt.py --out "$OUT" --steps "${STEPS:-200}" \
  --budget-s "${BUDGET_S:-90}" --ablation-s "${ABLATION_S:-15}" --deadline-s "${DEADLINE_S:-480}" ${TINY:+--tiny} 2>&1 | tee "$OUT/phase8_vs_gpt.log" || true
"$PY" - "$OUT/phase8_vs_gpt.json" <<'PY' || true
import json, sys
r = json.load(open(sys.argv[1]))
print("params", r.get("params"), "| skipped", r.get("parts_skipped"))
for part in ("equal_steps", "equal_time", "ablations"):
    for k, v in r.get(part, {}).items():
        if isinstance(v, dict):
            print(f"{part:12s} {k:26s} steps {v['steps']:6d}  tok/s {v['tokens_per_s']:10.0f}  "
                  f"test bpb {v['test_bpb']:.4f}  peak GiB {v['peak_memory_gib']}")
for row in r.get("tau_sweep", {}).get("rows", []):
    print("tau %.4g: physics skip %.3f bpb %.4f | random %.4f | window skip %.3f bpb %.4f" % (
        row["tau"], row["physics"]["skipped"], row["physics"]["test_bpb"], row["random"]["test_bpb"],
        row["window"]["skipped"], row["window"]["test_bpb"]))
print("summary", r.get("summary"))
PY
