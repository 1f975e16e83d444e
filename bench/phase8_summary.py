"""Summarise the phase8 H200 runs of bench/gpu_phase8.sh: tokens/s with the fused kernels and with
the references (same model, data and batch), the validation curve, and the model's own reports
(fraction of attention blocks skipped, MoE load). Writes <out>/<date>-phase8_h200.json and a PNG of
the curve."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path


def load(run: Path) -> tuple[dict, list[dict]]:
    final = json.loads((run / "final.json").read_text())
    recs = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines() if l.strip()]
    return final, recs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("kernels")
    ap.add_argument("reference")
    ap.add_argument("--model", default="")
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--out", default="bench/results")
    a = ap.parse_args()
    fk, rk = load(Path(a.kernels))
    fr, _ = load(Path(a.reference))
    epochs = [r for r in rk if r.get("event") == "epoch"]
    tok_k = fk["samples_per_s"] * a.seq_len
    tok_r = fr["samples_per_s"] * a.seq_len
    res = {
        "date": dt.date.today().isoformat(), "model": a.model, "seq_len": a.seq_len,
        "device": fk.get("device_name"), "versions": fk.get("versions"),
        "tokens_per_s": {"kernels": tok_k, "reference": tok_r, "ratio_kernels_over_reference": tok_k / tok_r},
        "steps": {"kernels": fk.get("global_step"), "reference": fr.get("global_step")},
        "first_step_s": {"kernels": fk.get("first_step_s"), "reference": fr.get("first_step_s")},
        "warmup_s": {"kernels": fk.get("warmup_s"), "reference": fr.get("warmup_s")},
        "test": fk.get("test"), "wall_time_s": fk.get("wall_time_s"),
        "curve": [{k: r.get(k) for k in ("epoch", "global_step", "train.loss", "val.loss", "val.bits_per_byte",
                                          "model.attention_blocks_skipped", "model.attention_tokens_active",
                                          "model.moe_load_max", "model.moe_load_min")} for r in epochs],
    }
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{res['date']}-phase8_h200.json").write_text(json.dumps(res, indent=2) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.plot([r["global_step"] for r in epochs], [r["val.bits_per_byte"] for r in epochs], "o-", label="validation")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("bits per byte")
        ax.set_title("phase8 on an H200")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "phase8_h200_curve.png", dpi=120)
    except Exception as e:  # the JSON is the result; the figure is a convenience
        print("no figure:", e)
    print(json.dumps(res["tokens_per_s"], indent=2))
    print("test:", res["test"])


if __name__ == "__main__":
    main()
