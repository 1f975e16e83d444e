"""Thesis ch. 3 like for like: the ²⁴Mg OF-EDF experiments (table 3.2, the cross-domain pair of sec. 3.3.5,
table 3.3's CNN) trained from the specs/mg24_*.bk specs on Kohn-Sham data, written as one JSON.

1. **Data.** The SHO and RND data sets of ``nuclear_densities(solver = "hf-bcs", ...)`` (axial
   Skyrme-HF+BCS, table 3.1's cuts) are generated once into the dataset cache (``--data`` sets
   $BKDSL_CACHE) with ``--samples`` draws per family; their stats (drops per cut, samples/s) go to the JSON.
2. **Runs.** Each spec is trained with ``python -m bkdsl.train.cli`` (the thesis' recipe in the spec:
   MSE, batch 128, Adam 1e-4 stepped down at epochs 101/201/301/401, 500 epochs; ``--epochs`` and
   ``--time`` bound it here), one after the other; the test MAE of E_bin (MeV) is read from final.json.
3. **Cross-domain** (sec. 3.3.5): the last weights of the SHO run are applied to the RND test split
   (E_SHO[ρ_RND]) and vice versa, with the training run's own normalisation (from its checkpoint), by
   building the spec's model with :meth:`bkdsl.api.Compiled.build_model`.

    python bench/hf_mg24_ofedf.py --samples 256 --out bench/results/2026-12-03-hf_mg24_ofedf.json
    python bench/hf_mg24_ofedf.py --generate-only --samples 2048 --data $OUT/hf_mg24_data   # (GPU driver)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: thesis table 3.2 (MLP) and 3.3 (CNN): MAE of E_bin in MeV; sec. 3.3.5 cross-domain
THESIS = {"ofedf_sho": 0.0051, "ofedf_rnd": 0.0433, "ev_sho": 0.0054, "ev_rnd": 0.0237, "cnn_sho": 0.0049,
          "cnn_rnd": 0.0336, "cross_E_sho_on_rho_rnd": 1.1523, "cross_E_rnd_on_rho_sho": 0.122}
#: name, spec, extra overrides, thesis reference
RUNS = [("ofedf_sho", "specs/mg24_ofedf.bk", [], "table 3.2 E[rho] SHO"),
        ("ofedf_rnd", "specs/mg24_ofedf_rnd.bk", [], "table 3.2 E[rho] RND"),
        ("ev_sho", "specs/mg24_ev.bk", [], "table 3.2 E[v] SHO"),
        ("ev_rnd", "specs/mg24_ev_rnd.bk", [], "table 3.2 E[v] RND"),
        ("cnn_sho", "specs/mg24_cnn.bk", [], "table 3.3 E[rho] SHO"),
        ("cnn_rnd", "specs/mg24_cnn.bk", ['data.potential="rnd"'], "table 3.3 E[rho] RND")]
FAMILY_SPEC = {"sho": "specs/mg24_ofedf.bk", "rnd": "specs/mg24_ofedf_rnd.bk"}


def data_overrides(args) -> dict[str, str]:
    return {"data.samples": str(args.samples), "data.batch": str(args.batch)}


def generate(family: str, args) -> dict:
    import bkdsl
    from bkdsl.train.plan import data_plan

    c = bkdsl.compile_file(str(ROOT / FAMILY_SPEC[family]), overrides=data_overrides(args))
    t = time.perf_counter()
    dp = data_plan(c.data_block("mg24"), 0, str(ROOT / "specs"))
    wall = time.perf_counter() - t
    ds = dp.dataset
    E = ds.fields["E"].double()
    return {"family": family, "kept": len(ds), "load_or_generate_s": round(wall, 1), "E_mean": float(E.mean()),
            "E_std": float(E.std()), "E_min": float(E.min()), "E_max": float(E.max()),
            "stats": ds.meta.get("generator_stats")}


def train(name: str, spec: str, extra: list[str], args, out: Path) -> dict:
    rundir = out / name
    cmd = [sys.executable, "-m", "bkdsl.train.cli", str(ROOT / spec), "--out", str(rundir), "--quiet",
           "--device", args.device]
    for k, v in data_overrides(args).items():
        cmd += ["--set", f"{k}={v}"]
    cmd += ["--set", f"train.epochs={args.epochs}", "--set", f"train.time_limit={args.time}"]
    for kv in extra:
        cmd += ["--set", kv]
    t = time.perf_counter()
    p = subprocess.run(cmd, cwd=str(ROOT), capture_output=True, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    row = {"spec": spec, "overrides": extra, "rc": p.returncode, "wall_s": round(time.perf_counter() - t, 1)}
    fin = rundir / "final.json"
    if not fin.exists():
        row["error"] = (p.stderr or p.stdout)[-2000:]
        return row
    f = json.loads(fin.read_text())
    test = f.get("test", {})
    row.update({"status": f.get("status"), "epochs": f.get("epochs"), "MAE_E_MeV": test.get("test.mae_E"),
                "RMSE_E_MeV": test.get("test.rmse_E"), "max_error_E_MeV": test.get("test.max_error_E"), "test": test})
    return row


def cross(train_name: str, train_spec: str, on_family: str, args, out: Path) -> dict:
    """MAE (MeV) of the last weights of run ``train_name`` on the test split of ``on_family``."""
    import torch

    import bkdsl
    from bkdsl.train.checkpoint import load_checkpoint
    from bkdsl.train.data import split_indices
    from bkdsl.train.normalize import Normalizer
    from bkdsl.train.plan import data_plan

    ck_path = out / train_name / "checkpoints" / "last.safetensors"
    if not ck_path.exists():
        return {"error": f"no checkpoint {ck_path}"}
    c = bkdsl.compile_file(str(ROOT / train_spec), overrides=data_overrides(args))
    model = c.build_model(c.main_call)
    ck = load_checkpoint(ck_path)
    model.load_state_dict(ck.weights)
    model.eval()
    norm = Normalizer().load_state(ck.state["normalize"], {k: v.double() for k, v in ck.tensors.items()
                                                           if k.startswith("norm.")})
    oc = bkdsl.compile_file(str(ROOT / FAMILY_SPEC[on_family]), overrides=data_overrides(args))
    dp = data_plan(oc.data_block("mg24"), 0, str(ROOT / "specs"))
    idx = split_indices(len(dp.dataset), dp.split, dp.seed, dp.dataset.groups)["test"]
    batch = norm.apply({k: v[idx] for k, v in dp.dataset.fields.items()})
    with torch.no_grad():
        pred = model(rho=batch["rho"].float())["E"].double().flatten()
    E_pred = norm.invert("E", pred)
    E_true = dp.dataset.fields["E"][idx].double().flatten()
    if not bool(torch.isfinite(E_pred).all()) or len(E_true) == 0:
        return {"error": "non-finite prediction or empty test split"}
    return {"trained_on": train_name, "evaluated_on": on_family, "test_samples": len(E_true),
            "MAE_E_MeV": float((E_pred - E_true).abs().mean())}


def mean_baseline(family: str, args) -> dict:
    """MAE (MeV) on the test split of predicting the training split's mean E: what a model that learned
    nothing but the offset scores (the reference the runs must beat)."""
    import bkdsl
    from bkdsl.train.data import split_indices
    from bkdsl.train.plan import data_plan

    c = bkdsl.compile_file(str(ROOT / FAMILY_SPEC[family]), overrides=data_overrides(args))
    dp = data_plan(c.data_block("mg24"), 0, str(ROOT / "specs"))
    idx = split_indices(len(dp.dataset), dp.split, dp.seed, dp.dataset.groups)
    E = dp.dataset.fields["E"].double().flatten()
    mu = float(E[idx["train"]].mean())
    return {"family": family, "train": len(idx["train"]), "test": len(idx["test"]),
            "MAE_E_MeV": float((E[idx["test"]] - mu).abs().mean())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=256, help="fields drawn per family (before the cuts)")
    ap.add_argument("--batch", type=int, default=32, help="fields solved together")
    ap.add_argument("--epochs", type=int, default=500)
    ap.add_argument("--time", type=float, default=300.0, help="wall-clock limit per training run (s)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--runs", default=",".join(r[0] for r in RUNS))
    ap.add_argument("--data", default=None, help="dataset cache folder ($BKDSL_CACHE)")
    ap.add_argument("--generate-only", action="store_true")
    ap.add_argument("--work", default="/tmp/hf_mg24_ofedf", help="run directories")
    ap.add_argument("--out", default="bench/results/hf_mg24_ofedf.json")
    args = ap.parse_args(argv)
    if args.data:
        os.environ["BKDSL_CACHE"] = str(Path(args.data).resolve())
    import torch

    res: dict = {"bench": "hf_mg24_ofedf", "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                 "host": platform.node(), "torch": torch.__version__, "argv": sys.argv[1:],
                 "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
                 "samples_per_family": args.samples, "thesis_samples_per_family": 200_000, "thesis": THESIS}
    t0 = time.perf_counter()
    res["data"] = {f: generate(f, args) for f in ("sho", "rnd")}
    print("data:", json.dumps(res["data"]), flush=True)
    outp = Path(args.out)
    outp.parent.mkdir(parents=True, exist_ok=True)
    kept = {f: d["kept"] for f, d in res["data"].items()}
    res["summary"] = {"kept": kept, "generate_s": round(time.perf_counter() - t0, 1)}
    if args.generate_only:
        outp.write_text(json.dumps(res, indent=1))
        return 0
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    wanted = set(args.runs.split(","))
    res["runs"] = {}
    for name, spec, extra, ref in RUNS:
        if name in wanted:
            res["runs"][name] = {**train(name, spec, extra, args, work), "thesis_MAE_E_MeV": THESIS[name], "thesis": ref}
            print(name, json.dumps({k: v for k, v in res["runs"][name].items() if k != "test"}), flush=True)
            outp.write_text(json.dumps(res, indent=1))
    res["cross_domain"] = {}
    if {"ofedf_sho", "ofedf_rnd"} <= wanted:
        res["cross_domain"]["E_sho_on_rho_rnd"] = {**cross("ofedf_sho", FAMILY_SPEC["sho"], "rnd", args, work),
                                                   "thesis_MAE_E_MeV": THESIS["cross_E_sho_on_rho_rnd"]}
        res["cross_domain"]["E_rnd_on_rho_sho"] = {**cross("ofedf_rnd", FAMILY_SPEC["rnd"], "sho", args, work),
                                                   "thesis_MAE_E_MeV": THESIS["cross_E_rnd_on_rho_sho"]}
        print("cross:", json.dumps(res["cross_domain"]), flush=True)
    res["mean_baseline"] = {f: mean_baseline(f, args) for f in ("sho", "rnd")}
    print("mean baseline:", json.dumps(res["mean_baseline"]), flush=True)
    res["wall_s"] = round(time.perf_counter() - t0, 1)
    outp.write_text(json.dumps(res, indent=1))
    print(f"wrote {outp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
