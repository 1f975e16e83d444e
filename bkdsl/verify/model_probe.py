"""Probes of a whole block: lower it (bkdsl/lower/fx.py) with random weights in float64 and run the
model-level probes of bkdsl/verify/probes.py on random inputs.

Sizes and the allocation budget are those of bkdsl/verify/budget.py (torch-free, so that ``check``
applies the same budget to the probes it defers): before anything is allocated the elements of every
value and of each op's weight are summed and refused over ``PROBE_BUDGET`` (a layer of 1e9 features is
refused there, not by the allocator). Weights come from a fixed seed
inside ``torch.random.fork_rng`` (the caller's RNG state is left alone).
"""

from __future__ import annotations

import torch

from bkdsl.registry import Proof
from bkdsl.lower.fx import lower_block
from bkdsl.semantics import ir as I
from bkdsl.verify import probes as P
from bkdsl.verify.budget import dim_size, guard_model_probe, probe_sizes, require_float_inputs

SEED = 0
POSITIONS = (1, 3, 5, 7)  # perturbed positions of the causal probe (all < budget.AXIS_LEN)


def _draw(ir: I.BlockIR, sizes: dict[str, int], gen: torch.Generator, scale: float = 1.0) -> dict[str, torch.Tensor]:
    out = {}
    for name, t in ir.inputs.items():
        shape = [dim_size(d, sizes) for d in (t.shape or ())]
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
    guard_model_probe(ir, sizes)
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
    sizes = probe_sizes(axis_name)
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
    sizes = probe_sizes(axis_name)
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
    require_float_inputs(ir)
    sizes: dict[str, int] = {}
    fn = build(prog, ir, sizes)
    gen = torch.Generator().manual_seed(SEED + 4)
    pairs = []
    for eps in (1e-3, 1e-1, 1.0, 10.0):
        x = _draw(ir, sizes, gen)
        d = _draw(ir, sizes, gen, eps)
        pairs.append((x, {k: x[k] + d[k] for k in x}))
    return _result(P.probe_lipschitz(fn, pairs, L))
