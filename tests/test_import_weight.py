"""Issue 14: the front end does not import torch, scipy or geoopt.

``import bkdsl``, ``bkdsl --help``, ``bkdsl fmt`` and ``bkdsl check`` (phase8, and a spec in the
shape of bench/check_scale.py's 10 000-line one) each run in a fresh interpreter, which then reports
what ``sys.modules`` holds. torch and geoopt must be absent; scipy too, except for the package root
that pint itself imports while probing for optional support (``pint.compat``: ``import scipy``) —
checked against what ``import pint`` alone loads, so any scipy submodule that bkdsl pulls in fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "geoopt", "scipy")

# Runs the CLI (or a statement) in this interpreter, then prints the loaded modules as JSON.
WRAPPER = """
import json, sys
code = 0
if sys.argv[1] == "-c":
    exec(sys.argv[2])
else:
    from bkdsl.cli import main
    try:
        code = main(sys.argv[1:])
    except SystemExit as e:
        code = e.code
print("MODULES=" + json.dumps(sorted(sys.modules)))
print("EXIT=" + json.dumps(code))
"""


def loaded(*args: str, cwd: Path = ROOT) -> tuple[set[str], object, str]:
    r = subprocess.run([sys.executable, "-c", WRAPPER, *args], capture_output=True, text=True, cwd=cwd,
                       timeout=120)
    lines = {ln.split("=", 1)[0]: ln.split("=", 1)[1] for ln in r.stdout.splitlines() if "=" in ln
             and ln.split("=", 1)[0] in ("MODULES", "EXIT")}
    assert "MODULES" in lines, r.stdout + r.stderr
    return set(json.loads(lines["MODULES"])), json.loads(lines["EXIT"]), r.stdout + r.stderr


def heavy(mods: set[str]) -> list[str]:
    return sorted(m for m in mods if m.split(".")[0] in HEAVY)


@pytest.fixture(scope="module")
def pint_scipy() -> set[str]:
    """The scipy modules ``import pint`` loads by itself (its optional-support probe)."""
    mods, _, _ = loaded("-c", "import pint")
    return {m for m in mods if m.split(".")[0] == "scipy"}


def test_the_wrapper_sees_an_import():
    """The check can fail: a statement that imports torch is reported as such."""
    mods, _, _ = loaded("-c", "import bkdsl.components.layers as L; L.torch.nn")
    assert "torch" in heavy(mods)


@pytest.mark.parametrize("args", [("-c", "import bkdsl"), ("--help",), ("fmt", "--check", "specs/phase8.bk")],
                         ids=["import", "help", "fmt"])
def test_import_help_and_fmt_load_none_of_torch_scipy_geoopt(args):
    mods, code, out = loaded(*args)
    assert code in (0, None), out
    assert heavy(mods) == [], heavy(mods)


def test_check_phase8_loads_no_torch_or_geoopt(pint_scipy):
    mods, code, out = loaded("check", "specs/phase8.bk")
    assert code == 0 and "ok" in out, out
    assert heavy(mods) == sorted(pint_scipy), sorted(set(heavy(mods)) - pint_scipy)
    assert "bkdsl.components.optics" not in mods  # lookup imported only the modules phase8 uses


def test_check_u236_loads_no_torch_or_geoopt(pint_scipy):
    """The thesis' flagship: its data source's field units come from a torch-free table
    (bkdsl/physics/field_units.py), not from the generator's module."""
    mods, code, out = loaded("check", "specs/u236_mtl.bk")
    assert code == 0 and "ok" in out, out
    assert heavy(mods) == sorted(pint_scipy), sorted(set(heavy(mods)) - pint_scipy)
    assert "bkdsl.physics.dataset" not in mods


def test_check_of_a_generated_spec_loads_no_torch(tmp_path, pint_scipy):
    """The constructs of bench/check_scale.py's spec (constants with units, a manifold, a leapfrog
    integrator, blocks of dense layers, models, a loss), a few hundred lines of them."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from check_scale import generate
    finally:
        sys.path.pop(0)
    spec = tmp_path / "scale.bk"
    spec.write_text(generate(300), encoding="utf-8")
    mods, code, out = loaded("check", str(spec))
    assert code == 0, out
    assert heavy(mods) == sorted(pint_scipy), sorted(set(heavy(mods)) - pint_scipy)


def test_torch_loads_when_a_probe_runs_and_only_then(tmp_path, pint_scipy):
    """A claim proven statically (``causal`` composed over the graph) is checked without torch; its
    confirming probe (``check --probe``) loads it. A claim only a probe decides (``leapfrog : symplectic``,
    JᵀΩJ = Ω at random points) loads it at plain ``check`` too."""
    spec = tmp_path / "causal.bk"
    spec.write_text("model m : causal {\n  input x : [B, 16, 8]\n  output tanh(linear(x, 8))\n}\n", encoding="utf-8")
    mods, code, out = loaded("check", str(spec))
    assert code == 0, out
    assert heavy(mods) == sorted(pint_scipy)
    mods, code, out = loaded("check", "--probe", str(spec))
    assert code == 0, out
    assert "torch" in mods and "bkdsl.verify.model_probe" in mods
    spec = tmp_path / "lf.bk"
    spec.write_text("integrator lf = leapfrog(dt = 0.01, steps = 4) : symplectic\n", encoding="utf-8")
    mods, code, out = loaded("check", str(spec))
    assert code == 0, out
    assert "torch" in mods and "bkdsl.verify.probes" in mods
