"""The model summary of ``bkdsl compile`` (torchinfo-style): one row per IR node with its output
shape, its parameter count and its multiply-adds.

* **Shapes** are the IR's own types (shape · dtype · manifold · unit), inferred at compile time — no
  forward pass runs.
* **Parameters** are counted on the lowered ``GraphModule``: a component node owns the submodule the
  lowering named after it (and those its ``lower`` hook emitted as ``<node>_<suffix>``), a ``param``
  node its ``get_attr`` tensor, a nested block its own GraphModule. The rows' sum therefore equals
  ``sum(p.numel() for p in gm.parameters())`` (tests/lower/test_summary.py checks it).
* **Multiply-adds** follow torchinfo's convention: the MACs of the parametrised linear maps (matrix
  products and convolutions) for one example (batch-like dimensions set to 1); activations,
  arithmetic, indexing and stateless ops (FFT bindings, geodesic distances) count 0. A stateful
  component without a rule below shows ``?`` and the total says which ones were not counted, so a
  total is never silently low. Rules (y = f(x), ``rows`` = the product of all but the last axis):

  - ``linear``, ``mobius_linear``: rows · d_in · d_out (the tangent-space matmul W log₀(x))
  - ``conv2d``: B · C_out · H' · W' · C_in · k²
  - ``gelu_mlp``: 2 · rows · d · hidden
  - ``green_features``: rows · 2 · dim (the linear map of (Re G, Im G) at each site)
  - ``hyperbolic_moe``: rows · top_k · 2 · d · hidden (each token through its top_k expert MLPs; the
    routing distances to the E centroids are not matrix products and count 0)
  - ``self_attention``: 4 · rows · d² (q, k, v, out projections) + 2 · B · N² · d (QKᵀ and AV, full
    matrix, as fvcore and torchinfo count SDPA)
  - ``embedding``, ``position_embedding``, ``layernorm``, ``batchnorm``: 0 (lookups, elementwise)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
from rich.table import Table

from bkdsl.diagnostics import BkError
from bkdsl.semantics import ir as I
from bkdsl.semantics.types import ValueType, show_type

BATCH_DIMS = ("B", "batch")


@dataclass(frozen=True)
class Row:
    depth: int         # 0 for the model's own nodes, 1 inside a nested block, …
    name: str          # the spec's name for the value (or the IR node name)
    op: str            # `linear`, `block enc(width=64)`, `input`, `param`, `add`
    shape: str         # the IR type, shown
    params: int
    macs: int | None   # None: a stateful component without a MAC rule
    trainable: int = 0


@dataclass(frozen=True)
class Summary:
    model: str
    rows: tuple[Row, ...]
    sizes: dict[str, int]     # the symbolic sizes the MACs were counted with
    total_params: int
    trainable_params: int
    total_macs: int           # over the leaf rows (components, ops) that have a count
    uncounted: tuple[str, ...]  # components whose MACs are unknown (rows with ``?``)

    @property
    def macs_exact(self) -> bool:
        return not self.uncounted


# ------------------------------------------------------------------------------------ counting
def summarize(block: I.BlockIR, gm: torch.nn.Module, sizes: dict[str, int] | None = None) -> Summary:
    """The summary of ``block`` lowered as ``gm`` (``lower_block(block)``); symbolic dimensions take
    ``sizes`` (batch-like ``B``/``batch`` default to 1: MACs are per example)."""
    sz = {b: 1 for b in BATCH_DIMS}
    sz.update(sizes or {})
    rows: list[Row] = []
    _walk(block, gm, sz, 0, rows)
    top = [r for r in rows if r.depth == 0]
    uncounted = tuple(sorted({r.op for r in rows if r.macs is None and not r.op.startswith("block ")}))
    return Summary(block.qualname, tuple(rows), sz,
                   total_params=sum(r.params for r in top), trainable_params=sum(r.trainable for r in top),
                   total_macs=sum(r.macs or 0 for r in rows if not r.op.startswith("block ")), uncounted=uncounted)


def _walk(block: I.BlockIR, gm: torch.nn.Module, sz: dict[str, int], depth: int, rows: list[Row]) -> None:
    names = {n.name for n in block.nodes}
    children = dict(gm.named_children())
    for n in block.nodes:
        label = n.name  # the spec's name (`h`, `rho`); unnamed values get the op's name, made unique
        shape = show_type(n.type)
        if n.op == "input":
            rows.append(Row(depth, label, "input", shape, 0, 0))
        elif n.op == "param":
            p = gm.get_parameter(n.name)
            rows.append(Row(depth, label, "param", shape, p.numel(), 0, p.numel() if p.requires_grad else 0))
        elif n.op == "function":
            rows.append(Row(depth, label, n.kwargs.get("fn_name", getattr(n.target, "__name__", "op")), shape, 0, 0))
        elif n.op == "block":
            sub = children[n.name]
            inner: list[Row] = []
            _walk(n.target, sub, sz, depth + 1, inner)
            own = [r for r in inner if r.depth == depth + 1]
            macs = None if any(r.macs is None for r in inner) else sum(r.macs for r in own)
            rows.append(Row(depth, label, f"block {n.target.qualname}", shape, _numel(sub), macs, _numel(sub, True)))
            rows += inner
        else:  # component
            comp = n.target
            mods = [m for k, m in children.items()
                    if k == n.name or (k.startswith(n.name + "_") and k not in names)]
            params = sum(_numel(m) for m in mods)
            ins = [block.node(a.name).type for a in n.args if isinstance(a, I.NodeRef)]
            rows.append(Row(depth, label, comp.name, shape, params, component_macs(comp, ins, n.type, sz),
                            sum(_numel(m, True) for m in mods)))


def _numel(m: torch.nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in m.parameters() if p.requires_grad or not trainable_only)


def component_macs(comp: Any, ins: list[Any], out: Any, sz: dict[str, int]) -> int | None:
    """Multiply-adds of one component application (rules in the module docstring); None: unknown."""
    rule = MAC_RULES.get(comp.name)
    if rule is not None:
        try:
            return rule(comp, ins, out, sz)
        except _Unsized:
            return None
    if comp.function is not None or comp.kind in ("function", "binding", "manifold"):
        return 0  # stateless: elementwise or parameter-free transforms
    return None


class _Unsized(Exception):
    """A symbolic dimension without a size."""


def _dim(d: Any, sz: dict[str, int]) -> int:
    if isinstance(d, int):
        return d
    if isinstance(d, str) and d in sz:
        return sz[d]
    raise _Unsized(d)


def _rows(t: ValueType, sz: dict[str, int]) -> int:
    return math.prod(_dim(d, sz) for d in t.shape[:-1])


def _linear(comp, ins, out, sz) -> int:
    return _rows(out, sz) * _dim(ins[0].shape[-1], sz) * _dim(out.shape[-1], sz)


def _mobius_linear(comp, ins, out, sz) -> int:
    return _rows(out, sz) * comp.d_in * comp.params.out_features


def _conv2d(comp, ins, out, sz) -> int:
    b, c_out, h, w = (_dim(d, sz) for d in out.shape)
    return b * c_out * h * w * comp.c_in * comp.params.kernel ** 2


def _gelu_mlp(comp, ins, out, sz) -> int:
    d = _dim(ins[0].shape[-1], sz)
    return 2 * _rows(out, sz) * d * (comp.params.hidden or 4 * d)


def _self_attention(comp, ins, out, sz) -> int:
    *batch, n, d = (_dim(x, sz) for x in out.shape)
    b = math.prod(batch)
    return 4 * b * n * d * d + 2 * b * n * n * d


def _green_features(comp, ins, out, sz) -> int:
    return _rows(out, sz) * 2 * comp.params.dim  # (Re G, Im G) → dim, one linear map per site


def _hyperbolic_moe(comp, ins, out, sz) -> int:
    d, p = comp.d, comp.params
    return _rows(out, sz) * p.top_k * 2 * d * (p.hidden or 2 * d)  # each token through top_k expert MLPs


def _zero(comp, ins, out, sz) -> int:
    return 0


MAC_RULES: dict[str, Callable[..., int]] = {
    "linear": _linear, "mobius_linear": _mobius_linear, "conv2d": _conv2d, "gelu_mlp": _gelu_mlp,
    "self_attention": _self_attention, "green_features": _green_features,
    "hyperbolic_moe": _hyperbolic_moe, "embedding": _zero, "position_embedding": _zero,
    "layernorm": _zero, "batchnorm": _zero,
}




# ------------------------------------------------------------------------------------ rendering
def human(n: int | None) -> str:
    """1234567 → ``1.23 M`` (``?`` for unknown)."""
    if n is None:
        return "?"
    for div, suffix in ((1e12, " T"), (1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(n) >= div:
            return f"{n / div:.2f}{suffix}"
    return str(n)


def table_rows(s: Summary, max_depth: int = 2) -> list[tuple[str, str, str, str, str]]:
    """(node, op, output type, parameters, MACs) per row down to ``max_depth``, names indented."""
    return [("  " * r.depth + r.name, r.op, r.shape, f"{r.params:,}" if r.params else "-",
             human(r.macs) if r.macs != 0 else "-")
            for r in s.rows if r.depth <= max_depth]


def footer(s: Summary) -> list[str]:
    sizes = ", ".join(f"{k} = {v}" for k, v in s.sizes.items() if k != "batch")
    lines = [f"total parameters: {s.total_params:,} (trainable {s.trainable_params:,})",
             f"multiply-adds per forward ({sizes}): {s.total_macs:,} ({human(s.total_macs)}MAC)"]
    if s.uncounted:
        lines.append("not counted (no MAC rule, or an unsized dimension): " + ", ".join(s.uncounted)
                     + " — the total is a lower bound")
    return lines


def to_markdown(s: Summary, max_depth: int = 2) -> str:
    out = ["| node | op | output | parameters | MACs |", "|---|---|---|---|---|"]
    for name, op, shape, params, macs in table_rows(s, max_depth):
        indent = "&nbsp;&nbsp;" * ((len(name) - len(name.lstrip(" "))) // 2)
        out.append(f"| {indent}`{name.strip()}` | {op} | `{shape}` | {params} | {macs} |")
    return "\n".join(out + [""] + [f"- {ln}" for ln in footer(s)]) + "\n"


def rich_table(s: Summary, max_depth: int = 2):
    """The summary as a ``rich`` table (``bkdsl compile`` prints it)."""
    tab = Table(title=f"model summary: {s.model}", caption="\n".join(footer(s)), caption_justify="left")
    for col, just in (("node", "left"), ("op", "left"), ("output", "left"), ("parameters", "right"), ("MACs", "right")):
        tab.add_column(col, justify=just)
    for row in table_rows(s, max_depth):
        tab.add_row(*row)
    return tab


def parse_sizes(items: list[str] | None) -> dict[str, int]:
    """``["N=128", "T=64"]`` → ``{"N": 128, "T": 64}`` (``bkdsl compile --size``); E0206 on a bad item."""
    out: dict[str, int] = {}
    for it in items or ():
        name, eq, val = it.partition("=")
        if not eq or not name.strip().isidentifier() or not val.strip().isdigit() or int(val) < 1:
            raise BkError("E0206", f"bad --size `{it}`", help="write a symbolic dimension and a positive size, e.g. `--size N=128`")
        out[name.strip()] = int(val)
    return out
