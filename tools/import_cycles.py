"""Import cycles between bkdsl's modules, counting imports made inside functions too.

    python tools/import_cycles.py        # from the repository root; exit 0 when there is none

Every ``import``/``from … import`` anywhere in a file (module level or inside a function) is an edge,
and so is ``importlib.import_module("literal")`` (the CLI's lazily imported subcommands), and
``lazy_module("literal")`` / ``lazy_function("literal", ...)`` (bkdsl/lazy.py: a component's torch side); ``bkdsl.kernels``
is mapped onto the top-level kernels/ folder. Prints each cycle (a strongly connected component of more
than one module) and the count last. Run by ``make test`` and .ci/run.
"""

from __future__ import annotations

import ast
import pathlib
import sys

import networkx as nx


def modules(root: pathlib.Path) -> dict[str, pathlib.Path]:
    files = {}
    for p in list(root.glob("bkdsl/**/*.py")) + list(root.glob("kernels/**/*.py")):
        parts = list(p.relative_to(root).with_suffix("").parts)
        if parts[0] == "kernels":
            parts = ["bkdsl"] + parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        files[".".join(parts)] = p
    return files


def imported_names(tree: ast.AST, pkg: str) -> list[str]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                base = ".".join(up + ([base] if base else []))
            out += [base] + [f"{base}.{a.name}" for a in node.names]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            out.append(node.args[0].value)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("lazy_module", "lazy_function") and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            out.append(node.args[0].value)
        elif isinstance(node, ast.Dict):  # {"train": ("bkdsl.train.cli", ...)}: modules named for import_module
            for v in node.values:
                if isinstance(v, ast.Tuple) and v.elts and isinstance(v.elts[0], ast.Constant) \
                        and isinstance(v.elts[0].value, str) and v.elts[0].value.startswith("bkdsl."):
                    out.append(v.elts[0].value)
    return out


def import_graph(root: pathlib.Path) -> nx.DiGraph:
    files = modules(root)
    g = nx.DiGraph()
    for mod, p in files.items():
        g.add_node(mod)
        pkg = mod if p.name == "__init__.py" else mod.rsplit(".", 1)[0]
        for t in imported_names(ast.parse(p.read_text(encoding="utf-8")), pkg):
            while t and t not in files:
                t = t.rsplit(".", 1)[0] if "." in t else ""
            if t and t != mod and files[t].name != "__init__.py":
                g.add_edge(mod, t)
    return g


def cycles(root: pathlib.Path) -> list[list[str]]:
    return [sorted(c) for c in nx.strongly_connected_components(import_graph(root)) if len(c) > 1]


def main() -> int:
    found = cycles(pathlib.Path("."))
    for c in found:
        print("  cycle:", " <-> ".join(c))
    print(f"import cycles: {len(found)} (files in cycles: {sum(len(c) for c in found)})")
    return 0 if not found else 1


if __name__ == "__main__":
    sys.exit(main())
