"""Metrics reported in the units a spec declares: ``mae(E) in MeV``, ``rmse(rho) in fm^-3``, ``bpb(targets)``.

A metric compares a model output with the data field of the same name (``mae(E)`` reads
``outputs["E"]`` and ``batch["E"]``; ``output = name`` picks another output). Predictions are first
mapped back through the inverse normalisation, so a metric sees physical values in the field's unit; the
result is then converted to the declared unit with pint (a field in keV reported ``in MeV`` is scaled by
1e-3; a unit of another dimension is E0604 before training starts).

Each metric accumulates (sum, count) tensors over an evaluation pass — additive, so data-parallel ranks
combine them with one all-reduce — and turns them into a number at the end:

``mae``        mean |p − t|                           unit of the field
``rmse``       sqrt(mean (p − t)²)                    unit of the field
``mse``        mean (p − t)²                          unit of the field, squared
``max_error``  max |p − t|                            unit of the field
``rel_l2``     mean over samples of ‖p − t‖ / ‖t‖     dimensionless
``accuracy``   fraction of argmax(logits) == target   dimensionless
``cross_entropy`` mean −log p(target)                 nats
``bpb``        cross entropy / ln 2                   bits per byte (byte-level targets)
``perplexity`` exp(cross entropy)                     dimensionless
"""

from __future__ import annotations

from dataclasses import fields
from typing import Callable

import torch
import torch.nn.functional as F

from bkdsl.components.metric_specs import (DIMENSIONLESS, METRICS, PARITY_METRICS, MetricSpec,  # noqa: F401
                                           ParitySpec, unit_factor)  # the declarations, torch-free (re-exported)
from bkdsl.diagnostics import BkError


