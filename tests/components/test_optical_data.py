"""The digits_field data source: shapes, range, centring, and its refusals."""

from __future__ import annotations

import pytest
import torch

from bkdsl.components.optical_data import DigitsField, digits_fields
from bkdsl.diagnostics import BkError


def test_digit_too_large_for_the_field_is_refused():
    with pytest.raises(BkError) as e:
        DigitsField.from_args({"size": 16, "scale": 4})
    assert e.value.diagnostic.code == "E0201" and "scale ≤ 2" in e.value.diagnostic.help


def test_digits_fields_shapes_and_centring():
    pytest.importorskip("sklearn")
    f = digits_fields(size=40, scale=4)
    img, y = f["image"], f["digit"]
    assert img.shape == (1797, 40, 40) and y.shape == (1797,) and set(y.tolist()) == set(range(10))
    assert float(img.min()) == 0.0 and float(img.max()) == 1.0
    assert img[:, :4].abs().sum() == 0 and img[:, :, 36:].abs().sum() == 0   # 4-pixel zero border
    # nearest upsampling: each 4 × 4 block is constant
    blk = img[:, 4:36, 4:36].reshape(1797, 8, 4, 8, 4)
    assert torch.equal(blk, blk[:, :, :1, :, :1].expand_as(blk))
