#!/usr/bin/env bash
# The batched axial Kohn-Sham HF+BCS (thesis ch. 3, 24Mg) on the H200: correctness of the device batch
# against the one-at-a-time CPU solve, then samples/s for growing batches (bench/hf_throughput.py), then,
# when time is left, a thesis-style generation of SHO and RND data sets for the ch. 3 specs
# (bench/hf_mg24_ofedf.py --generate-only), written to $OUT as safetensors + JSON.
#
#   bash bench/gpu_hf.sh                   # about 300 s in all (each part capped with timeout)
#   GEN_SAMPLES=4096 bash bench/gpu_hf.sh  # fields per family for the data part (default: what the
#                                          # measured rate fits into GEN_S for both families)
#
# Environment: OUT (results folder, default bench/results), TP_S / GEN_S (caps of the two parts, s).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source bench/gpu_setup.sh
export BKDSL_CACHE=${BKDSL_CACHE:-/tmp/bkdsl-cache}
PY=${PYTHON:-python3}
nvidia-smi --query-gpu=name,driver_version --format=csv || true
"$PY" -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name())' || exit 3
status=0
timeout "${TP_S:-150}" "$PY" bench/hf_throughput.py --out "$OUT/hf_throughput.json" --cap 40 \
  --batches "${BATCHES:-32,128,512,1024}" 2>&1 | tee "$OUT/hf_throughput.log" || status=1
# the data part: samples per family sized from the measured rate so that both families fit GEN_S
read GEN_SAMPLES GEN_BATCH < <("$PY" - "$OUT/hf_throughput.json" <<PYEOF
import json, sys
try:
    s = json.load(open(sys.argv[1]))["summary"]
    rate, batch = float(s["best_samples_per_s"]), int(s["best_batch"])
except Exception:
    rate, batch = 0.5, 32
n = int("${GEN_SAMPLES:-0}") or max(32, int(rate * ${GEN_S:-140} * 0.35) // 32 * 32)
print(n, min(batch, n))
PYEOF
)
echo "data part: $GEN_SAMPLES fields per family, batch $GEN_BATCH"
timeout "${GEN_S:-140}" "$PY" bench/hf_mg24_ofedf.py --generate-only --device cuda --samples "$GEN_SAMPLES" \
  --batch "$GEN_BATCH" --data "$OUT/hf_mg24_data" --out "$OUT/hf_mg24_gen.json" 2>&1 | tail -20 \
  | tee "$OUT/hf_mg24_gen.log" || status=1
echo "== summary"
"$PY" - "$OUT" <<'PYEOF'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
for name in ("hf_throughput.json", "hf_mg24_gen.json"):
    p = out / name
    if p.exists():
        d = json.loads(p.read_text())
        print(name, json.dumps(d.get("summary") or d.get("check"), indent=None))
    else:
        print(name, "missing")
PYEOF
exit $status
