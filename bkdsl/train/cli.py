"""``bkdsl train SPEC``: the command line of the runner.

    bkdsl train SPEC [--set dotted.key=value]... [--out DIR] [--resume] [--device cpu|cuda|auto]
                     [--seed N] [--precision fp32|bf16] [--train NAME] [--quiet] [--debug]
                     [--sweep KEY=A,B,...]... [--sweep-mode auto|batched|sequential]

``--set`` overrides any key of the data and train blocks (``--set train.epochs=2 --set data.samples=64``);
the value is a bk expression, parsed and type/unit-checked by the compiler like the spec itself (E0206).
The run directory defaults to ``runs/<spec name>``; when that already holds a run and ``--resume`` is not
given, ``runs/<spec name>.1``, ``.2``, … is used instead (nothing is overwritten), and ``--resume``
without ``--out`` continues the most recent of them. Under ``torchrun`` pass ``--out`` (every rank must
name the same directory). ``--sweep`` trains the Cartesian product of its values into numbered run
directories (:mod:`bkdsl.train.sweep`).

The lead's ``bkdsl/cli.py`` registers this with :func:`add_parser` and dispatches to :func:`run`;
``python -m bkdsl.train.cli SPEC ...`` works on its own.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import bkdsl
from bkdsl.diagnostics import BkError
from bkdsl.exitcodes import run_command
from bkdsl.overrides import overrides_of
from bkdsl.train import progress as data_progress
from bkdsl.train import record
from bkdsl.train.loop import run as run_plan
from bkdsl.train.plan import plan_from_compiled
from bkdsl.train.sweep import MODES as SWEEP_MODES
from bkdsl.train.sweep import run_sweep


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("spec", help="the .bk spec file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of the data or train block, e.g. train.epochs=2 (repeatable)")
    p.add_argument("--out", default=None, metavar="DIR", help="run directory (default runs/<spec name>)")
    p.add_argument("--include", action="append", default=[], metavar="DIR",
                   help="a directory imports may read from, besides the spec's own tree and the stdlib (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from checkpoints/last")
    p.add_argument("--allow-changes", action="store_true",
                   help="with --resume: continue although the spec or --set values changed since the run "
                        "started (refused otherwise, E0624); the changes are recorded in run.json's history")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default=None, help="default: the spec's, else auto")
    p.add_argument("--seed", type=int, default=None, help="overrides train.seed")
    p.add_argument("--precision", choices=("fp32", "bf16"), default=None)
    p.add_argument("--train", default=None, metavar="NAME", help="which train block (when the spec has several)")
    p.add_argument("--quiet", action="store_true", help="no progress bar; the log file is still written")
    p.add_argument("--assert-manifolds", action="store_true",
                   help="check after every forward that manifold parameters and outputs stay on their manifolds "
                        "(same as train.assert_manifolds = true)")
    p.add_argument("--dry-run", action="store_true",
                   help="check everything, load the data and run one forward/backward step in a temporary "
                        "directory, then exit (0 when training would start); writes no run")
    p.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    p.add_argument("--sweep", action="append", default=[], metavar="KEY=A,B,...",
                   help="train every combination of these values (repeatable: Cartesian) into OUT/000-…, "
                        "OUT/001-…; KEY is a --set key or ENTRY.ARG (model.d_z, optimizer.lr, loss.alpha)")
    p.add_argument("--sweep-mode", choices=SWEEP_MODES, default="auto",
                   help="batched: compatible runs as one vmapped step; sequential: one after another; "
                        "auto (default): batched on CUDA, else sequential")
    return p


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("train", help="train a spec's model (bkdsl train SPEC)",
                              description=__doc__.split("\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.set_defaults(func=run, fn=run)  # bkdsl/cli.py dispatches on `fn`
    return p


def choose_rundir(spec: str, out: str | None, resume: bool) -> Path:
    if out is not None:
        return Path(out)
    base = Path("runs") / Path(spec).stem
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return base
    candidates = [base] + sorted(base.parent.glob(base.name + ".*"),
                                 key=lambda p: int(p.suffix[1:]) if p.suffix[1:].isdigit() else -1)
    used = [c for c in candidates if (c / "metrics.jsonl").exists() or (c / "checkpoints").exists()]
    if resume:
        return used[-1] if used else base
    if not used:
        return base
    last = used[-1]
    k = int(last.suffix[1:]) + 1 if last != base and last.suffix[1:].isdigit() else 1
    return base.parent / f"{base.name}.{k}"


def run(args: argparse.Namespace) -> int:
    """Run ``bkdsl train``; errors propagate to :func:`bkdsl.exitcodes.run_command`, which prints them
    and maps them to the exit-code table (1 diagnostics, 3 internal error)."""
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    if getattr(args, "sweep", None):
        return run_sweep(args)
    overrides = overrides_of(args.overrides)
    if getattr(args, "assert_manifolds", False):
        overrides["train.assert_manifolds"] = "true"
    spec = args.spec
    if not Path(spec).exists():
        raise BkError("E0002", f"spec file `{spec}` not found", help="check the path")
    if getattr(args, "dry_run", False):
        return _dry_run(spec, overrides, args)
    rundir = choose_rundir(spec, args.out, args.resume)
    if args.resume and not (rundir / "checkpoints" / "last.safetensors").exists():
        raise BkError("E0610", f"nothing to resume in `{rundir}`: no checkpoints/last.safetensors",
                      help="run without --resume to start, or point --out at the run directory")
    if getattr(args, "allow_changes", False) and not args.resume:
        raise BkError("E0206", "--allow-changes is a --resume option", help="add --resume, or drop --allow-changes")
    logging.getLogger("bkdsl").setLevel(logging.INFO)
    c = bkdsl.compile_file(spec, overrides=overrides or None, includes=tuple(getattr(args, "include", None) or ()))
    main = int(os.environ.get("RANK", "0")) == 0
    rec = record.make_record(c, spec_path=spec, overrides=overrides, train=args.train,
                             includes=tuple(getattr(args, "include", None) or ()))
    if args.seed is not None:  # --seed is not a --set: it must reach the hash all the same
        rec["overrides"]["--seed"] = str(args.seed)
        rec["spec_hash"] = record.spec_hash(rec["resolved"], rec["overrides"])
    if main:  # the resume guard runs before the data is loaded or generated (minutes for u236)
        rec = record.start(rundir, rec, resume=args.resume, allow_changes=getattr(args, "allow_changes", False))
    with data_progress.console(not args.quiet):
        plan = plan_from_compiled(c, args.train, spec_path=spec, overrides=overrides, seed=args.seed,
                                  device=args.device, precision=args.precision)
    plan.record.update(record.checkpoint_record(rec))
    if main:
        rec.update(train=plan.name, inputs=list(plan.inputs), fields=record.fields_of(plan.data.dataset.info))
        record.write_run(rundir, rec)
    if main and not args.quiet:
        print(f"training `{plan.name}` from {spec} → {rundir}", file=sys.stderr)
    final = run_plan(plan, rundir, resume=args.resume, quiet=args.quiet)
    if main:
        _summary(final, rundir, quiet=args.quiet)
    return 0


def _dry_run(spec: str, overrides: dict[str, str], args: argparse.Namespace) -> int:
    """All of ``check``, the data loaded and validated, and one optimisation step (forward, backward,
    optimizer) plus the evaluation that follows it, in a temporary directory that is removed."""
    import tempfile
    from dataclasses import replace

    c = bkdsl.compile_file(spec, overrides=overrides)
    plan = plan_from_compiled(c, args.train, spec_path=spec, overrides=overrides, seed=args.seed,
                              device=args.device, precision=args.precision)
    plan = replace(plan, config=replace(plan.config, epochs=None, steps=1, checkpoint_every=None,
                                        time_limit=None, model_plots=[], plots=[]))
    with tempfile.TemporaryDirectory(prefix="bkdsl-dry-run-") as tmp:
        final = run_plan(plan, Path(tmp) / "run", quiet=True)
    if final.get("status") != "completed":
        raise BkError("E0609", f"dry run of `{plan.name}` did not complete: {final.get('status')}")
    print(f"dry run of `{plan.name}` from {spec}: ok (one step, loss {final.get('train_loss', float('nan')):.4g})"
          if "train_loss" in final else f"dry run of `{plan.name}` from {spec}: ok (one step)", file=sys.stderr)
    return 0


def _summary(final: dict, rundir: Path, quiet: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    units = final.get("units", {})
    t = Table(title=f"test metrics ({final['test_weights']} weights)", show_header=True)
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_column("unit")
    for k, v in final["test"].items():
        name = k.split(".", 1)[1]
        t.add_row(name, f"{v:.6g}", units.get(name, "") or "")
    con = Console(stderr=False)
    if not quiet and final["test"]:  # a spec that declares no metric gets no empty table
        con.print(t)
    con.print(f"{final['status']}: {final['epochs']} epochs, {final['wall_time_s']:.1f} s, "
              f"{final['samples_per_s']:.0f} samples/s on {final['device']} → {rundir}")


def main(argv: list[str] | None = None) -> int:
    """``python -m bkdsl.train.cli SPEC ...`` = ``bkdsl train SPEC ...`` (same exit codes)."""
    p = add_arguments(argparse.ArgumentParser(prog="bkdsl train", description="train a spec's model"))
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE_OR_FILE")
    p.set_defaults(fn=run, command="train")
    return run_command(p.parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
