"""``bkdsl train SPEC --sweep KEY=A,B,C ...``: a Cartesian sweep into numbered run directories.

    bkdsl train specs/u236_mtl.bk --sweep model.d_z=1,2,3 --sweep "loss.alpha=1e-3 fm^-3,1e-2 fm^-3,1e-1 fm^-3"
    bkdsl train specs/tiny_regression.bk --sweep optimizer.lr=1e-3,3e-3 --sweep train.seed=0,1 --out runs/sw
    bkdsl train ... --sweep ... --out runs/sw --resume          # continue the sweep where it stopped

Keys. Each ``--sweep`` names one axis; the runs are the Cartesian product of the axes (the first axis
varies slowest). A key is any ``--set`` key (``train.KEY``, ``train.NAME.KEY``, ``data.KEY``,
``data.NAME.KEY``; :func:`bkdsl.overrides.parse_set_args` validates it), or ``ENTRY.ARG`` — one keyword
argument of the call a train entry holds (``model.d_z``, ``loss.alpha``, ``optimizer.lr``,
``schedule.patience``): the entry's call from the spec (or its ``--set``) with that argument replaced
becomes the run's ``train.ENTRY`` override. Values are bk expressions separated by commas at the top
level (commas inside ``( )``, ``[ ]`` or quotes belong to the value: ``train.model=mtl(d_z = 1),mtl(d_z = 2)``).

Before any run trains, every combination is compiled and checked with the same pass as ``bkdsl check``
and the runner (:func:`bkdsl.verify.plan.check_train`); a refused combination stops the sweep with its
diagnostics, each noting which run it is. Runs go to ``OUT/000-<slug>/``, ``OUT/001-<slug>/``, …, each a
normal run directory (``bkdsl train SPEC --set ... --out OUT/003-... --resume`` continues one alone);
``OUT/sweep.json`` holds the axes, every run's overrides, status and final test metrics, and the groups
that were batched; a summary table (one row per run) is printed at the end.

Execution (``--sweep-mode``): ``sequential`` trains the runs one after another; ``batched`` trains
runs of one architecture and step plan as one step (:mod:`bkdsl.train.batched`; runs of different
shapes, e.g. different d_z, form one group per shape) in the grouped form when the model has one (every
layer holds all runs: grouped convolutions, batched matmuls — :mod:`bkdsl.train.grouped`) and under vmap
otherwise; ``grouped`` and ``vmap`` force one form (E0625 / E0621 when it does not apply); ``auto`` (the
default) batches on CUDA groups of two or more runs — grouped when the model has the form, vmap for a
model without convolutions, sequential otherwise (:func:`bkdsl.train.batched.auto_strategy`). ``--resume`` skips
runs whose ``final.json`` exists and continues the others from their ``checkpoints/last``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bkdsl
from bkdsl.diagnostics import BkError, BkErrors, Diagnostic, Span
from bkdsl.overrides import parse_set_args, parse_value
from bkdsl.syntax import ast as A
from bkdsl.syntax.fmt import expr as format_expr
from bkdsl.syntax.parser import parse
from bkdsl.train import batched as Bt
from bkdsl.train.checkpoint import load_checkpoint
from bkdsl.train.loop import resolve_device
from bkdsl.train.loop import run as run_plan
from bkdsl.train.plan import plan_from_compiled
from bkdsl.verify.plan import check_train

log = logging.getLogger("bkdsl.train.sweep")

FORMAT = "bkdsl-sweep/1"
MODES = ("auto", "batched", "grouped", "vmap", "sequential")
MAX_RUNS = 1000  # three-digit run directories


@dataclass
class Axis:
    key: str
    values: list[str]


@dataclass
class SweepRun:
    index: int
    name: str                       # the run directory's name, e.g. 003-lr-3e-3
    swept: dict[str, str]           # this run's values of the swept keys
    overrides: dict[str, str] = field(default_factory=dict)  # all --set overrides it is compiled with


# -- parsing ------------------------------------------------------------------------------------------
def split_values(text: str) -> list[str]:
    """Split at commas outside brackets and quotes: ``mtl(d_z = 1, w = 2),mtl(d_z = 3)`` → two values."""
    out, depth, quote, cur = [], 0, None, []
    for ch in text:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = None
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur).strip())
    return out


def _where(item: str) -> Span:
    return Span("<--sweep>", 1, 1, 1, len(item) + 1)


def parse_sweep_args(items: list[str]) -> tuple[list[Axis], list[Diagnostic]]:
    """``["optimizer.lr=1e-3,3e-3", ...]`` → axes; E0206 for a malformed item, an empty or repeated value,
    a key given twice, or a key ``--set`` would refuse."""
    axes: list[Axis] = []
    diags: list[Diagnostic] = []
    for it in items:
        key, eq, rest = it.partition("=")
        key = key.strip()
        if not eq or not key or not rest.strip():
            diags.append(Diagnostic("E0206", f"`--sweep {it}`: expected KEY=VALUE,VALUE,...", _where(it),
                                    help="e.g. --sweep optimizer.lr=1e-3,3e-3 or --sweep train.seed=0,1,2"))
            continue
        values = split_values(rest)
        if any(not v for v in values):
            diags.append(Diagnostic("E0206", f"`--sweep {it}`: an empty value", _where(it),
                                    help="separate values by single commas: KEY=A,B,C"))
            continue
        if len(set(values)) != len(values):
            diags.append(Diagnostic("E0206", f"`--sweep {it}`: a value is repeated", _where(it),
                                    help="each value of an axis once"))
            continue
        if any(a.key == key for a in axes):
            diags.append(Diagnostic("E0206", f"`--sweep {key}` is given twice", _where(it),
                                    help="one --sweep per key, with all its values: KEY=A,B,C"))
            continue
        if key.split(".")[0] in ("train", "data"):
            _, d = parse_set_args([f"{key}={v}" for v in values])
            if not d and key.count(".") not in (1, 2):
                d = [Diagnostic("E0206", f"cannot override `{key}`", _where(it),
                                help="keys are train.KEY, train.NAME.KEY, data.KEY or data.NAME.KEY")]
            if d:
                diags.extend(d)
                continue
        elif key.count(".") != 1 or not all(key.split(".")):
            diags.append(Diagnostic("E0206", f"`--sweep {it}`: cannot sweep `{key}`", _where(it),
                                    help="keys are train.KEY, data.KEY (as for --set) or ENTRY.ARG, an argument "
                                         "of a train entry's call: model.d_z, loss.alpha, optimizer.lr"))
            continue
        axes.append(Axis(key, values))
    n = 1
    for a in axes:
        n *= len(a.values)
    if axes and n > MAX_RUNS:
        diags.append(Diagnostic("E0206", f"the sweep has {n} runs (at most {MAX_RUNS})", _where(" ".join(items)),
                                help="sweep fewer values"))
    return axes, diags


def slug(swept: dict[str, str]) -> str:
    """A short file-name-safe description: ``optimizer.lr=3e-3, model.d_z=2`` → ``lr-3e-3_d_z-2``."""
    parts = []
    for k, v in swept.items():
        name = k.rsplit(".", 1)[-1]
        val = re.sub(r"[^A-Za-z0-9.+-]+", "_", v).strip("_.") or "v"
        parts.append(f"{name}-{val}")
    s = "_".join(parts)
    return s[:60].rstrip("_.-") or "run"


def combinations(axes: list[Axis]) -> list[SweepRun]:
    runs = []
    for i, vals in enumerate(itertools.product(*[a.values for a in axes])):
        swept = dict(zip([a.key for a in axes], vals))
        runs.append(SweepRun(i, f"{i:03d}-{slug(swept)}", swept))
    return runs


# -- ENTRY.ARG keys ------------------------------------------------------------------------------------
def _train_stmt(module: A.Module, train: str | None) -> A.Train | None:
    trains = [s for s in module.stmts if isinstance(s, A.Train)]
    if train is not None:
        return next((t for t in trains if t.name == train), None)
    return trains[0] if trains else None


def resolve_overrides(spec_text: str, spec: str, base: dict[str, str], run: SweepRun, train: str | None
                      ) -> tuple[dict[str, str], list[Diagnostic]]:
    """A run's ``--set`` overrides: the base ones, its ``train.*``/``data.*`` values, and each ``ENTRY.ARG``
    folded into a ``train.ENTRY`` call (the spec's call, or the override's, with ARG replaced)."""
    ov = dict(base)
    args: dict[str, list[tuple[str, str]]] = {}
    for k, v in run.swept.items():
        if k.split(".")[0] in ("train", "data"):
            ov[k] = v
        else:
            entry, arg = k.split(".")
            args.setdefault(entry, []).append((arg, v))
    if not args:
        return ov, []
    module, diags = parse(spec_text, spec)
    if module is None:
        return ov, diags
    t = _train_stmt(module, train)
    if t is None:
        return ov, [Diagnostic("E0206", f"no train block{f' `{train}`' if train else ''} for "
                                        f"`{next(iter(args))}.…`", _where(next(iter(args))))]
    several = sum(isinstance(s, A.Train) for s in module.stmts) > 1
    diags = []
    for entry, pairs in args.items():
        key = f"train.{t.name}.{entry}" if several else f"train.{entry}"
        where = _where(f"{entry}.{pairs[0][0]}")
        text = ov.get(key) or ov.get(f"train.{entry}")
        if text is not None:
            call, d = parse_value(text, f"<--set {key}>")
            if d:
                diags += d
                continue
        else:
            e = next((e for e in t.entries if e.key == entry), None)
            if e is None:
                diags.append(Diagnostic("E0206", f"`--sweep {entry}.{pairs[0][0]}`: train block `{t.name}` has no "
                                                 f"`{entry}` entry", where,
                                        help=f"entries: {', '.join(e.key for e in t.entries)}"))
                continue
            call = e.value
        if not isinstance(call, A.Call):
            diags.append(Diagnostic("E0206", f"`--sweep {entry}.{pairs[0][0]}`: `{entry}` is "
                                             f"`{format_expr(call)}`, not a call with arguments", where,
                                    help=f"sweep the whole entry: --sweep train.{entry}=A,B"))
            continue
        kwargs = list(call.kwargs)
        for arg, v in pairs:
            value, d = parse_value(v, f"<--sweep {entry}.{arg}>")
            if d:
                diags += d
                continue
            kwargs = [k for k in kwargs if k.name != arg] + [A.Kwarg(arg, value)]
        ov[key] = format_expr(A.Call(call.func, list(call.args), kwargs))
    return ov, diags


# -- the run directory of a sweep -------------------------------------------------------------------
def choose_sweep_dir(spec: str, out: str | None, resume: bool) -> Path:
    if out is not None:
        return Path(out)
    base = Path("runs") / f"{Path(spec).stem}-sweep"
    used = [p for p in [base] + sorted(base.parent.glob(base.name + ".*")) if (p / "sweep.json").exists()]
    if resume or not used:
        return used[-1] if used else base
    k = 1
    while (base.parent / f"{base.name}.{k}" / "sweep.json").exists():
        k += 1
    return base.parent / f"{base.name}.{k}"


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        raise BkError("E0611", f"cannot write `{path}`: {os.strerror(e.errno) if e.errno else type(e).__name__}",
                      help="point --out at a writable directory") from None


def _identity(doc: dict) -> dict:
    return {k: doc.get(k) for k in ("spec_sha256", "train", "base_overrides", "axes")}


# -- the sweep ----------------------------------------------------------------------------------------
def run_sweep(args: Any) -> int:
    """The ``--sweep`` branch of ``bkdsl train`` (arguments as :mod:`bkdsl.train.cli` parses them)."""
    base, d1 = parse_set_args(args.overrides)
    axes, d2 = parse_sweep_args(args.sweep)
    if d1 or d2:
        raise BkErrors(d1 + d2)
    if getattr(args, "assert_manifolds", False):
        base["train.assert_manifolds"] = "true"
    mode = getattr(args, "sweep_mode", None) or "auto"
    spec = args.spec
    try:
        text = Path(spec).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise BkError("E0002", f"spec file `{spec}` not found", help="check the path") from None
    runs = combinations(axes)
    includes = tuple(getattr(args, "include", None) or ())

    # every combination compiled and checked before any run trains
    diags, sources, compiled = [], {}, {}
    for r in runs:
        ov, d = resolve_overrides(text, spec, base, r, args.train)
        r.overrides = ov
        if d:
            diags += _noted(d, r)
            continue
        try:
            c = bkdsl.compile_file(spec, overrides=ov, includes=includes)
            t = c.train_block(args.train)
            errs = [x for x in check_train(t, c.ir) if x.is_error]
        except BkErrors as e:
            diags += _noted(e.diagnostics, r)
            sources.update(e.sources)
            continue
        except BkError as e:
            diags += _noted([e.diagnostic], r)
            continue
        if errs:
            diags += _noted(errs, r)
            sources.update(c.sources)
            continue
        compiled[r.index] = c
    if diags:
        raise BkErrors(diags, sources)

    outdir = choose_sweep_dir(spec, args.out, args.resume)
    doc_path = outdir / "sweep.json"
    doc = {"format": FORMAT, "spec": spec, "spec_sha256": hashlib.sha256(text.encode()).hexdigest(),
           "train": args.train, "base_overrides": base, "axes": [{"key": a.key, "values": a.values} for a in axes],
           "mode": mode, "runs": [{"index": r.index, "dir": r.name, "swept": r.swept, "overrides": r.overrides,
                                   "status": "pending"} for r in runs], "groups": []}
    if args.resume:
        if not doc_path.exists():
            raise BkError("E0610", f"nothing to resume in `{outdir}`: no sweep.json",
                          help="run without --resume to start the sweep, or point --out at its directory")
        old = json.loads(doc_path.read_text(encoding="utf-8"))
        if _identity(old) != _identity(doc):
            diff = [k for k in _identity(doc) if _identity(old)[k] != _identity(doc)[k]]
            raise BkError("E0620", f"the sweep in `{outdir}` differs from this command: {', '.join(diff)} changed",
                          help="resume with the spec, --set and --sweep arguments it was started with, or start "
                               "a new sweep in another --out")
        for r_old, r_new in zip(old["runs"], doc["runs"]):
            r_new.update({k: v for k, v in r_old.items() if k not in ("overrides", "swept", "dir", "index")})
        doc["groups"] = old.get("groups", [])
    elif doc_path.exists():
        raise BkError("E0620", f"`{outdir}` already holds a sweep", help="pass --resume to continue it, or choose "
                                                                        "another --out")
    if args.dry_run:
        _table(doc, "planned runs (dry run: every combination checked, nothing trained)")
        return 0
    _write_json(doc_path, doc)
    logging.getLogger("bkdsl").setLevel(logging.INFO)
    if not args.quiet:
        print(f"sweep of `{spec}`: {len(runs)} runs → {outdir} (mode {mode})", file=sys.stderr)

    pending = [r for r in runs if not (outdir / r.name / "final.json").exists()]
    for r in runs:
        if r not in pending and doc["runs"][r.index]["status"] == "pending":
            _record(doc, r, json.loads((outdir / r.name / "final.json").read_text(encoding="utf-8")))

    def plan_of(r: SweepRun):
        p = plan_from_compiled(compiled[r.index], args.train, spec_path=spec, overrides=r.overrides, seed=args.seed,
                               device=args.device, precision=args.precision)
        p.record["sweep"] = {"dir": str(outdir), "index": r.index, "runs": len(runs), "swept": r.swept}
        return p

    built: dict[int, Any] = {}   # plans the batched grouping loaded and left to the sequential path

    def sequential(rs: list[SweepRun], reason: str) -> None:
        for r in rs:
            rd = outdir / r.name
            resume = (rd / "checkpoints" / "last.safetensors").exists()
            if not args.quiet:
                print(f"[{r.index + 1}/{len(runs)}] {r.name} ({reason})", file=sys.stderr)
            try:
                final = run_plan(built.pop(r.index, None) or plan_of(r), rd, resume=resume, quiet=args.quiet)
            except BkError as e:
                if e.code != "E0607":
                    raise
                final = json.loads((rd / "final.json").read_text(encoding="utf-8"))
            doc["runs"][r.index]["mode"] = "sequential"
            _record(doc, r, final)
            _write_json(doc_path, doc)

    if mode == "sequential" or not pending:
        sequential(pending, "sequential")
    else:
        _batched(pending, mode, plan_of, sequential, outdir, doc, doc_path, args.quiet, built)
    _write_json(doc_path, doc)
    _table(doc, f"sweep {outdir}")
    return 0


def _batched(pending, mode, plan_of, sequential, outdir, doc, doc_path, quiet, built: dict) -> None:
    """Group the pending runs by :class:`bkdsl.train.batched.Signature` (plus the step a resumed run is
    at and the strategy), merge groups that differ only in linear-layer sizes into one padded grouped
    module (:func:`_merge_padded`), and train each group as one batched step; what cannot be batched goes
    sequential (auto) or is refused with E0621 / E0625 (the forcing modes)."""
    plans, groups, alone, padded = {}, {}, [], {}
    for r in pending:
        p = plan_of(r)
        dev = resolve_device(p.config.device, p.config.spans.get("device", p.config.span))
        if mode == "auto" and dev.type != "cuda":
            alone.append((r, f"sequential: auto batches on CUDA only, this run is on {dev.type}"))
            built[r.index] = p
            continue
        model = Bt.probe_model(p)
        why = Bt.unbatchable_reason(p, model)
        strategy = {"grouped": "grouped", "vmap": "vmap"}.get(mode)    # batched: grouped if it can, else vmap
        if why is None and mode == "auto":
            choice = Bt.auto_strategy(model, dev)
            if choice["strategy"] == "sequential":
                alone.append((r, "sequential: " + choice["reason"]))
                built[r.index] = p
                del model
                continue
            strategy = choice["strategy"]
        if why is not None:
            if mode != "auto":
                raise BkError("E0621", f"run {r.name} cannot be trained in a batched group: {why}",
                              span=p.config.spans.get("model", p.config.span),
                              help="use --sweep-mode sequential or auto")
            alone.append((r, f"sequential: {why}"))
            built[r.index] = p
            continue
        step = _checkpoint_step(outdir / r.name)
        plans[r.index] = p
        groups.setdefault((Bt.signature(p, model), step, strategy), []).append(r)
        if strategy == "grouped" or (strategy is None and Bt.grouping_refusal(model) is None):
            padded[r.index] = (Bt.signature(p, model, pad_linear=True), Bt.linear_sizes(model))
        del model
    groups = _merge_padded(groups, padded)
    for gi, ((sig, step, strategy), rs) in enumerate(groups.items()):
        if mode == "auto" and len(rs) == 1:
            alone.append((rs[0], "sequential: no other run of its shape"))
            built[rs[0].index] = plans.pop(rs[0].index)
            continue
        names = [r.name for r in rs]
        if not quiet:
            print(f"batched group of {len(rs)} runs: {', '.join(names)}", file=sys.stderr)
        g = Bt.BatchedGroup([plans[r.index] for r in rs], [outdir / r.name for r in rs],
                            resume=[step > 0] * len(rs), quiet=quiet, strategy=strategy)
        try:
            finals = g.run()
        except BkError as e:
            if e.code not in ("E0621", "E0625") or mode != "auto":
                raise
            log.warning("%s; these runs train sequentially", e.diagnostic.message)
            alone += [(r, "sequential: " + e.diagnostic.message) for r in rs]
            continue
        doc["groups"].append({"runs": names, "strategy": g.strategy, "resumed_at_step": step,
                              "aggregate_samples_per_s": round(g.aggregate_samples_per_s, 1)})
        for r, final in zip(rs, finals):
            doc["runs"][r.index]["mode"] = "batched"
            doc["runs"][r.index]["strategy"] = g.strategy
            _record(doc, r, final)
        _write_json(doc_path, doc)
    for reason in dict.fromkeys(x for _, x in alone):
        sequential([r for r, x in alone if x == reason], reason)


def _merge_padded(groups: dict, padded: dict) -> dict:
    """Merge groups (grouped strategy, same resume step) whose runs differ only in linear-layer sizes —
    the thesis' d_z — into one grouped module with those layers padded under a mask, while the padding
    costs at most :data:`bkdsl.train.batched.PAD_OVERHEAD_MAX` of the parameters."""
    out: dict = {}
    buckets: dict = {}
    for key, rs in groups.items():
        sig, step, strategy = key
        if strategy == "vmap" or any(r.index not in padded for r in rs):
            out[key] = rs
            continue
        buckets.setdefault((padded[rs[0].index][0], step, strategy), []).append((key, rs))
    for (_, step, strategy), members in buckets.items():
        merged = [r for _, rs in members for r in rs]
        if len(members) > 1 and Bt.padding_overhead([padded[r.index][1] for r in merged]) <= Bt.PAD_OVERHEAD_MAX:
            out[(members[0][0][0], step, "grouped")] = sorted(merged, key=lambda r: r.index)
        else:
            out.update(dict(members))
    return out


def _checkpoint_step(rundir: Path) -> int:
    p = rundir / "checkpoints" / "last.safetensors"
    return int(load_checkpoint(p).state["global_step"]) if p.exists() else 0


def _noted(diags: list[Diagnostic], r: SweepRun) -> list[Diagnostic]:
    what = ", ".join(f"{k}={v}" for k, v in r.swept.items())
    for d in diags:
        d.notes = list(d.notes) + [f"in sweep run {r.name} ({what})"]
    return diags


def _record(doc: dict, r: SweepRun, final: dict) -> None:
    doc["runs"][r.index].update({
        "status": final.get("status"), "test": final.get("test", {}), "best": final.get("best"),
        "epochs": final.get("epochs"), "global_step": final.get("global_step"),
        "wall_time_s": final.get("wall_time_s"), "samples_per_s": final.get("samples_per_s"),
        "units": final.get("units", {})})


def _table(doc: dict, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    runs = doc["runs"]
    keys = [a["key"] for a in doc["axes"]]
    metrics = list(dict.fromkeys(k for r in runs for k in (r.get("test") or {})))
    t = Table(title=title, show_header=True)
    t.add_column("run")
    for k in keys:
        t.add_column(k)
    t.add_column("status")
    for m in metrics:
        unit = next((r.get("units", {}).get(m.split(".", 1)[1]) for r in runs if r.get("units")), None)
        t.add_column(m.split(".", 1)[1] + (f" ({unit})" if unit else ""), justify="right")
    t.add_column("samples/s", justify="right")
    for r in runs:
        st = r.get("status") or "pending"
        test = r.get("test") or {}
        sps = r.get("samples_per_s")
        t.add_row(r["dir"], *[r["swept"][k] for k in keys], st if len(st) < 30 else st[:27] + "…",
                  *[f"{test[m]:.4g}" if m in test else "" for m in metrics],
                  f"{sps:,.0f}" if isinstance(sps, (int, float)) else "")
    Console(stderr=False, width=max(120, 40 + 16 * (len(keys) + len(metrics)))).print(t)