class Metric(MetricSpec):
    """A declared metric (:class:`~bkdsl.components.metric_specs.MetricSpec`: kind, field, output, unit,
    factor) that accumulates over an evaluation pass."""

    def accumulate(self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(sum-or-max, count) over one batch of physical values, as float64 tensors."""
        if self.fallback is not None:  # a per-batch mean from the compiler's MetricProgram: weight by batch size
            v = self.fallback(out, batch)
            v = v[0] if isinstance(v, tuple) else v
            n = next(iter(batch.values())).shape[0]
            dev = next(iter(batch.values())).device
            return (torch.as_tensor(float(v), dtype=torch.float64, device=dev) * n,
                    torch.tensor(float(n), dtype=torch.float64, device=dev))
        if self.output not in out:
            raise BkError("E0609", f"metric `{self.name}`: the model has no output `{self.output}`",
                          span=self.span, help=f"outputs: {', '.join(out)}")
        p = out[self.output]
        t = batch[self.field]
        if self.kind in ("accuracy", "cross_entropy", "bpb", "perplexity"):
            logits = p.double().reshape(-1, p.shape[-1])
            tgt = t.reshape(-1).long()
            n = torch.tensor(float(tgt.numel()), dtype=torch.float64, device=p.device)
            if self.kind == "accuracy":
                return (logits.argmax(-1) == tgt).double().sum(), n
            return F.cross_entropy(logits, tgt, reduction="sum"), n
        p = p.double().reshape(t.shape)
        d = p - t.double()
        n = torch.tensor(float(d.numel()), dtype=torch.float64, device=d.device)
        if self.kind == "mae":
            return d.abs().sum(), n
        if self.kind in ("rmse", "mse"):
            return (d * d).sum(), n
        if self.kind == "max_error":
            return d.abs().max(), n
        if self.kind == "rel_l2":
            b = d.shape[0]
            num = d.reshape(b, -1).norm(dim=1)
            den = t.double().reshape(b, -1).norm(dim=1).clamp_min(1e-300)
            return (num / den).sum(), torch.tensor(float(b), dtype=torch.float64, device=d.device)
        raise AssertionError(self.kind)


# -- parity-symmetry metrics (thesis eqs. 4.15–4.16): they need the model, not just (outputs, batch) --------
class ParityMetric(ParitySpec):
    """The model evaluated on a batch and on its reflection along ``axis``; compares the two predictions.

    ``parity_mae(E, axis = z) in MeV``        M_E = mean |D_E(E[ρ]) − D_E(E[ρ_F])|              (eq. 4.15)
    ``parity_l1_integral(rho, axis = z, measure = cylinder(dr, dr))``
                                            M_ρ = mean ∫d³r |D_ρ(E[ρ]) − F[D_ρ(E[ρ_F])]|        (eq. 4.16)

    The reflection F acts on the model's *inputs* (before normalisation): fields that carry the axis are
    flipped along it, scalar fields odd under it (``FieldInfo.odd_under``, e.g. Q30 under z) change sign.
    For ``parity_l1_integral`` the second prediction is reflected back before the difference, so an exactly
    equivariant model scores 0. Both are evaluated on physical (de-normalised) values. ``axis`` is a named
    axis of the data (``z``) or a tensor dimension counted with the batch axis (``axis = 3`` for
    [B, 1, n_r, n_z]). The runner evaluates the flipped batch once per batch for all parity metrics
    (:meth:`bkdsl.train.loop.Trainer.evaluate`).
    """

    def accumulate_pair(self, out: dict[str, torch.Tensor], out_flipped: dict[str, torch.Tensor],
                        flip_back: Callable[[str, torch.Tensor], torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.output not in out:
            raise BkError("E0609", f"metric `{self.name}`: the model has no output `{self.output}`", span=self.span,
                          help=f"outputs: {', '.join(out)}")
        p, q = out[self.output].double(), out_flipped[self.output].double()
        if self.kind == "parity_mae":
            d = (p - q).abs()
            return d.sum(), torch.tensor(float(d.numel()), dtype=torch.float64, device=d.device)
        q = flip_back(self.output, q)
        b = p.shape[0]
        v = self.term(p, q)
        return (torch.as_tensor(v, dtype=torch.float64, device=p.device) * b,
                torch.tensor(float(b), dtype=torch.float64, device=p.device))

    def accumulate(self, out, batch):  # pragma: no cover - the loop calls accumulate_pair
        raise BkError("X0001", f"metric `{self.name}` needs the model: call accumulate_pair")


def flip_axis_of(axis: int | str, name: str, x: torch.Tensor, info: dict) -> tuple[int | None, bool]:
    """(tensor dimension to flip or None, negate?) for field ``name`` of batch tensor ``x`` under ``axis``."""
    if isinstance(axis, int):
        return (axis if 0 < axis < x.ndim else None), False
    inf = info.get(name)
    if inf is not None and inf.axes and axis in inf.axes and len(inf.axes) == x.ndim - 1:
        return inf.axes.index(axis) + 1, False
    if inf is not None and axis in (inf.odd_under or ()):
        return None, True
    return None, False


def reflect(batch: dict[str, torch.Tensor], axis: int | str, info: dict, names=None) -> dict[str, torch.Tensor]:
    """The batch reflected along ``axis`` (flip fields carrying it, negate fields odd under it)."""
    out = dict(batch)
    for n in (names if names is not None else list(batch)):
        x = batch[n]
        if not x.is_floating_point():
            continue
        dim, neg = flip_axis_of(axis, n, x, info)
        if dim is not None:
            out[n] = x.flip(dim)
        elif neg:
            out[n] = -x
    return out


def runtime(spec: MetricSpec | ParitySpec | object) -> object:
    """The accumulating metric of a declared one (what ``bkdsl.verify.plan.metric`` returns); a metric
    that already accumulates (a user component's ``make``) is returned as it is."""
    cls = {MetricSpec: Metric, ParitySpec: ParityMetric}.get(type(spec))
    if cls is None:
        return spec
    return cls(**{f.name: getattr(spec, f.name) for f in fields(spec)})
