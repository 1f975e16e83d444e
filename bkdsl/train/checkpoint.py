"""Checkpoints: safetensors weights + a safetensors sidecar, written atomically, never unpickled.

Layout of ``RUNDIR/checkpoints/``::

    last.safetensors                 model weights (state_dict names); header metadata:
                                     format, epoch, global_step, sidecar file name, sidecar sha256
    last-000000120.state.safetensors the sidecar: optimizer state tensors (``optim.*``), normalisation
                                     statistics (``norm.*``), RNG states (``rng.*``, uint8); header
                                     metadata ``state`` = JSON with the data order (epoch, batch index),
                                     optimizer param groups, schedule state, selection state, the
                                     sha256 of the weights' tensors and the run's configuration
    best.safetensors (+ best-….state.safetensors)   the same for the selected checkpoint

Commit protocol (a kill at any instant leaves a loadable pair): the sidecar is written under a fresh
name (the global step is in it) through a temporary file + ``os.replace``; then the weights file, which
names its sidecar, is written the same way — its rename is the commit point; only then is the previous
sidecar deleted. Loading checks both hashes, so a truncated or bit-flipped file, or a weights file whose
sidecar is gone, is reported as E0606 and never loaded. Nothing here calls ``torch.load``.

Confinement: the sidecar a weights header names must be a plain file name of the form
``<name>-<step>.state.safetensors`` that resolves (symlinks followed) to a regular file in the same
directory; anything else (``/dev/zero``, ``../x``, a symlink out) is refused as E0606 before it is
opened. A write that fails (a full disk: ``OSError(ENOSPC)``, a read-only directory) is E0611 — the
run stops and never reports ``completed``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from bkdsl.diagnostics import BkError
from bkdsl.train.cache import tensors_sha256

FORMAT = "bkdsl-checkpoint/1"
SIDECAR_RE = re.compile(r"[A-Za-z0-9_]+-[0-9]{9}\.state\.safetensors")


@dataclass
class Checkpoint:
    weights: dict[str, torch.Tensor]
    tensors: dict[str, torch.Tensor]  # sidecar tensors
    state: dict[str, Any]  # sidecar JSON
    path: Path


def file_sha256(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _atomic_save(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    try:  # make the rename durable (directory entry) where the platform allows
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _detach(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # clone: safetensors refuses tensors that share storage (tied weights); values are what matter
    return {k: v.detach().cpu().contiguous().clone() for k, v in sd.items()}


def save_checkpoint(ckdir: str | Path, name: str, weights: dict[str, torch.Tensor],
                    tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> Path:
    """Write ``ckdir/<name>.safetensors`` and its sidecar with the commit protocol above."""
    ckdir = Path(ckdir)
    weights = _detach(weights)
    tensors = _detach(tensors)
    step = int(state.get("global_step", 0))
    sidecar = ckdir / f"{name}-{step:09d}.state.safetensors"
    state = dict(state, format=FORMAT, weights_sha256=tensors_sha256(weights))
    wpath = ckdir / f"{name}.safetensors"
    try:
        _atomic_save(tensors, sidecar, {"format": FORMAT, "state": json.dumps(state)})
        meta = {"format": FORMAT, "sidecar": sidecar.name, "sidecar_sha256": file_sha256(sidecar),
                "epoch": str(state.get("epoch", 0)), "global_step": str(step)}
        _atomic_save(weights, wpath, meta)
    except OSError as e:
        raise BkError("E0611", f"checkpoint `{wpath}` could not be written: {os.strerror(e.errno) if e.errno else e}",
                      help="free disk space or choose another --out; the previous checkpoint is intact") from None
    for old in ckdir.glob(f"{name}-*.state.safetensors"):
        if old.name != sidecar.name:
            old.unlink(missing_ok=True)
    return wpath


def _corrupt(path: Path, why: str) -> BkError:
    return BkError("E0606", f"checkpoint `{path}` is corrupted or truncated: {why}",
                   help="it was not loaded; resume from another run directory, or delete "
                        f"`{path.parent}` to start this run over")


def _sidecar_path(wpath: Path, name: str | None) -> Path:
    """The sidecar named in a weights header, confined to the checkpoint's own directory (E0606)."""
    if not name:
        raise _corrupt(wpath, "its header names no state sidecar")
    if not SIDECAR_RE.fullmatch(name):
        raise _corrupt(wpath, f"its header names the sidecar `{name[:80]}`, which is not a sidecar file name "
                              "in the checkpoint directory (refused without opening it)")
    side = wpath.parent / name
    try:
        real = Path(os.path.realpath(side))
        st = os.stat(real)
    except OSError:
        raise _corrupt(wpath, f"its state sidecar `{name}` is missing") from None
    if real.parent != Path(os.path.realpath(wpath.parent)) or not stat.S_ISREG(st.st_mode):
        raise _corrupt(wpath, f"its state sidecar `{name}` is not a regular file in `{wpath.parent}`")
    return side


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load and verify a checkpoint pair; E0606 on any inconsistency, E0610 when absent."""
    wpath = Path(path)
    if not wpath.exists():
        raise BkError("E0610", f"no checkpoint at `{wpath}`",
                      help="run without --resume to start training, or point --out at the run directory")
    try:
        with safe_open(str(wpath), framework="pt") as f:
            meta = f.metadata() or {}
        weights = load_file(str(wpath))
    except Exception as e:  # safetensors reports damage through several exception types
        raise _corrupt(wpath, f"{type(e).__name__}: {e}") from None
    if meta.get("format") != FORMAT:
        raise _corrupt(wpath, f"unknown format {meta.get('format')!r} (want {FORMAT})")
    side = _sidecar_path(wpath, meta.get("sidecar"))
    if file_sha256(side) != meta.get("sidecar_sha256"):
        raise _corrupt(side, "the sidecar's hash does not match the one recorded in the weights file")
    try:
        with safe_open(str(side), framework="pt") as f:
            smeta = f.metadata() or {}
        tensors = load_file(str(side))
        state = json.loads(smeta["state"])
    except Exception as e:
        raise _corrupt(side, f"{type(e).__name__}: {e}") from None
    if tensors_sha256(weights) != state.get("weights_sha256"):
        raise _corrupt(wpath, "the weights' hash does not match the one recorded in the sidecar")
    return Checkpoint(weights, tensors, state, wpath)


# -- RNG state as tensors -------------------------------------------------------------------------
def rng_tensors() -> dict[str, torch.Tensor]:
    t = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            t[f"rng.cuda.{i}"] = s
    return t


def restore_rng(tensors: dict[str, torch.Tensor]) -> None:
    if "rng.torch" in tensors:
        torch.set_rng_state(tensors["rng.torch"])
    cuda = sorted(k for k in tensors if k.startswith("rng.cuda."))
    if cuda and torch.cuda.is_available():
        states = [tensors[k] for k in cuda]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)
