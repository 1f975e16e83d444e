"""Plots of a run, drawn from ``metrics.jsonl`` (matplotlib, Agg backend, PNG).

``plots/loss.png`` always: training and validation loss per epoch (log scale when positive).
A spec asks for more with ``plots = [curve(val.mae_E), ...]``: each ``curve(key, ...)`` draws the named
record keys against the epoch into ``plots/<key>.png``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def read_records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by a kill: the rest of the file is still good
                log.warning("skipping a damaged line in %s", path)
    return out


def _curve(ax, recs: list[dict], key: str, label: str | None = None) -> bool:
    pts = [(r["epoch"], r[key]) for r in recs if key in r and r[key] is not None]
    if not pts:
        return False
    xs, ys = zip(*pts)
    ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, ms=3, label=label or key)
    return True


def draw(rundir: Path, extra: list[list[str]] | None = None, units: dict[str, str] | None = None) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = [r for r in read_records(rundir / "metrics.jsonl") if r.get("event") == "epoch"]
    pdir = rundir / "plots"
    pdir.mkdir(parents=True, exist_ok=True)
    written = []
    groups = [["train.loss", "val.loss"]] + list(extra or [])
    for keys in groups:
        fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
        any_drawn = False
        for k in keys:
            any_drawn |= _curve(ax, recs, k)
        if any_drawn:
            vals = [r[k] for r in recs for k in keys if isinstance(r.get(k), (int, float))]
            if vals and min(vals) > 0:
                ax.set_yscale("log")
            ax.set_xlabel("epoch")
            u = (units or {}).get(keys[0].split(".", 1)[-1])
            ax.set_ylabel(("loss" if keys[0].endswith("loss") else keys[0]) + (f" [{u}]" if u else ""))
            ax.grid(alpha=0.3)
            ax.legend()
            name = "loss" if keys == ["train.loss", "val.loss"] else "_".join(k.replace(".", "_") for k in keys)
            p = pdir / f"{name}.png"
            fig.tight_layout()
            fig.savefig(p)
            written.append(p)
        plt.close(fig)
    return written
