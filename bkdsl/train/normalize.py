"""Normalisation of data fields: fitted on the training split, stored with the checkpoint, inverted
when metrics are reported.

``minmax``   x' = (x − min) / (max − min)          ∈ [0, 1] on the training split
``standard`` x' = (x − mean) / std                  zero mean, unit variance on the training split

Statistics are per field (one scalar over every element of the training split), so a density keeps its
shape and a grid keeps its relative values. Integer fields (tokens, labels) are never normalised. A
constant field (max = min, std = 0) would divide by zero; its scale is set to 1, which leaves the field
shifted only — documented here, where the guard lives.
"""

from __future__ import annotations

import torch

from bkdsl.diagnostics import BkError, Span

KINDS = ("none", "minmax", "standard")


class Normalizer:
    """Per-field affine maps x' = (x − shift) / scale, fitted on the training split."""

    def __init__(self, kind: str = "none", fields: list[str] | None = None, span: Span | None = None):
        if kind not in KINDS:
            raise BkError("E0609", f"unknown normalisation `{kind}`", span=span,
                          help="use `normalize = minmax`, `standard` or `none`")
        self.kind = kind
        self.only = list(fields) if fields else None
        self.shift: dict[str, torch.Tensor] = {}
        self.scale: dict[str, torch.Tensor] = {}

    def fit(self, train: dict[str, torch.Tensor]) -> "Normalizer":
        self.shift, self.scale = {}, {}
        if self.kind == "none":
            return self
        for name, x in train.items():
            if not x.is_floating_point() or (self.only is not None and name not in self.only):
                continue
            x64 = x.double()
            if self.kind == "minmax":
                lo, hi = x64.min(), x64.max()
                shift, scale = lo, hi - lo
            else:
                shift, scale = x64.mean(), x64.std(unbiased=False)
            if float(scale) == 0.0:
                scale = torch.ones((), dtype=torch.float64)
            self.shift[name], self.scale[name] = shift.reshape(()), scale.reshape(())
        return self

    def apply(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = dict(batch)
        for name in self.shift:
            if name in out:
                x = out[name]
                out[name] = ((x - self.shift[name].to(x)) / self.scale[name].to(x))
        return out

    def invert(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """Map a normalised value of field ``name`` (a prediction) back to the field's unit."""
        if name not in self.shift:
            return x
        return x * self.scale[name].to(x) + self.shift[name].to(x)

    # -- checkpoint state: tensors + JSON, never pickled --------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        t = {}
        for name in self.shift:
            t[f"norm.{name}.shift"] = self.shift[name].clone()
            t[f"norm.{name}.scale"] = self.scale[name].clone()
        return t

    def state_json(self) -> dict:
        return {"kind": self.kind, "fields": sorted(self.shift), "only": self.only}

    def load_state(self, meta: dict, tensors: dict[str, torch.Tensor]) -> "Normalizer":
        self.kind = meta["kind"]
        self.only = meta.get("only")
        self.shift = {n: tensors[f"norm.{n}.shift"] for n in meta["fields"]}
        self.scale = {n: tensors[f"norm.{n}.scale"] for n in meta["fields"]}
        return self
