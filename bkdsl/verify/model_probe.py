"""Probes of a whole block: lower it (bkdsl/lower/fx.py) with random weights in float64 and run the
model-level probes of bkdsl/verify/probes.py on random inputs.

Sizes: the claimed axis gets ``AXIS_LEN`` positions, batch-like dimensions (``B``, ``batch``) 2,
other symbolic dimensions 4. Before anything is allocated the elements of every value and of each
op's weight (last input dim × last output dim) are summed and refused over ``PROBE_BUDGET``
(a layer of 1e9 features is refused here, not by the allocator). Weights come from a fixed seed
inside ``torch.random.fork_rng`` (the caller's RNG state is left alone).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from bkdsl.registry import Proof
from bkdsl.lower.fx import lower_block
from bkdsl.semantics import ir as I
from bkdsl.semantics.types import ValueType
from bkdsl.verify import probes as P

AXIS_LEN = 8
SEED = 0
POSITIONS = (1, 3, 5, 7)  # perturbed positions of the causal probe (all < AXIS_LEN)


def _size(d: Any, sizes: dict[str, int]) -> int:
    if isinstance(d, int):
        return d
    if isinstance(d, str):
        return sizes.get(d, 2 if d in ("B", "batch") else 4)
    return 4


def _numel(t: Any, sizes: dict[str, int]) -> int:
    if isinstance(t, ValueType):
        return math.prod(_size(d, sizes) for d in (t.shape or ()))
    if isinstance(t, (tuple, list)):
        return sum(_numel(x, sizes) for x in t)
    if isinstance(t, dict):
        return sum(_numel(x, sizes) for x in t.values())
    return 1


def _last(t: Any, sizes: dict[str, int]) -> int:
    return _size(t.shape[-1], sizes) if isinstance(t, ValueType) and t.shape else 1


def probe_elements(ir: I.BlockIR, sizes: dict[str, int]) -> int:
    """An estimate of what the probe allocates: every value, and a weight per op (in features, or
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


def _sizes(ir: I.BlockIR, axis_name: str | None) -> dict[str, int]:
    return {axis_name: AXIS_LEN} if axis_name else {}


def _draw(ir: I.BlockIR, sizes: dict[str, int], gen: torch.Generator, scale: float = 1.0) -> dict[str, torch.Tensor]:
    out = {}
    for name, t in ir.inputs.items():
        shape = [_size(d, sizes) for d in (t.shape or ())]
        if t.dtype == "int":
            out[name] = torch.randint(0, 2, shape, generator=gen)
        elif t.dtype == "bool":
            out[name] = torch.rand(shape, generator=gen) > 0.5
        elif t.dtype == "complex":
            out[name] = scale * torch.randn(shape, generator=gen, dtype=torch.complex128)
        else:
            x = scale * torch.randn(shape, generator=gen, dtype=torch.float64)
            if t.manifold:
                x = 0.5 * x / (1 + x.norm(dim=-1, keepdim=True))  # inside the unit ball
            out[name] = x
    return out


def build(prog: I.Program, ir: I.BlockIR, sizes: dict[str, int]):
    """(fn, sizes): the lowered block in float64 as dict → dict, after the budget check."""
    n = probe_elements(ir, sizes)
    P.guard_size(n, f"the probe of `{ir.name}`")
    manifolds = {k: d.component for k, d in prog.decls.items() if d.kind == "manifold" and d.component is not None}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        gm = lower_block(ir, manifolds).double()
    gm.eval()
    names = list(ir.outputs)

    def fn(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        y = gm(**inputs)
        if isinstance(y, dict):
            return {k: v for k, v in y.items() if isinstance(v, torch.Tensor)}
        return {names[0] if names else "out": y}

    return fn


def _result(r: P.ProbeResult) -> Proof:
    return Proof(r.ok, "probe", r.detail)


def causal_probe(prog: I.Program, ir: I.BlockIR, in_axes: dict, out_axes: dict, axis_name: str | None) -> Proof:
    sizes = _sizes(ir, axis_name)
    fn = build(prog, ir, sizes)
    gen = torch.Generator().manual_seed(SEED + 1)
    a, b = _draw(ir, sizes, gen), _draw(ir, sizes, gen)
    # a token draw could repeat a's token at j; take the other of {0, 1} so every position changes
    b = {k: (1 - a[k] if a[k].dtype == torch.int64 else (~a[k] if a[k].dtype == torch.bool else v))
         for k, v in b.items()}
    length = min(a[k].shape[ax] for k, ax in in_axes.items() if ax is not None)
    pos = [j for j in POSITIONS if j < length] or [length - 1]
    return _result(P.probe_causal(fn, a, b, in_axes, out_axes, pos))


def flip_probe(prog: I.Program, ir: I.BlockIR, in_axes: dict, out_axes: dict, axis_name: str | None) -> Proof:
    sizes = _sizes(ir, axis_name)
    fn = build(prog, ir, sizes)
    a = _draw(ir, sizes, torch.Generator().manual_seed(SEED + 2))
    return _result(P.probe_flip_equivariant(fn, a, in_axes, out_axes))


def bound_probe(prog: I.Program, ir: I.BlockIR, c: float) -> Proof:
    sizes: dict[str, int] = {}
    fn = build(prog, ir, sizes)
    gen = torch.Generator().manual_seed(SEED + 3)
    draws = [_draw(ir, sizes, gen, scale) for scale in (0.1, 1.0, 10.0, 100.0)]
    return _result(P.probe_bounded(fn, draws, c))


def lipschitz_probe(prog: I.Program, ir: I.BlockIR, L: float) -> Proof:
    if any(t.dtype != "float" for t in ir.inputs.values()):
        raise P.ProbeError("the Lipschitz probe needs float inputs")
    sizes: dict[str, int] = {}
    fn = build(prog, ir, sizes)
    gen = torch.Generator().manual_seed(SEED + 4)
    pairs = []
    for eps in (1e-3, 1e-1, 1.0, 10.0):
        x = _draw(ir, sizes, gen)
        d = _draw(ir, sizes, gen, eps)
        pairs.append((x, {k: x[k] + d[k] for k in x}))
    return _result(P.probe_lipschitz(fn, pairs, L))
