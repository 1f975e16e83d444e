#!/usr/bin/env bash
# Issue #20 in ONE call on the H200: every row in ONE JSON, $OUT/issue20.json (bench/issue20.py).
#
#   OUT=$OUT bash bench/gpu_issue20.sh        # carry .whl (bkdsl's dependencies + fla_core, see gpu_setup.sh)
#
# Parts, each a fresh process (a default tile must compile in a fresh process, #20.3) under its own
# `timeout`, in this order, with these caps (s; ISSUE20_SCALE=0.5 halves them for a dev run):
#   routing 60     #20.4/#20.5  routing op fwd+bwd eager and CUDA-graphed, torch.compile one-matmul peer + accuracy
#                               (H200 dev run 2026-12-03: 30 s)
#   resolvent 110  #20.5        segmented kernel (checked, timed) first; then each PyTorch peer in its OWN process,
#                               killed at its own cap and recorded as "timeout" (the part goes on), compile seconds
#                               recorded apart: torch.compile doubling scan fwd + fwd+bwd (50 s), then
#                               torch.compile associative_scan fwd (≤ 45 s, what is left). The dense linalg.inv only with
#                               ISSUE20_ARGS=--dense-peer (one chain).
#   delta 140      #20.2        bf16 then fp32: ours checked vs float64 at B1 H4 N1024, timed at B4 H8 N4096 D128
#                               (fwd, fwd+bwd), then fla checked (its autotuning) and timed likewise, then the WY
#                               kernel's two inverse forms, then kernel breakdowns; every step logged with its seconds
#   attention 60   #20.3        causal attention at 50 % blocks vs FlexAttention, fwd+bwd, the tile that ran (dev: 35 s)
#   sweep ≤ 200    #20.1        bench/sweep_batched.py (sweep2's entry point), its summary folded in, contenders
#                               ordered: SWEEP_FIRST (the graphed single run, its peer, the grouped grids) that
#                               sweep_batched.py's DEFAULT knows, then the rest of its DEFAULT;
#                               it gets what the earlier parts left of the deadline (≥ 120 s; expected ≈ 200 s)
# then `bench/issue20.py --collect` merges the parts (each part rewrites its JSON after every row, so a
# part killed at its cap keeps the rows it had). Every cap is also cut to what is left of the 530 s
# deadline, counted from the start of this script; setup (wheel install) is capped at 40 s.
# Expected wall time ≈ 7.5–9 min; hard bound 530 s (+ the collect step, capped at 30 s, < 5 s).
#
# CPU smoke of the driver itself (interpreter, tiny sizes; no setup, no pip):
#   ISSUE20_SKIP_SETUP=1 ISSUE20_ARGS=--smoke SWEEP_ARGS="--device cpu --width 8 --hidden 16 --batch 4 --dz 1,2
#     --alpha 1e-3,1e-2 --check-batch 4 --contenders single_eager,grid_grouped" OMP_NUM_THREADS=1
#     PYTHON=.venv/bin/python OUT=/tmp/i20 bash bench/gpu_issue20.sh
#
# Writes $OUT/issue20.json, $OUT/issue20.log, $OUT/issue20_parts/{routing,resolvent,delta,attention}.json,
# $OUT/issue20_parts/sweep.json and prints a table of the rows (and a SUMMARY line).
set -uo pipefail
T0=$SECONDS
DEADLINE=${ISSUE20_DEADLINE_S:-530}
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${OUT:-bench/results}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
PARTS_DIR="$OUT/issue20_parts"
mkdir -p "$PARTS_DIR"
: > "$PARTS_DIR/status.txt"
LOG="$OUT/issue20.log"
exec > >(tee -a "$LOG") 2>&1
PY=${PYTHON:-python3}
SCALE=${ISSUE20_SCALE:-1}

echo "== gpu_issue20.sh start $(date -u +%FT%TZ) (deadline ${DEADLINE}s)"
# setup as the other drivers: the carried wheels to /tmp/site, bkdsl editable; capped
if [ -z "${ISSUE20_SKIP_SETUP:-}" ]; then
  timeout 40 bash -c "source bench/gpu_setup.sh" || echo "setup: gpu_setup.sh failed or timed out (continuing)"
