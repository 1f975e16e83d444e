"""The kernels/<op>/ layout (#14): references import nothing above the kernels, the production path does
not import the variants, and the packages (references, dispatchers) import and run without Triton."""

import ast
import pathlib
import subprocess
import sys

import pytest

KERNELS = pathlib.Path(__file__).resolve().parents[2] / "kernels"
OPS = ["resolvent", "hyperbolic_routing", "scattering_attention"]


def _imports(path: pathlib.Path) -> set[str]:
    """Every module a file imports, at any depth (imports inside functions included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("op", OPS)
def test_reference_imports_nothing_above_the_kernels(op):
    bkdsl = {m for m in _imports(KERNELS / op / "naive.py") if m.startswith("bkdsl")}
    assert bkdsl <= {"bkdsl.diagnostics"}, bkdsl


@pytest.mark.parametrize("op", OPS)
def test_production_path_does_not_import_variants_or_nn(op):
    for path in (KERNELS / op).glob("*.py"):
        if path.name == "variants.py":
            continue
        mods = _imports(path)
        assert not any(m.endswith(".variants") for m in mods), path
        assert not any(m.startswith("bkdsl.nn") for m in mods), path


def test_packages_import_and_run_without_triton():
    """With ``import triton`` made to fail, the nn modules and the kernel packages import, and the
    references run (the dispatchers pick them on the CPU)."""
    code = """
import sys, importlib.abc
class NoTriton(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "triton" or name.startswith("triton."):
            raise ImportError("no triton here")
sys.meta_path.insert(0, NoTriton())
import torch
from bkdsl.nn.resolvent import resolvent_diag
from bkdsl.nn.scattering_attention import scattering_attention_core
from bkdsl.nn.hyperbolic_moe import hyperbolic_route
from bkdsl.kernels import dispatch
assert not dispatch.triton_available()
a, b = torch.randn(2, 9, dtype=torch.float64), torch.rand(2, 8, dtype=torch.float64)
assert resolvent_diag(a, b, 0.1j, causal=True).shape == (2, 9)
x = 0.1 * torch.randn(6, 4); mu = 0.1 * torch.randn(3, 4)
assert hyperbolic_route(x, mu, 2)[1].shape == (6, 2)
q = torch.randn(1, 1, 32, 16)
assert scattering_attention_core(q, q, q, torch.rand(1, 32), 0.1, 16, True).shape == q.shape
assert not any(m == "triton" or m.startswith("triton.") for m in sys.modules)
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]
