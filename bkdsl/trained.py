"""A trained run as a model in physical units: :func:`load_run`.

The runner trains on normalised fields — x' = (x − shift) / scale per field, fitted on the training split
(:mod:`bkdsl.train.normalize`) — and keeps the statistics in the checkpoint's state sidecar. Loading
``best.safetensors`` into ``compile_file(...).module`` therefore gives a model of normalised values.
:class:`PhysicalModel` folds the normalisation in:

    y_o = f(x'_1, …, x'_n)_o · scale_o + shift_o      (outputs named like a normalised data field)
    x'_i = (x_i − shift_i) / scale_i                  (inputs named like a normalised data field)

so its inputs and outputs are in the data's physical units (``rho`` in fm^-3, ``E`` in MeV); outputs
with no data field of their name (a latent ``z``) are returned as the network computes them. The units
are in ``model.units`` (``{"inputs": {name: unit}, "outputs": {name: unit}}``) and the run's record in
``model.record``.

:func:`load_run` rebuilds the network from the run directory's record (:mod:`bkdsl.train.record`): the
spec is compiled again with the recorded overrides, first from its original path and, if that file is gone
or changed, from the copy in ``RUNDIR/spec/``; the result must reproduce the recorded spec hash, else
E0622 lists what differs (a model rebuilt from another spec would load the weights into the wrong
network, or fail obscurely). The weights are read with the checkpoint's own hash checks (E0606).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from bkdsl.diagnostics import BkError
from bkdsl.train import record as R
from bkdsl.train.checkpoint import load_checkpoint


class PhysicalModel(torch.nn.Module):
    """``model`` with the run's input normalisation and output de-normalisation folded in (see module doc).

    ``forward(**inputs)`` takes the model's inputs by name (physical units) and returns a dict of outputs
    (physical units where the output is a normalised data field). The statistics are float64 buffers
    ``shift__<field>`` / ``scale__<field>``, applied in the input's dtype."""

    def __init__(self, model: torch.nn.Module, inputs: list[str], outputs: list[str],
                 stats: dict[str, tuple[torch.Tensor, torch.Tensor]], units: dict[str, dict[str, str | None]],
                 record: dict | None = None):
        super().__init__()
        self.model = model
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.normalized = sorted(stats)
        for name, (shift, scale) in stats.items():
            self.register_buffer(f"shift__{name}", torch.as_tensor(shift, dtype=torch.float64).reshape(()))
            self.register_buffer(f"scale__{name}", torch.as_tensor(scale, dtype=torch.float64).reshape(()))
        self.units = units
        self.record = dict(record or {})

    def _stat(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        return getattr(self, f"shift__{name}"), getattr(self, f"scale__{name}")

    def forward(self, **inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        ins = {}
        for name in self.inputs:
            x = inputs[name]
            if name in self.normalized and x.is_floating_point():
                shift, scale = self._stat(name)
                x = (x - shift.to(x.dtype)) / scale.to(x.dtype)
            ins[name] = x
        out = self.model(**ins)
        res = {}
        for name in self.outputs:
            y = out[name]
            if name in self.normalized and y.is_floating_point():
                shift, scale = self._stat(name)
                y = y * scale.to(y.dtype) + shift.to(y.dtype)
            res[name] = y
        return res

    def normalization(self) -> dict[str, dict[str, float]]:
        """``{field: {"shift", "scale"}}`` of the folded normalisation (for export metadata)."""
        return {n: {"shift": float(self._stat(n)[0]), "scale": float(self._stat(n)[1])} for n in self.normalized}


def _compile_recorded(rec: dict, rundir: Path) -> tuple[Any, str]:
    """Compile the recorded spec with the recorded overrides so that it reproduces the recorded hash."""
    import bkdsl

    overrides = {k: v for k, v in (rec.get("overrides") or {}).items() if not k.startswith("--")}
    includes = tuple(rec.get("includes") or ())
    candidates = []
    for p in (rec.get("spec_abs"), rec.get("spec")):
        if p and Path(p).is_file() and Path(p) not in candidates:
            candidates.append(Path(p))
    copy = rundir / "spec" / Path(rec.get("spec") or "spec.bk").name
    if copy.is_file():
        candidates.append(copy)
    if not candidates:
        raise BkError("E0622", f"cannot rebuild the model of `{rundir}`: the spec `{rec.get('spec')}` is gone and "
                               f"`{copy}` holds no copy", help="restore the spec file the run was trained from")
    tried = []
    for path in candidates:
        try:
            c = bkdsl.compile_file(str(path), overrides=overrides or None, includes=includes)
        except Exception as e:  # a spec that no longer compiles: try the next candidate, report all
            tried.append(f"{path}: does not compile ({type(e).__name__}: {str(e).splitlines()[0][:120]})")
            continue
        new = {"resolved": R.resolved_spec(c), "overrides": rec.get("overrides") or {}}
        if R.spec_hash(new["resolved"], new["overrides"]) == rec.get("spec_hash"):
            return c, str(path)
        diff = R.changes(rec, new)
        tried.append(f"{path}: differs ({'; '.join(diff[:4]) or 'outside the resolved spec'})")
    raise BkError("E0622", f"cannot rebuild the model of `{rundir}` as it was trained: " + " | ".join(tried),
                  help="check out the spec (and bkdsl) version the run was trained with — run.json records "
                       "the git commits")


def load_run(rundir: str | Path, *, weights: str = "best", device: str | torch.device = "cpu") -> PhysicalModel:
    """The trained model of a run directory, inputs and outputs in physical units (see module doc).

    ``weights``: ``"best"`` (the selected checkpoint; ``last`` when the run selected none) or ``"last"``.
    The model is in eval mode on ``device``. Raises E0622 when ``rundir`` is not a loadable run, E0606 when a
    checkpoint is damaged."""
    rundir = Path(rundir)
    if weights not in ("best", "last"):
        raise BkError("E0622", f"unknown weights `{weights}`", help="use weights='best' or weights='last'")
    rec = R.read_run(rundir)
    if rec is None or not rec.get("spec_hash"):
        raise BkError("E0622", f"`{rundir}` is not a run directory of this bkdsl: no run.json with a spec hash",
                      help="point at a directory written by `bkdsl train` (it holds run.json and checkpoints/)")
    ckdir = rundir / "checkpoints"
    path = ckdir / f"{weights}.safetensors"
    if weights == "best" and not path.exists():
        path = ckdir / "last.safetensors"
    if not path.exists():
        raise BkError("E0622", f"`{rundir}` holds no checkpoint ({path.name})",
                      help="the run stopped before its first checkpoint; train it (again)")
    c, _ = _compile_recorded(rec, rundir)
    mval = c.train_block(name=rec.get("train")).entries["model"].value
    net = c.build_model(mval)
    ck = load_checkpoint(path)
    try:
        net.load_state_dict(ck.weights)
    except RuntimeError as e:
        raise BkError("E0606", f"checkpoint `{path}` does not fit the rebuilt model: {str(e).splitlines()[0]}",
                      help="the run directory's files do not belong together; retrain") from None
    norm = ck.state.get("normalize") or {"fields": []}
    stats = {n: (ck.tensors[f"norm.{n}.shift"], ck.tensors[f"norm.{n}.scale"]) for n in norm.get("fields", [])}
    sig = c.model_signature(mval)
    fields = rec.get("fields") or {}

    def unit(name: str, declared: Any) -> str | None:
        return (fields.get(name) or {}).get("unit") or (str(declared) if declared else None)

    units = {"inputs": {n: unit(n, t.unit) for n, t in sig.inputs.items()},
             "outputs": {n: unit(n, t.unit) if n in fields else (str(t.unit) if t.unit else None)
                         for n, t in sig.outputs.items()}}
    model = PhysicalModel(net, list(sig.inputs), list(sig.outputs), stats, units,
                          record={**{k: rec.get(k) for k in ("spec", "train", "overrides", "spec_hash")},
                                  "weights": path.name, "epoch": ck.state.get("epoch"),
                                  "global_step": ck.state.get("global_step")})
    model.input_types = dict(sig.inputs)  # ValueType per input: shape (symbolic dims), dtype, manifold, unit
    return model.to(device).eval()


def example_inputs(model: PhysicalModel, batch: int = 3) -> dict[str, torch.Tensor]:
    """Random inputs of the model's declared types (symbolic batch dims = ``batch``), for tracing an export."""
    from types import SimpleNamespace

    from bkdsl.lower.fx import example_inputs as fx_example

    return fx_example(SimpleNamespace(inputs=model.input_types), {"B": batch, "batch": batch})
