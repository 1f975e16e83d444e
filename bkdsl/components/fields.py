"""What a data source declares about its fields, and the split of its samples — no tensors.

:class:`FieldInfo` is what ``bkdsl check`` compares a model against (a source's ``header``/``fields``)
and what the runner's :class:`~bkdsl.train.data.Dataset` carries beside each tensor; :func:`check_split`
is the split rule both apply. They live here, below ``train/``, because the verify pass needs them
without torch (``bkdsl/train/data.py`` re-exports them for the runner).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bkdsl.diagnostics import BkError, Span

SPLITS = ("train", "val", "test")


@dataclass
class FieldInfo:
    """What the spec (or a generator) declares about one field.

    ``shape`` is the per-sample shape (without the leading sample dimension), ``None`` when not
    declared. ``unit`` is a pint-parsable string (``None``: dimensionless / not declared). ``axes`` names
    the per-sample axes (``("r", "z")`` for densities on the axial grid) so augmentations can say
    ``flip(axis = z)``; ``odd_under`` lists the axes whose reflection flips the field's sign (the
    octupole moment Q30 under z → −z).
    """

    name: str
    key: str | None = None
    shape: tuple[int, ...] | None = None
    dtype: str = "float"
    unit: str | None = None
    axes: tuple[str, ...] | None = None
    odd_under: tuple[str, ...] = ()
    span: Span | None = None

    def to_json(self) -> dict:
        return {"name": self.name, "key": self.key, "shape": list(self.shape) if self.shape else self.shape,
                "dtype": self.dtype, "unit": self.unit, "axes": list(self.axes) if self.axes else None,
                "odd_under": list(self.odd_under)}


def check_split(fractions: list[float], span: Span | None = None) -> list[float]:
    """``[train, val, test]`` fractions (1 to 3 entries, missing ones 0), each finite and >= 0, train > 0,
    summing to at most 1 (+1e-6); returns the three fractions. E0609 otherwise (``bkdsl check`` runs this)."""
    try:
        fr = [float(f) for f in fractions] + [0.0] * (3 - len(fractions))
    except (TypeError, ValueError):
        fr = [math.nan]
    if (not 1 <= len(fractions) <= 3 or not all(math.isfinite(f) and f >= 0 for f in fr) or sum(fr) > 1 + 1e-6
            or fr[0] <= 0):
        raise BkError("E0609", f"bad split {fractions}: want [train, val, test] fractions, train > 0, "
                               "sum <= 1", span=span, help="e.g. `split = [0.9, 0.05, 0.05]`")
    return fr


__all__ = ["SPLITS", "FieldInfo", "check_split"]
