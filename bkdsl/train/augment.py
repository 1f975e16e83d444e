"""Augmentations: random symmetries of the data, applied per sample to training batches only.

``flip(axis, p)``        reflect along a per-sample axis with probability p. The axis is an index
                         into the per-sample shape (0 = first axis after the sample dimension) or the
                         name of an axis a source declares (``z`` on the axial grid). Fields that carry
                         the axis are reflected; scalar fields odd under the reflection (Q30 under
                         z → −z, ``FieldInfo.odd_under``) change sign; the rest are invariant.
``time_reverse(p)``      replace a sample by its time reverse with probability p, as the source's
                         declared structure says (bkdsl/train/reversal.py): Hamiltonian pairs
                         (x, x′) → ((q′, −p′), (q, −p)), next-token windows reversed as windows;
                         a source without a declared structure is refused (E0612).

Randomness comes from a generator seeded from (seed, epoch, batch index), never from global RNG state,
so a resumed run draws the same flips as an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from bkdsl.diagnostics import BkError, Span
from bkdsl.components.fields import FieldInfo
from bkdsl.components.reversal import Layout, bind_layout, refuse


@dataclass
class Flip:
    axis: int | str
    p: float = 0.5
    fields: tuple[str, ...] | None = None
    span: Span | None = None

    def targets(self, info: dict[str, FieldInfo], shapes: dict[str, tuple[int, ...]]) -> tuple[dict[str, int], list[str]]:
        """(field → tensor axis to flip (sample dim excluded), fields to negate)."""
        flip, negate = {}, []
        names = self.fields or tuple(shapes)
        for n in names:
            if n not in shapes:
                raise BkError("E0609", f"flip: no field `{n}`", span=self.span,
                              help=f"fields: {', '.join(shapes)}")
            inf = info.get(n) or FieldInfo(n)
            if isinstance(self.axis, str):
                if inf.axes and self.axis in inf.axes:
                    flip[n] = inf.axes.index(self.axis)
                elif self.axis in inf.odd_under:
                    negate.append(n)
            else:
                rank = len(shapes[n])
                max_rank = max(len(s) for s in shapes.values())
                # an integer axis applies to the fields of the highest rank (the grids), unless listed
                if (self.fields is not None or rank == max_rank) and self.axis < rank:
                    flip[n] = self.axis
        if isinstance(self.axis, str) and not flip:
            known = sorted({a for i in info.values() for a in (i.axes or ())})
            raise BkError("E0609", f"flip: no field has an axis named `{self.axis}`", span=self.span,
                          help=f"named axes: {', '.join(known) or 'none'}; or give an integer axis")
        if isinstance(self.axis, int) and not flip:
            raise BkError("E0609", f"flip: no field has axis {self.axis}", span=self.span,
                          help="the axis counts per-sample dimensions from 0")
        return flip, negate

    def __call__(self, batch: dict[str, torch.Tensor], info: dict[str, FieldInfo], g: torch.Generator):
        shapes = {k: tuple(v.shape[1:]) for k, v in batch.items()}
        flip, negate = self.targets(info, shapes)
        b = next(iter(batch.values())).shape[0]
        mask = torch.rand(b, generator=g) < self.p
        out = dict(batch)
        for n, ax in flip.items():
            x = out[n]
            m = mask.to(x.device).reshape(-1, *([1] * (x.ndim - 1)))
            out[n] = torch.where(m, x.flip(ax + 1), x)
        for n in negate:
            x = out[n]
            m = mask.to(x.device).reshape(-1, *([1] * (x.ndim - 1)))
            out[n] = torch.where(m, -x, x)
        return out


@dataclass
class TimeReverse:
    """Replace each sample by its time reverse with probability p, as the data source's declared
    structure says (:mod:`bkdsl.train.reversal`): a Hamiltonian pair (x, x′) → (R x′, R x) with
    R(q, p) = (q, −p); next-token windows (tokens, targets) → (rev targets, rev tokens); plain
    sequences flipped along their time axis. Without a declared structure it refuses (E0612) — at
    ``bkdsl check`` time through the verify pass, and here again if built by hand."""

    p: float = 0.5
    fields: tuple[str, ...] | None = None
    span: Span | None = None
    layout: Layout | None = None
    source: str = "?"

    def bind_source(self, source: Any) -> "TimeReverse":
        """Take the structure the data source declares (E0612 when it declares none or when ``fields``
        names other fields than the structure's)."""
        layout, name = bind_layout(source, self.fields, self.span)
        self.layout, self.source = layout, name
        return self

    def __call__(self, batch: dict[str, torch.Tensor], info: dict[str, FieldInfo], g: torch.Generator):
        if self.layout is None:
            raise refuse(self.source, self.span)
        b = next(iter(batch.values())).shape[0]
        mask = torch.rand(b, generator=g) < self.p
        rev = self.layout.reverse_pair(batch)
        out = dict(batch)
        for n in self.layout.fields:
            x = out[n]
            m = mask.to(x.device).reshape(-1, *([1] * (x.ndim - 1)))
            out[n] = torch.where(m, rev[n], x)
        return out


def bind_to_source(augs: list, source: Any) -> list:
    """Give every augmentation that depends on the data's structure (``bind_source``) its source; the
    verify pass and the runner both call this, so ``bkdsl check`` refuses what the runner would."""
    for a in augs:
        bind = getattr(a, "bind_source", None)
        if callable(bind):
            bind(source)
    return augs


def augment_generator(seed: int, epoch: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed((int(seed) * 6_700_417 + int(epoch) * 65_537 + int(step)) % (2**63 - 1))


def apply_all(augs: list, batch: dict[str, torch.Tensor], info: dict[str, FieldInfo], seed: int, epoch: int,
              step: int) -> dict[str, torch.Tensor]:
    if not augs:
        return batch
    g = augment_generator(seed, epoch, step)
    for a in augs:
        batch = a(batch, info, g)
    return batch
