"""The closing lines of ``make demo``: what was written where, and what the numbers mean.

Reads what the demo's commands wrote — ``ir.json`` of ``bkdsl compile`` (each claim and how it was
established), the refused spec's rendered diagnostic, and ``final.json`` of ``bkdsl train`` — and
prints them in words. Every number printed here is read from those files; a missing or unreadable file
is said so, never papered over::

    python -m bkdsl.tour --spec out/demo/starter.bk --compiled out/demo/compiled \\
        --refused out/demo/refused.txt --run runs/demo
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path


def _load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def claim_lines(ir: dict | None) -> list[str]:
    if ir is None:
        return ["  claims: ir.json missing — did `bkdsl compile` run?"]
    claims = ir.get("claims") or []
    ok = sum(bool(c.get("holds")) for c in claims)
    lines = [f"  claims: {ok}/{len(claims)} established"]
    for c in claims:
        subject = c["subject"].split("(")[0]
        lines.append(f"    `{subject} : {c['property']}` {'proven' if c['holds'] else 'REFUSED'} "
                     f"({c['how']}): {c['detail']}")
    return lines


def refused_lines(text: str | None) -> list[str]:
    if not text:
        return ["  refused: no diagnostic captured"]
    head = next((ln for ln in text.splitlines() if "error[" in ln), "")
    number = re.search(r"max\s*\|[^=]*=\s*[-+0-9.e]+[^\n]*", text)
    return [f"  refused: {head.split(': ', 1)[-1] if head else '(no error line)'}",
            f"    the probe measured {number.group(0).strip()}" if number else "    (no probe number in the message)",
            "    so `bkdsl check` exits 1: a claim is proven or refused, never assumed"]


def run_lines(final: dict | None, run: Path) -> list[str]:
    if final is None:
        return [f"  training: {run}/final.json missing — did `bkdsl train` finish?"]
    test = final.get("test") or {}
    units = final.get("units") or {}
    lines = [f"  training: {final.get('status')} after {final.get('epochs')} epochs "
             f"({final.get('global_step')} steps, {final.get('wall_time_s')} s on {final.get('device')})"]
    meaning = {
        "loss": "the training loss (mse of the normalised fields) on the test split",
        "mae_rho": "mean |rho_pred − rho| over the test nuclei and grid points, in physical units",
        "rel_l2_rho": "‖rho_pred − rho‖₂ / ‖rho‖₂ per nucleus, averaged: 0.05 means 5 % relative error",
    }
    for key, value in test.items():
        short = key.removeprefix("test.")
        if short not in meaning:
            continue
        bad = not isinstance(value, (int, float)) or not math.isfinite(value)
        unit = f" {units[short]}" if short in units else ""
        lines.append(f"    {short} = {'NOT FINITE' if bad else f'{value:.4g}'}{unit}: {meaning[short]}")
    if "mae_rho" in {k.removeprefix('test.') for k in test}:
        lines.append("    (the central density rho0 is 0.16 fm^-3, so mae_rho / 0.16 is the error as a fraction of it)")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bkdsl.tour")
    ap.add_argument("--spec", required=True)
    ap.add_argument("--compiled", required=True)
    ap.add_argument("--refused", required=True)
    ap.add_argument("--run", required=True)
    a = ap.parse_args(argv)
    compiled, run = Path(a.compiled), Path(a.run)
    try:
        refused = Path(a.refused).read_text(encoding="utf-8")
    except OSError:
        refused = None
    lines = ["", "── what was written where ──",
             f"  {a.spec:<34} the starter spec (`bkdsl new`): data, model with a claim, loss, train block",
             f"  {str(compiled / 'graph.py'):<34} the model as torch.fx code",
             f"  {str(compiled / 'report.md'):<34} model summary (shapes, parameters, MACs), claims and how each was proven",
             f"  {a.refused:<34} the refusal of specs/refused/rk4_symplectic.bk",
             f"  {str(run / 'final.json'):<34} test metrics, best epoch, versions; metrics.jsonl: one line per epoch",
             f"  {str(run / 'plots'):<34} loss.png and val_mae_rho.png (one point per epoch)",
             f"  {str(run / 'checkpoints'):<34} best.safetensors / last.safetensors (weights, never pickled)",
             "", "── what the numbers mean ──"]
    lines += claim_lines(_load(compiled / "ir.json"))
    lines += refused_lines(refused)
    lines += run_lines(_load(run / "final.json"), run)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
