"""``bkdsl runs [DIR...]``: compare run directories — final metrics and the settings that differ.

Each DIR is a run directory (it holds ``run.json``, ``final.json`` or ``metrics.jsonl``) or a directory
searched for them (three levels deep: ``runs/``, a sweep's numbered sub-directories); the default is
``runs``. One row per run:

``run``        the directory; ``status`` completed / stopped: … / incomplete (no final.json: running or
               killed — its numbers are the last epoch's validation values);
``epochs``, ``step``, ``time``; ``best``: the selection key, its value and epoch;
``test.*``     the final test metrics (with their units) — ``val.*`` of the last epoch for incomplete runs;
settings       the resolved train/data keys and ``--set`` overrides whose values differ between the runs
               listed (a sweep's axes); keys equal in all runs are left out, one run shows its overrides.

``--json`` prints the same as a list of objects (all settings, not only those that differ).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from bkdsl.diagnostics import BkError
from bkdsl.train.plots import read_records
from bkdsl.train.record import flatten, read_run

MARKERS = ("run.json", "final.json", "metrics.jsonl")
MAX_SETTING_COLUMNS = 8


def find_runs(paths: list[str], depth: int = 3) -> list[Path]:
    """Run directories at or under ``paths`` (sorted, each once)."""
    found: list[Path] = []

    def visit(p: Path, d: int) -> None:
        if any((p / m).exists() for m in MARKERS):
            found.append(p)
            return
        if d <= 0:
            return
        try:
            kids = sorted(k for k in p.iterdir() if k.is_dir() and not k.name.startswith("."))
        except OSError:
            return
        for k in kids:
            visit(k, d - 1)

    for s in paths:
        p = Path(s)
        if not p.is_dir():
            raise BkError("E0622", f"`{s}` is not a directory", help="name run directories or a folder holding them")
        visit(p, depth)
    out = []
    for p in found:
        if p not in out:
            out.append(p)
    return out


def summarize(rundir: Path) -> dict:
    """One run's status, metrics and settings as plain data."""
    rec = read_run(rundir) or {}
    final = None
    fp = rundir / "final.json"
    if fp.exists():
        try:
            final = json.loads(fp.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            final = None
    epochs = [r for r in read_records(rundir / "metrics.jsonl") if r.get("event") == "epoch"]
    row: dict = {"run": str(rundir), "spec": rec.get("spec"), "train": rec.get("train"),
                 "spec_hash": rec.get("spec_hash"), "overrides": rec.get("overrides") or {}}
    if final is not None:
        row.update(status=final.get("status"), epochs=final.get("epochs"), global_step=final.get("global_step"),
                   wall_time_s=final.get("wall_time_s"), best=final.get("best"), metrics=final.get("test") or {},
                   units=final.get("units") or {}, metrics_from="test")
        row["overrides"] = row["overrides"] or (final.get("record") or {}).get("overrides") or {}
        row["spec"] = row["spec"] or (final.get("record") or {}).get("spec")
        row["train"] = row["train"] or final.get("train")
    else:
        last = epochs[-1] if epochs else {}
        row.update(status="incomplete", epochs=last.get("epoch", 0), global_step=last.get("global_step", 0),
                   wall_time_s=last.get("elapsed_s"), best=None,
                   metrics={k: v for k, v in last.items() if k.startswith("val.") and isinstance(v, (int, float))},
                   units=last.get("units") or {}, metrics_from="val")
    settings = {}
    resolved = rec.get("resolved") or {}
    train = row.get("train")
    if train and train in (resolved.get("train") or {}):
        settings.update(flatten(resolved["train"][train], "train"))
    settings.update(flatten(resolved.get("data") or {}, "data"))
    settings = {k.replace(".kwargs.", "."): v for k, v in settings.items()}
    # an override shows as the resolved value it set; one the resolved spec does not hold shows as --set
    settings.update({f"--set {k}": v for k, v in row["overrides"].items() if k not in settings})
    row["settings"] = settings
    return row


def differing(rows: list[dict]) -> list[str]:
    """Setting keys whose values are not the same in every row (all overrides when there is one row)."""
    if len(rows) == 1:
        over = rows[0]["overrides"]
        return [k for k in rows[0]["settings"] if k.startswith("--set ") or k in over]
    keys = sorted({k for r in rows for k in r["settings"]})
    return [k for k in keys if len({json.dumps(r["settings"].get(k), sort_keys=True, default=str) for r in rows}) > 1]


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else str(v)
    s = v if isinstance(v, str) else json.dumps(v, default=str)
    return s if len(s) <= 28 else s[:25] + "..."


def _unit(row: dict, key: str) -> str:
    u = (row.get("units") or {}).get(key.split(".", 1)[-1])
    return f" [{u}]" if u else ""


def table(rows: list[dict]):
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=f"{len(rows)} run{'s' * (len(rows) != 1)}", show_lines=False)
    t.add_column("run", no_wrap=True)
    for c in ("status", "epochs", "step", "time"):
        t.add_column(c, justify="right" if c in ("epochs", "step", "time") else "left", no_wrap=True)
    t.add_column("best")
    mkeys: list[str] = []
    for r in rows:  # the loss and the declared metrics; loss terms (`test.mse(A)`) are in --json
        for k in r["metrics"]:
            if k not in mkeys and "(" not in k:
                mkeys.append(k)
    for k in mkeys:
        unit = next((_unit(r, k) for r in rows if _unit(r, k)), "")
        t.add_column(escape(k + unit), justify="right")
    skeys = differing(rows)
    shown = skeys[:MAX_SETTING_COLUMNS]
    for k in shown:
        t.add_column(escape(k), style="cyan")
    for r in rows:
        b = r.get("best")
        best = f"{b['key']} {b['value']:.4g} @{b['epoch']}" if isinstance(b, dict) and "value" in b else "-"
        status = r.get("status") or "-"
        cells = [r["run"], status if len(status) <= 30 else status[:27] + "...", _fmt(r.get("epochs")),
                 _fmt(r.get("global_step")),
                 f"{r['wall_time_s']:.1f} s" if isinstance(r.get("wall_time_s"), (int, float)) else "-",
                 best, *(_fmt(r["metrics"].get(k)) for k in mkeys), *(_fmt(r["settings"].get(k)) for k in shown)]
        t.add_row(*(escape(c) for c in cells))
    if len(skeys) > len(shown):
        t.caption = f"{len(skeys) - len(shown)} more differing settings: see --json"
    return t


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("runs", help="compare run directories: final metrics and settings",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("dirs", nargs="*", default=["runs"], metavar="DIR",
                   help="run directories or folders holding them (default: runs)")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.set_defaults(fn=cmd_runs)
    return p


def cmd_runs(args) -> int:
    dirs = find_runs(args.dirs)
    if not dirs:
        raise BkError("E0622", f"no run directories under {', '.join(args.dirs)}",
                      help="train a spec first (`bkdsl train SPEC`), or name the folder that holds the runs")
    rows = [summarize(d) for d in dirs]
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    from rich.console import Console

    # a table as wide as it needs (no wrapped cells); a terminal narrower than that scrolls
    Console(stderr=False, width=100_000).print(table(rows))
    return 0


