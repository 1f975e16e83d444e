#!/usr/bin/env bash
# Data-parallel scaling on two H200s: the same phase8 run on 1 and on 2 GPUs (torchrun, DDP over
# NCCL; per-GPU batch fixed), samples/s of each. NVLink multicast stays off (NCCL_NVLS_ENABLE=0).
set -euo pipefail
source "$(dirname "$0")/gpu_setup.sh"
nvidia-smi --query-gpu=name --format=csv || true
MODEL=${MODEL:-'phase8(d = 256, layers = 4, heads = 8, experts = 8, blk = 64, tau = 3.0)'}
# The runner's `batch` is the global batch, split over the ranks: 32 on one GPU, 64 on two (32 each).
COMMON=(--device cuda --quiet --set data.seq_len=512 --set "train.model=$MODEL"
        --set data.max_bytes=3000000 --set train.steps=150)
python3 -m bkdsl train specs/phase8.bk "${COMMON[@]}" --set train.batch=32 --out /tmp/ddp1
torchrun --standalone --nproc-per-node 2 -m bkdsl train specs/phase8.bk "${COMMON[@]}" --set train.batch=64 --out /tmp/ddp2
python3 - "$OUT" <<'PY'
import datetime as dt, json, sys
from pathlib import Path
f1 = json.loads(Path("/tmp/ddp1/final.json").read_text())
f2 = json.loads(Path("/tmp/ddp2/final.json").read_text())
res = {"date": dt.date.today().isoformat(), "spec": "specs/phase8.bk", "per_gpu_batch": 32, "seq_len": 512,
       "samples_per_s": {"1_gpu": f1["samples_per_s"], "2_gpus": f2["samples_per_s"]},
       "world_size": {"1_gpu": f1.get("world_size"), "2_gpus": f2.get("world_size")},
       "scaling": f2["samples_per_s"] / f1["samples_per_s"], "device": f1.get("device_name"),
       "versions": f1.get("versions")}
out = Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
(out / f"{res['date']}-ddp_scaling.json").write_text(json.dumps(res, indent=2) + "\n")
print(json.dumps(res, indent=2))
PY
