"""IR → torch.fx: every elaborated block becomes a ``GraphModule`` with readable generated code.

* inputs are placeholders named as in the spec; parameters are ``get_attr`` of ``nn.Parameter`` (or
  ``geoopt.ManifoldParameter`` for ``param W : [...] on M``);
* a stateful component is a submodule (``call_module``) built by its ``build()``; a stateless one is a
  ``call_function`` of its ``function`` (kernels appear as ``torch.ops.bkdsl.*`` this way); a
  component may instead emit several nodes through ``lower(emit, args)`` (e.g. projections as a
  submodule followed by the fused kernel as a custom op);
* a nested block is a submodule — its own GraphModule — so ``print(gm.code)`` stays short and each
  ``repeat`` copy has its own weights;
* a model returns a dict of its named outputs (an unnamed output is ``out``); a block with one
  output returns it directly.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.fx as fx

from bkdsl.semantics import ir as I
from bkdsl.semantics.types import ValueType


class Emitter:
    """What a component's ``lower`` hook may use to add nodes to the graph being built."""

    def __init__(self, root: torch.nn.Module, graph: fx.Graph, base: str):
        self.root, self.graph, self.base = root, graph, base
        self._used: set[str] = set()

    def _name(self, suffix: str) -> str:
        name, k = f"{self.base}_{suffix}", 1
        while name in self._used:
            k += 1
            name = f"{self.base}_{suffix}{k}"
        self._used.add(name)
        return name

    def call_module(self, module: torch.nn.Module, args: tuple, suffix: str = "mod") -> fx.Node:
        name = self._name(suffix)
        self.root.add_module(name, module)
        return self.graph.create_node("call_module", name, tuple(args), {}, name=name)

    def call_function(self, fn: Any, args: tuple, kwargs: dict | None = None, suffix: str = "fn") -> fx.Node:
        return self.graph.create_node("call_function", fn, tuple(args), kwargs or {}, name=self._name(suffix))


def lower_block(block: I.BlockIR, manifolds: dict[str, Any] | None = None) -> fx.GraphModule:
    root = torch.nn.Module()
    g = fx.Graph()
    env: dict[str, fx.Node] = {}

    def arg(a: Any) -> Any:
        if isinstance(a, I.NodeRef):
            return env[a.name]
        if isinstance(a, tuple):
            return tuple(arg(x) for x in a)
        return a

    for n in block.nodes:
        if n.op == "input":
            env[n.name] = g.create_node("placeholder", n.name, (), {}, name=n.name)
        elif n.op == "param":
            spec = next(p for p in block.params if p.name == n.target)
            root.register_parameter(n.name, make_parameter(spec, manifolds or {}))
            env[n.name] = g.create_node("get_attr", n.name, (), {}, name=n.name)
        elif n.op == "component":
            comp = n.target
            args = tuple(arg(a) for a in n.args)
            lower_hook = getattr(comp, "lower", None)
            if callable(lower_hook):
                env[n.name] = lower_hook(Emitter(root, g, n.name), args)
            elif comp.function is not None:
                env[n.name] = g.create_node("call_function", comp.function, args, comp.call_kwargs(), name=n.name)
            else:
                root.add_module(n.name, _tag_manifold(comp.build(), n.type, manifolds))
                env[n.name] = g.create_node("call_module", n.name, args, {}, name=n.name)
        elif n.op == "block":
            root.add_module(n.name, _tag_manifold(lower_block(n.target, manifolds), n.type, manifolds))
            env[n.name] = g.create_node("call_module", n.name, tuple(arg(a) for a in n.args), {}, name=n.name)
        elif n.op == "function":
            env[n.name] = g.create_node("call_function", n.target, tuple(arg(a) for a in n.args), {}, name=n.name)
        else:  # pragma: no cover - the elaborator creates no other ops
            raise AssertionError(n.op)
    if block.is_model or len(block.outputs) > 1:
        g.output({k: env[v] for k, v in block.outputs.items()})
    else:
        (only,) = block.outputs.values()
        g.output(env[only])
    g.lint()
    cls = "".join(p.capitalize() for p in block.name.split("_")) or "Block"
    return fx.GraphModule(root, g, class_name=cls)


def _tag_manifold(mod: torch.nn.Module, typ: Any, manifolds: dict[str, Any]) -> torch.nn.Module:
    """Mark a submodule whose output lives on a manifold (``bk_out_manifold``), for the opt-in runtime
    assertions of bkdsl.verify.runtime."""
    if isinstance(typ, ValueType) and typ.manifold and typ.manifold in manifolds:
        mod.bk_out_manifold = manifolds[typ.manifold].geoopt()
    return mod


def make_parameter(spec: I.ParamSpec, manifolds: dict[str, Any]) -> torch.nn.Parameter:
    """A parameter of the declared shape: N(0, 1/fan_in) for Euclidean tensors; a random point of the
    manifold (geoopt's ``random`` then ``projx``) for ``on M``; ``spec.init`` when given."""
    t = spec.type
    shape = tuple(d if isinstance(d, int) else _unbound(spec, d) for d in (t.shape or ()))
    if spec.init is not None:
        data = torch.full(shape, float(spec.init)) if isinstance(spec.init, (int, float)) else torch.as_tensor(spec.init)
    else:
        fan_in = shape[-1] if shape else 1
        data = torch.randn(shape) / math.sqrt(max(1, fan_in))
    if t.manifold:
        import geoopt

        comp = manifolds.get(t.manifold)
        man = comp.geoopt() if comp is not None else geoopt.Euclidean()
        with torch.no_grad():
            data = man.projx(data * 0.1 if isinstance(man, geoopt.PoincareBall) else data)
        return geoopt.ManifoldParameter(data, manifold=man)
    return torch.nn.Parameter(data)


def _unbound(spec: I.ParamSpec, d: Any) -> int:
    from bkdsl.diagnostics import BkError

    raise BkError("E0404", f"parameter `{spec.name}` has a symbolic dimension `{d}`", span=spec.span,
                  help="a parameter's shape must be known at compile time; use block parameters")


def example_inputs(block: I.BlockIR, sizes: dict[str, int] | None = None, device: str = "cpu") -> dict[str, torch.Tensor]:
    """Random inputs of the declared shapes (symbolic dims from ``sizes``, default 2 for batch-like
    dims and 8 otherwise) — for `bkdsl compile --run` and the smoke tests."""
    sizes = dict(sizes or {})
    out = {}
    for name, t in block.inputs.items():
        shape = []
        for d in t.shape or ():
            if isinstance(d, int):
                shape.append(d)
            else:
                shape.append(sizes.setdefault(d, 2 if d in ("B", "batch") else 16))
        if t.dtype == "int":
            out[name] = torch.randint(0, 2, shape, device=device)
        elif t.dtype == "complex":
            out[name] = torch.randn(shape, dtype=torch.complex64, device=device)
        elif t.dtype == "bool":
            out[name] = torch.rand(shape, device=device) > 0.5
        else:
            x = torch.randn(shape, device=device)
            if t.manifold:
                x = 0.5 * x / (1 + x.norm(dim=-1, keepdim=True))  # inside the unit ball
            out[name] = x
    return out

