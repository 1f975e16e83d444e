"""Data sources of the optics specs: scikit-learn's 8×8 handwritten digits as optical input fields.

``digits_field(size = 64, scale = 4)`` upsamples each 8×8 digit (values 0…16, scaled to 0…1) by nearest
neighbour ×``scale`` and centres it in a ``size`` × ``size`` field of zeros — an amplitude mask in the
input plane of a diffractive network. Fields: ``image`` [size, size] (float, dimensionless) and
``digit`` [] (int, the class). The 1 797 digits ship inside scikit-learn (``sklearn.datasets.load_digits``
reads a file of the package): nothing is downloaded. scikit-learn is an optional dependency
(``pip install bkdsl[optics]``); without it the source is refused with E0605 when it is loaded.
"""

from __future__ import annotations

import torch
from pydantic import Field

from bkdsl.registry import component
from bkdsl.components.data_sources import DataParams, DataSource
from bkdsl.diagnostics import BkError


def digits_fields(size: int = 64, scale: int = 4) -> dict[str, torch.Tensor]:
    """The digits as centred amplitude images [n, size, size] in [0, 1] and their labels [n]."""
    try:
        from sklearn.datasets import load_digits  # optional dependency, only needed by this source
    except ImportError as e:
        raise BkError("E0605", f"digits_field needs scikit-learn ({e})",
                      help="pip install scikit-learn (the optional dependency group `optics`)") from None
    d = load_digits()
    img = torch.as_tensor(d.images, dtype=torch.float32) / 16.0
    img = img.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
    side = 8 * scale
    out = torch.zeros(len(img), size, size)
    a = (size - side) // 2
    out[:, a:a + side, a:a + side] = img
    return {"image": out, "digit": torch.as_tensor(d.target, dtype=torch.long)}


class DigitsFieldParams(DataParams):
    size: int = Field(64, ge=8, description="side N of the input field (pixels)")
    scale: int = Field(4, ge=1, description="nearest-neighbour upsampling of the 8 × 8 digit (8·scale ≤ size)")


@component("digits_field", kind="data")
class DigitsField(DataSource):
    """scikit-learn's 8×8 digits, upsampled and centred in an N × N optical field."""

    Params = DigitsFieldParams
    unnormalized_fields = ("digit",)

    @classmethod
    def from_args(cls, kwargs, span=None, decl_name=None, arg_spans=None):
        comp = super().from_args(kwargs, span, decl_name, arg_spans)
        if 8 * comp.params.scale > comp.params.size:
            raise BkError("E0201", f"`digits_field`: an 8 × 8 digit upsampled ×{comp.params.scale} is "
                                   f"{8 * comp.params.scale} pixels, larger than the field ({comp.params.size})",
                          span=span, help=f"use scale ≤ {comp.params.size // 8}")
        return comp

    @classmethod
    def declared_fields(cls, call):
        return {"image": "1", "digit": "1"}

    def fields(self):
        from bkdsl.train.data import FieldInfo

        n = self.params.size
        return {"image": FieldInfo("image", shape=(n, n)), "digit": FieldInfo("digit", shape=(), dtype="int")}

    def load(self, *, seed: int, base_dir: str | None = None):
        from bkdsl.train.data import Dataset

        p = self.params
        return Dataset(digits_fields(p.size, p.scale), self.fields(), meta={"source": "digits_field"})
