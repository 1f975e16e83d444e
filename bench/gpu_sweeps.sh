#!/usr/bin/env bash
# One H200 call for the launch-variant sweeps of issues #6 and #8, then phase8 tokens/s with the kernels
# against the references (a short run of bench/gpu_phase8.sh). Every part has its own wall-clock cap, so
# one part that hangs or compiles slowly cannot starve the others; each writes its JSON as it goes.
#
#   OUT=/tmp/out bash bench/gpu_sweeps.sh        # ≈ 9 min on an H200
#   PARTS="layouts routing" OUT=/tmp/out bash bench/gpu_sweeps.sh
#
# Parts: layouts (resolvent segment layouts and I/O variants, bench/resolvent_layouts.py), resolvent (the
# default kernels against the reference and the bytes floor, bench/resolvent.py), routing
# (bench/hyperbolic_routing.py forward sweep and the op's breakdown), attention (bench/scattering_attention.py
# --variants), phase8 (STEPS=200 REF_STEPS=100 MAX_BYTES=2000000 bench/gpu_phase8.sh). Caps: LAYOUTS_S, RESOLVENT_S, ROUTING_S,
# VARIANTS_BUDGET_S, PHASE8_S seconds.
set -uo pipefail
OUT=${OUT:-bench/results}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
status=0
for part in ${PARTS:-layouts routing attention phase8}; do
  echo "=== $part $(date +%T)"
  case $part in
    layouts) ONLY=layouts LAYOUTS_S=${LAYOUTS_S:-150} LAYOUTS_ARGS=${LAYOUTS_ARGS:-"--budget $(( ${LAYOUTS_S:-150} - 45 ))"} \
               OUT=$OUT bash bench/gpu_k1.sh || status=1 ;;
    routing) ONLY=routing ROUTING_S=${ROUTING_S:-130} ROUTING_ARGS=${ROUTING_ARGS:-"--budget $(( ${ROUTING_S:-130} - 25 ))"} \
               OUT=$OUT bash bench/gpu_k1.sh || status=1 ;;
    resolvent) ONLY=resolvent RESOLVENT_S=${RESOLVENT_S:-110} RESOLVENT_ARGS=${RESOLVENT_ARGS:-"--budget $(( ${RESOLVENT_S:-110} - 20 ))"} \
               OUT=$OUT bash bench/gpu_k1.sh || status=1 ;;
    attention) ONLY=variants VARIANTS_BUDGET_S=${VARIANTS_BUDGET_S:-100} OUT=$OUT bash bench/gpu_k2.sh || status=1 ;;
    phase8) STEPS=${STEPS:-200} REF_STEPS=${REF_STEPS:-100} MAX_BYTES=${MAX_BYTES:-2000000} OUT=$OUT timeout "${PHASE8_S:-150}" bash bench/gpu_phase8.sh \
              > "$OUT/gpu_phase8.log" 2>&1 || status=1; tail -20 "$OUT/gpu_phase8.log" ;;
    *) echo "unknown part $part"; status=2 ;;
  esac
done
echo "=== done $(date +%T) status $status"
exit $status