fi
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=8
unset TRITON_INTERPRET
[ -d /tmp/site ] && export PYTHONPATH=/tmp/site
"$PY" -c 'import bkdsl.kernels.hyperbolic_routing' 2>/dev/null || {
  echo "setup: bkdsl not importable after the editable install; using the tree on PYTHONPATH"
  export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
  "$PY" -c 'import bkdsl.kernels' 2>/dev/null || ln -sfn ../kernels bkdsl/kernels
}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv || true
"$PY" -c 'import torch, triton; print("torch", torch.__version__, "triton", triton.__version__, torch.cuda.get_device_name())' || true
echo "== setup done at $((SECONDS - T0)) s"

cap() {  # cap NAME SECONDS -> the part's timeout: its cap × SCALE, cut to what is left before the deadline
  local want left
  want=$(awk -v s="$2" -v k="$SCALE" 'BEGIN { printf "%d", s * k }')
  left=$((DEADLINE - (SECONDS - T0)))
  [ "$want" -gt "$left" ] && want=$left
  echo "$want"
}

run_part() {  # run_part NAME CAP
  local c rc
  c=$(cap "$1" "$2")
  if [ "$c" -lt 20 ]; then
    echo "== $1: skipped, ${c}s left before the deadline"; echo "$1 skipped-deadline" >> "$PARTS_DIR/status.txt"; return
  fi
  echo "== $1: cap ${c}s (at $((SECONDS - T0)) s)"
  timeout -k 5 "$c" "$PY" bench/issue20.py --part "$1" --json "$PARTS_DIR/$1.json" --budget-s "$((c - 12))" ${ISSUE20_ARGS:-}
  rc=$?
  echo "$1 $rc" >> "$PARTS_DIR/status.txt"
  echo "== $1: exit $rc at $((SECONDS - T0)) s"
}

run_part routing 60
run_part resolvent 110
run_part delta 140
run_part attention 60

# the sweep rows: sweep2's entry point (bench/sweep_batched.py); --budget-s where it has it, else --budget
c=$(cap sweep 200)
if [ ! -f bench/sweep_batched.py ]; then
  echo "== sweep: HOOK — bench/sweep_batched.py is missing"; echo "sweep missing" >> "$PARTS_DIR/status.txt"
elif [ "$c" -lt 30 ]; then
  echo "== sweep: skipped, ${c}s left"; echo "sweep skipped-deadline" >> "$PARTS_DIR/status.txt"
else
  if grep -q -- '"--budget-s"' bench/sweep_batched.py; then flag=--budget-s; else flag=--budget; fi
  # the important contenders first (sweep_batched.py runs them in the order given, skipping on budget)
  # (the preferred ones the script knows, then the rest of its DEFAULT in its order; no torch import)
  SWEEP_FIRST=${SWEEP_FIRST:-single_cudagraphs,peer_cudagraphs,grid_grouped_padded,grid_grouped_graph,grid_grouped_same_shape,grid_vmap,grid_grouped_padded_eager,single_eager}
  if [ -z "${SWEEP_CONTENDERS:-}" ]; then
    SWEEP_CONTENDERS=$("$PY" - "$SWEEP_FIRST" <<'PYEOF'
import ast, re, sys
m = re.search(r"^DEFAULT\s*=\s*\((.*?)\)", open("bench/sweep_batched.py").read(), re.S | re.M)
known = ast.literal_eval("(" + m.group(1) + ")").split(",") if m else []
first = [c for c in sys.argv[1].split(",") if c in known]
print(",".join(first + [c for c in known if c not in first]))
PYEOF
    )
  fi
  case " ${SWEEP_ARGS:-} " in *" --contenders "*) order=() ;; *) order=(--contenders "$SWEEP_CONTENDERS") ;; esac
  [ -z "$SWEEP_CONTENDERS" ] && order=()
  echo "== sweep: cap ${c}s ($flag $((c - 25))) ${order[*]+${order[*]}}"
  timeout -k 5 "$c" "$PY" bench/sweep_batched.py --out "$PARTS_DIR/sweep.json" "$flag" "$((c - 25))" ${order[@]+"${order[@]}"} ${SWEEP_ARGS:-}
  rc=$?
  echo "sweep $rc" >> "$PARTS_DIR/status.txt"
  echo "== sweep: exit $rc at $((SECONDS - T0)) s"
fi

timeout 30 "$PY" bench/issue20.py --collect "$PARTS_DIR" --sweep-json "$PARTS_DIR/sweep.json" --out "$OUT/issue20.json"
rc=$?
echo "== gpu_issue20.sh: collect exit $rc; $(cat "$PARTS_DIR/status.txt" | tr '\n' ' '); total $((SECONDS - T0)) s"
echo "== JSON: $OUT/issue20.json"
exit $rc
