"""Datasets as the runner sees them: named fields, validated, split, batched.

A data source (``file(...)``, ``nuclear_densities(...)``, ``text_bytes(...)``) produces a
:class:`Dataset`: a dict of tensors that share their first dimension (the sample index) plus a
:class:`FieldInfo` per field saying what the spec declared about it (name in the file, per-sample
shape, dtype, unit). :func:`validate` checks the tensors against the declarations *before* training
starts, so a wrong file fails in a second with a diagnostic that points at the data block and names
the field, not an hour later with a shape error inside the model.

Splits are deterministic: one ``torch.Generator`` seeded from the data seed permutes the samples (or the
groups, when a source declares them: ``text_bytes`` holds out whole files), and the fractions cut the
permutation. The epoch order is a pure function of (seed, epoch) — see :func:`epoch_order` — so the
data-order state of a run is just (epoch, batch index), which is what makes ``--resume`` exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from bkdsl.components.fields import SPLITS, FieldInfo, check_split  # noqa: F401  (torch-free; re-exported)
from bkdsl.diagnostics import BkError, Span


@dataclass
class Dataset:
    """Named tensors sharing the sample dimension, with their declarations.

    ``groups`` (optional, [N] int64) assigns each sample to a group that a split keeps together.
    """

    fields: dict[str, torch.Tensor]
    info: dict[str, FieldInfo]
    groups: torch.Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return next(iter(self.fields.values())).shape[0] if self.fields else 0

    def subset(self, idx: torch.Tensor) -> "Dataset":
        return Dataset({k: v[idx] for k, v in self.fields.items()}, dict(self.info),
                       None if self.groups is None else self.groups[idx], dict(self.meta))


def validate(ds: Dataset, *, span: Span | None = None, source: str = "data") -> None:
    """Check every field against its declaration: presence, shape, finiteness, common length.

    Missing fields and unit mismatches are found by the sources themselves (they know the file);
    this checks what holds for every source. Raises :class:`BkError` E0602 / E0603.
    """
    n = None
    for name, x in ds.fields.items():
        inf = ds.info.get(name) or FieldInfo(name)
        where = inf.span or span
        if x.ndim == 0:
            raise BkError("E0602", f"field `{name}` of {source} is a scalar, not one value per sample",
                          span=where, help="store the field with a leading sample dimension [N, ...]")
        if n is None:
            n, first = x.shape[0], name
        elif x.shape[0] != n:
            raise BkError("E0602", f"field `{name}` of {source} has {x.shape[0]} samples but `{first}` has {n}",
                          span=where, help="every field needs the same number of samples (first dimension)")
        if inf.shape is not None and tuple(x.shape[1:]) != tuple(inf.shape):
            raise BkError("E0602",
                          f"field `{name}` of {source} has per-sample shape {list(x.shape[1:])}, "
                          f"declared {list(inf.shape)}",
                          span=where, label=f"`{name}` declared here",
                          help=f"fix the declaration `shape = {list(x.shape[1:])}` or regenerate the file")
        if x.is_floating_point() or x.is_complex():
            finite = torch.isfinite(x)
            if not bool(finite.all()):
                bad = (~finite).reshape(x.shape[0], -1).any(dim=1).nonzero().flatten()
                n_nan = int(torch.isnan(x).sum())
                n_inf = int((~finite).sum()) - n_nan
                raise BkError("E0603",
                              f"field `{name}` of {source} holds {n_nan} NaN and {n_inf} Inf values "
                              f"in {len(bad)} samples (first: sample {int(bad[0])})",
                              span=where, label=f"`{name}` declared here",
                              help="clean or drop these samples before training; a single NaN poisons "
                                   "the normalisation statistics and every gradient")
    if n == 0:
        raise BkError("E0602", f"{source} has no samples", span=span, help="check the file")


def split_indices(n: int, fractions: list[float], seed: int, groups: torch.Tensor | None = None,
                  span: Span | None = None) -> dict[str, torch.Tensor]:
    """Deterministic train/val/test indices from ``seed``.

    ``fractions`` has 1 to 3 entries (missing ones are 0) summing to at most 1 (+1e-6); with ``groups``
    the fractions apply to groups and whole groups go to one split. Each split asked for (fraction > 0)
    gets at least one sample or group.
    """
    fr = check_split(fractions, span)
    g = torch.Generator().manual_seed(int(seed))
    if groups is None:
        units = torch.randperm(n, generator=g)
        m = n
    else:
        uniq = torch.unique(groups)
        units = uniq[torch.randperm(len(uniq), generator=g)]
        m = len(uniq)
    counts = [int(math.floor(f * m + 1e-9)) for f in fr]
    for i in (1, 2):
        if fr[i] > 0 and counts[i] == 0:
            counts[i] = 1
    if sum(fr) >= 1 - 1e-6:  # fractions cover everything: give the rounding remainder to train
        counts[0] = m - counts[1] - counts[2]
    if counts[0] <= 0:
        raise BkError("E0609", f"split {fractions} leaves no training samples out of {m}", span=span,
                      help="use more samples or a larger train fraction")
    out, start = {}, 0
    for name, c in zip(SPLITS, counts):
        part = units[start:start + c]
        start += c
        if groups is None:
            out[name] = torch.sort(part).values
        else:
            out[name] = torch.isin(groups, part).nonzero().flatten()
    return out


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The sample order of one epoch: a permutation that depends only on (seed, epoch)."""
    g = torch.Generator().manual_seed((int(seed) * 1_000_003 + 7919 * int(epoch)) % (2**63 - 1))
    return torch.randperm(n, generator=g)


def batches_per_epoch(n: int, batch: int, drop_last: bool = False) -> int:
    return n // batch if drop_last and n >= batch else math.ceil(n / batch)
