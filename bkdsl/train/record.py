"""What a run was made from: the resolved spec, its hash, the environment — and the resume guard.

``bkdsl train`` writes, next to the checkpoints of a run directory:

``run.json``       the record: spec path, ``spec_hash``, overrides, the train block's name, the data
                   fields (shape and unit of each), versions (bkdsl, torch, python, …), the git commit of
                   the spec's repository and of bkdsl's own checkout when they are git work trees (with a
                   ``dirty`` flag), the host, the command line, and ``history`` — one entry per start or
                   resume, with the changes a ``--resume --allow-changes`` accepted;
``resolved.json``  the resolved spec: the compiled IR (models, data sources, train blocks, losses) with
                   every value evaluated and the overrides applied, source positions left out;
``spec/``          the text of every source file the compiler read (the spec, its imports), as read.

The **spec hash** is sha256 over the canonical JSON of (resolved spec, overrides). Source positions are
left out, so a comment or a blank line does not change it; any value that reaches the run does (a learning
rate, a data seed and so the split, a layer width, a loss coefficient, a ``--set``).

Resume guard (:func:`check_resume`): ``--resume`` compares the hash recorded in the run directory with the
one of the spec as it is now; a difference is refused (E0624) with the list of resolved keys that changed,
unless ``allow_changes`` — then the run continues and the accepted changes are appended to ``history``.
A run directory with checkpoints but no recorded hash (written by an older bkdsl, or ``run.json`` lost)
fails closed: it is refused too, since nothing shows the spec is the same.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from bkdsl.diagnostics import BkError

RECORD_FORMAT = "bkdsl-run/1"
#: how many changed keys the E0624 message lists before "… and N more"
SHOWN_CHANGES = 12


# -- the resolved spec ----------------------------------------------------------------------------
def _strip_positions(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _strip_positions(x) for k, x in v.items() if k != "span"}
    if isinstance(v, (list, tuple)):
        return [_strip_positions(x) for x in v]
    return v


def resolved_spec(compiled: Any) -> dict:
    """The compiled program as plain JSON without source positions; loss expressions as their AST text."""
    j = json.loads(json.dumps(compiled.ir.to_json(), default=str))
    j.pop("file", None)  # where the spec lies is recorded separately; moving it changes no value
    losses = getattr(compiled.ir, "losses", {}) or {}
    j["losses"] = {name: {"formals": list(l.formals), "defaults": repr(l.defaults), "expr": repr(l.expr)}
                   for name, l in losses.items()}
    return _strip_positions(j)


def canonical(v: Any) -> str:
    return json.dumps(v, sort_keys=True, separators=(",", ":"), default=str)


def spec_hash(resolved: dict, overrides: dict[str, str] | None) -> str:
    """sha256 of the canonical JSON of (resolved spec, overrides)."""
    return hashlib.sha256(canonical({"resolved": resolved, "overrides": dict(overrides or {})}).encode()).hexdigest()


def flatten(v: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted paths → leaf values (lists index as ``key[i]``)."""
    out: dict[str, Any] = {}
    if isinstance(v, dict):
        for k, x in v.items():
            out.update(flatten(x, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(v, list):
        if not v:
            out[prefix] = []
        for i, x in enumerate(v):
            out.update(flatten(x, f"{prefix}[{i}]"))
    else:
        out[prefix] = v
    return out


def changes(old: dict, new: dict) -> list[str]:
    """``key: old → new`` lines for every resolved key that differs between two records' resolved specs
    and overrides (keys only in one of them show ``(absent)``)."""
    a = flatten({"spec": old.get("resolved", {}), "overrides": old.get("overrides", {})})
    b = flatten({"spec": new.get("resolved", {}), "overrides": new.get("overrides", {})})
    out = []
    for k in sorted(set(a) | set(b)):
        if a.get(k, "(absent)") != b.get(k, "(absent)"):
            out.append(f"{k}: {_short(a.get(k, '(absent)'))} → {_short(b.get(k, '(absent)'))}")
    return out


def _short(v: Any) -> str:
    s = v if isinstance(v, str) else json.dumps(v, default=str)
    return s if len(s) <= 60 else s[:57] + "..."


# -- the environment ------------------------------------------------------------------------------
def git_commit(path: str | Path) -> dict | None:
    """``{"commit", "dirty"}`` of the git work tree holding ``path``; None when there is none (or no git)."""
    d = Path(path)
    d = d if d.is_dir() else d.parent
    try:
        head = subprocess.run(["git", "-C", str(d), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if head.returncode != 0:
            return None
        st = subprocess.run(["git", "-C", str(d), "status", "--porcelain", "--untracked-files=no"],
                            capture_output=True, text=True, timeout=5)
        return {"commit": head.stdout.strip(), "dirty": bool(st.stdout.strip()) if st.returncode == 0 else None}
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str]:
    """Installed versions of bkdsl, Python and the packages a run depends on (read from the package
    metadata, so nothing is imported; a package that is not installed is left out)."""
    from importlib import metadata

    import bkdsl

    v = {"bkdsl": bkdsl.__version__, "python": platform.python_version()}
    for dist in ("torch", "triton", "geoopt", "numpy", "safetensors", "lark", "pydantic"):
        try:
            v[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return v


def environment(spec_path: str | None) -> dict:
    import bkdsl

    return {
        "versions": versions(),
        "git": {"spec": git_commit(spec_path) if spec_path else None,
                "bkdsl": git_commit(Path(bkdsl.__file__).parent)},
        "host": {"hostname": socket.gethostname(), "platform": platform.platform(),
                 "machine": platform.machine(), "cpus": os.cpu_count()},
        "argv": list(sys.argv),
    }


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def make_record(compiled: Any, *, spec_path: str | None, overrides: dict[str, str] | None,
                train: str | None, includes: tuple[str, ...] = ()) -> dict:
    """The record of a run about to start from ``compiled`` (see the module docstring)."""
    resolved = resolved_spec(compiled)
    return {"format": RECORD_FORMAT, "spec": spec_path,
            "spec_abs": str(Path(spec_path).resolve()) if spec_path else None, "includes": list(includes),
            "train": train, "overrides": dict(overrides or {}),
            "spec_hash": spec_hash(resolved, overrides), "resolved": resolved,
            "sources": dict(getattr(compiled, "sources", {}) or {}), **environment(spec_path)}


# -- run directory files --------------------------------------------------------------------------
def read_run(rundir: str | Path) -> dict | None:
    """``run.json`` of a run directory merged with its ``resolved.json``; None when absent."""
    p = Path(rundir) / "run.json"
    if not p.exists():
        return None
    try:
        rec = json.loads(p.read_text(encoding="utf-8"))
        rp = Path(rundir) / "resolved.json"
        if rp.exists():
            rec["resolved"] = json.loads(rp.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise BkError("E0622", f"`{p}` is unreadable: {type(e).__name__}: {e}",
                      help="the run record is damaged; retrain, or restore run.json from a backup") from None
    if not isinstance(rec, dict):
        raise BkError("E0622", f"`{p}` is not a run record (a JSON object)", help="retrain into a fresh directory")
    return rec


def write_run(rundir: str | Path, record: dict) -> None:
    """Write ``run.json`` (without the resolved spec and sources), ``resolved.json`` and ``spec/``."""
    rundir = Path(rundir)
    rundir.mkdir(parents=True, exist_ok=True)
    slim = {k: v for k, v in record.items() if k not in ("resolved", "sources")}
    _atomic_text(rundir / "run.json", json.dumps(slim, indent=2, default=str) + "\n")
    if "resolved" in record:
        _atomic_text(rundir / "resolved.json", json.dumps(record["resolved"], indent=1, sort_keys=True) + "\n")
    srcdir = rundir / "spec"
    used: set[str] = set()
    for i, (name, text) in enumerate((record.get("sources") or {}).items()):
        if name.startswith("<"):  # an override's pseudo-file: the overrides are in run.json
            continue
        base = Path(name).name
        fname = base if base not in used else f"{i:02d}-{base}"  # the spec itself keeps its name
        used.add(fname)
        srcdir.mkdir(exist_ok=True)
        _atomic_text(srcdir / fname, text)


def _atomic_text(p: Path, text: str) -> None:
    tmp = p.with_name(p.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, p)
    except OSError as e:
        raise BkError("E0611", f"cannot write `{p}`: {os.strerror(e.errno) if e.errno else type(e).__name__}",
                      help="point --out at a writable directory") from None


def start(rundir: str | Path, record: dict, *, resume: bool, allow_changes: bool = False) -> dict:
    """Record a start (fresh run) or check and record a resume; returns the record now in force.

    A resume whose spec hash differs from the recorded one raises E0624 listing the changes, unless
    ``allow_changes``; a resume with no recorded hash is refused the same way (fail closed)."""
    entry = {"event": "resume" if resume else "start", "time": now(), "spec_hash": record["spec_hash"],
             "overrides": record.get("overrides", {})}
    history: list = []
    if resume:
        old = read_run(rundir)
        if old is None or not old.get("spec_hash"):
            if not allow_changes:
                raise BkError("E0624", f"cannot resume `{rundir}`: it records no spec hash (no run.json), so "
                                       "nothing shows the spec is the one it was trained with",
                              help="start a new run directory, or pass `--resume --allow-changes` to resume "
                                   "anyway (recorded in run.json's history)")
            entry["allowed_changes"] = ["(no recorded spec hash)"]
        else:
            history = list(old.get("history", []))
            if old["spec_hash"] != record["spec_hash"]:
                diff = changes(old, record) or ["(a value outside the resolved spec and overrides)"]
                if not allow_changes:
                    shown = diff[:SHOWN_CHANGES]
                    more = f"; … and {len(diff) - len(shown)} more" if len(diff) > len(shown) else ""
                    raise BkError("E0624", f"cannot resume `{rundir}`: the spec changed since the run was "
                                           f"started ({len(diff)} change{'s' * (len(diff) != 1)}): "
                                           + "; ".join(shown) + more,
                                  help="resume with the spec and --set values the run was started with, start a "
                                       "new run directory, or pass `--resume --allow-changes` to continue with "
                                       "the changes (they are recorded in run.json's history)")
                entry["allowed_changes"] = diff
                entry["previous_spec_hash"] = old["spec_hash"]
    record = dict(record, history=history + [entry])
    write_run(rundir, record)
    return record


def checkpoint_record(record: dict) -> dict:
    """The part of the record a checkpoint and final.json carry (small: no resolved spec, no sources)."""
    return {k: record[k] for k in ("spec", "train", "overrides", "spec_hash") if k in record}


def fields_of(info: dict) -> dict[str, dict]:
    """Per-sample shape, unit and axis names of each data field (from the dataset's ``FieldInfo``)."""
    out = {}
    for name, inf in info.items():
        out[name] = {"shape": list(inf.shape) if inf.shape is not None else None, "unit": inf.unit,
                     "axes": list(inf.axes) if getattr(inf, "axes", None) else None}
    return out
