"""``report.md`` of ``bkdsl compile``: components, parameter counts, and every claimed property with
how it was established."""

from __future__ import annotations

from typing import Any

import torch

from bkdsl.lower.summary import summarize, to_markdown
from bkdsl.semantics.types import show_type


def param_count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def generated_code(gm: torch.fx.GraphModule) -> str:
    """The forward code of a GraphModule and of each distinct nested GraphModule class."""
    seen: dict[str, str] = {}

    def visit(name: str, mod: torch.nn.Module) -> None:
        if isinstance(mod, torch.fx.GraphModule):
            cls = type(mod).__name__
            if cls not in seen:
                seen[cls] = f"# {name or 'model'} : {cls}\nclass {cls}(torch.nn.Module):\n" + _indent(mod.code.strip())
            for child_name, child in mod.named_children():
                visit(f"{name}.{child_name}" if name else child_name, child)

    visit("", gm)
    return "\n\n\n".join(seen.values())


def _indent(code: str) -> str:
    return "\n".join(("    " + ln) if ln.strip() else ln for ln in code.splitlines())


def render_report(c: Any, sizes: dict[str, int] | None = None) -> str:
    """``sizes``: symbolic dimension sizes for the model summary's multiply-adds (B is 1)."""
    prog = c.ir
    lines = [f"# Compile report: `{c.file}`", ""]
    name = c.main_model
    if name is not None:
        gm = c.module
        ir = c.model_ir(c.main_call)
        lines += [f"## Model `{ir.qualname}`", "", f"Parameters: **{param_count(gm):,}**", "",
                  "| value | type |", "|---|---|"]
        lines += [f"| input `{k}` | `{v.show()}` |" for k, v in ir.inputs.items()]
        lines += [f"| output `{k}` | `{show_type(ir.node(v).type)}` |" for k, v in ir.outputs.items()]
        lines += ["", "### Summary", "", "Per node: the output type from the IR, the parameters of the lowered "
                  "submodule, and multiply-adds per example (torchinfo's convention, bkdsl/lower/summary.py).", "",
                  to_markdown(summarize(ir, gm, sizes))]
    if prog.decls:
        lines += ["## Declarations", "", "| name | kind | component | parameters |", "|---|---|---|---|"]
        for d in prog.decls.values():
            comp = d.component
            params = ", ".join(f"{k} = {_param(v)}" for k, v in comp.params) if comp else ""
            lines.append(f"| `{d.name}` | {d.kind} | `{comp.name if comp else '-'}` | {params} |")
        lines.append("")
    if prog.losses:
        from bkdsl.syntax.fmt import expr

        lines += ["## Losses", ""]
        for l in prog.losses.values():
            lines.append(f"- `{l.name}({', '.join(l.formals)}) = {expr(l.expr)}`")
        lines.append("")
    lines += ["## Claimed properties", ""]
    if prog.claims:
        lines += ["| subject | property | holds | established by | detail |", "|---|---|---|---|---|"]
        for cl in prog.claims:
            lines.append(f"| `{cl.subject}` | {cl.prop} | {'yes' if cl.proof.holds else '**no**'} | "
                         f"{cl.proof.how} | {cl.proof.detail} |")
    else:
        lines.append("No properties are claimed in this spec.")
    lines.append("")
    lines += ["## Structural checks", "",
              "- shapes: every op's output shape inferred; symbolic dimensions unified across the graph",
              "- manifolds: every value typed Euclidean or on a declared manifold; ops checked against it",
              "- units: constants and quantities through pint; losses checked against the data's units",
              "- dataflow: acyclic (networkx topological order)", ""]
    for t in prog.trains.values():
        from bkdsl.semantics.values import show_value

        lines += [f"## Train `{t.name}`", "", "| key | value |", "|---|---|"]
        lines += [f"| {k} | `{show_value(e.value)}` |" for k, e in t.entries.items()]
        lines.append("")
    return "\n".join(lines)


def _param(v: Any) -> str:
    from bkdsl.registry import Component
    from bkdsl.semantics.values import show_value

    return (v.decl_name or v.name) if isinstance(v, Component) else show_value(v)


