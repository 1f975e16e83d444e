"""What a probe may allocate, decided before anything is allocated — and without torch.

The numerical probes (bkdsl/verify/probes.py, bkdsl/verify/model_probe.py) need torch; deciding
whether a probe *could* run does not. This module holds that part, so that ``bkdsl check`` — which
defers the confirming probe of a statically proven claim to ``compile``/``train`` — still refuses
(E0305) a model whose probe would be over the budget, exactly as ``compile`` would, without importing
torch.

Model-probe sizes: the claimed axis gets :data:`AXIS_LEN` positions, batch-like dimensions (``B``,
``batch``) 2, other symbolic dimensions 4. The estimate sums the elements of every value and of each
op's weight (last input dim, or its largest integer parameter such as an embedding's table size,
× last output dim).
"""

from __future__ import annotations

import math
from typing import Any

from bkdsl.semantics import ir as I
from bkdsl.semantics.types import ValueType

# The most tensor elements one probe may allocate (2²⁶ float64 = 512 MiB); larger probes are refused
# before they allocate (a layer of 1e9 features must not reach torch.randn).
PROBE_BUDGET = 1 << 26

#: positions along the claimed sequence axis in a model probe
AXIS_LEN = 8


class ProbeError(Exception):
    """A probe that cannot be run (empty space, over budget): the claim is refused with this reason."""


def guard_size(elements: int | float, what: str) -> None:
    """Refuse (ProbeError) a probe of ``elements`` tensor elements over PROBE_BUDGET, before allocating."""
    if not elements >= 0 or elements > PROBE_BUDGET:  # `not >=` also catches NaN
        raise ProbeError(f"{what} would allocate {float(elements):.3g} elements, over the probe budget "
                         f"of {PROBE_BUDGET:.3g}")


def dim_size(d: Any, sizes: dict[str, int]) -> int:
    """The probe's size of one dimension (an int, or a symbolic name)."""
    if isinstance(d, int):
        return d
    if isinstance(d, str):
        return sizes.get(d, 2 if d in ("B", "batch") else 4)
    return 4


def _numel(t: Any, sizes: dict[str, int]) -> int:
    if isinstance(t, ValueType):
        return math.prod(dim_size(d, sizes) for d in (t.shape or ()))
    if isinstance(t, (tuple, list)):
        return sum(_numel(x, sizes) for x in t)
    if isinstance(t, dict):
        return sum(_numel(x, sizes) for x in t.values())
    return 1


def _last(t: Any, sizes: dict[str, int]) -> int:
    return dim_size(t.shape[-1], sizes) if isinstance(t, ValueType) and t.shape else 1


def probe_elements(ir: I.BlockIR, sizes: dict[str, int]) -> int:
    """An estimate of what a model probe allocates: every value, and a weight per op (in features, or
    its largest integer parameter such as an embedding's table size, × out features)."""
    total = sum(_numel(t, sizes) for t in ir.inputs.values())
    for n in ir.nodes:
        total += _numel(n.type, sizes)
        if n.op == "component":
            ins = [a for a in n.args if isinstance(a, I.NodeRef)]
            fin = _last(ir.node(ins[0].name).type, sizes) if ins else 1
            ints = [abs(v) for _, v in n.target.params if isinstance(v, int) and not isinstance(v, bool)]
            total += max([fin, *ints]) * _last(n.type, sizes)  # a weight: in (or a table size) × out
        elif n.op == "block":
            total += probe_elements(n.target, sizes)
    return total


def probe_sizes(axis_name: str | None) -> dict[str, int]:
    """The sizes of the named dimensions in a model probe along ``axis_name`` (None: no axis)."""
    return {axis_name: AXIS_LEN} if axis_name else {}


def require_float_inputs(ir: I.BlockIR) -> None:
    """ProbeError unless every input is float (the Lipschitz probe perturbs inputs continuously)."""
    if any(t.dtype != "float" for t in ir.inputs.values()):
        raise ProbeError("the Lipschitz probe needs float inputs")


def guard_model_probe(ir: I.BlockIR, sizes: dict[str, int]) -> None:
    """ProbeError when the probe of ``ir`` at ``sizes`` would be over the budget."""
    guard_size(probe_elements(ir, sizes), f"the probe of `{ir.name}`")
