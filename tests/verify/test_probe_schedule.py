"""When the probes run (bkdsl/verify/claims.py): ``check`` decides claims with a static proof without
running their confirming probe; ``compile`` (hence ``train``) and ``check --probe`` run it, and a probe
contradicting a static proof is E0310 naming the component whose declaration is wrong."""

import pytest
import torch

import bkdsl
from bkdsl import api
from bkdsl.registry import _REGISTRY, Component, component
from bkdsl.verify.claims import DEFERRED


def shift_left(x):
    return x.roll(-1, dims=1)


def cumsum(x):
    return x.cumsum(1)


def loud(x):
    return 3 * torch.tanh(x)


@pytest.fixture
def liars():
    """Components whose declarations lie: `shift_left` says pointwise but y_t = x_{t+1}; `cum_flip`
    says it commutes with a flip but is a causal cumulative sum; `loud` says |y| ≤ 1 but is 3·tanh."""

    @component("shift_left_test", kind="function", inputs=("x",))
    class ShiftLeft(Component):
        sequence = "pointwise"
        mixes_last_axis = False
        function = staticmethod(shift_left)

    @component("shift_left_prop_test", kind="propagator", inputs=("x",))
    class ShiftLeftProp(ShiftLeft):
        pass

    @component("cum_flip_test", kind="function", inputs=("x",))
    class CumFlip(Component):
        sequence = "causal"
        mixes_last_axis = False
        flip_equivariant = True
        function = staticmethod(cumsum)

    @component("loud_test", kind="function", inputs=("x",))
    class Loud(Component):
        sequence = "pointwise"
        mixes_last_axis = False
        output_bound_value = 1.0
        function = staticmethod(loud)

    yield
    for n in ("shift_left_test", "shift_left_prop_test", "cum_flip_test", "loud_test"):
        _REGISTRY.pop(n, None)


def _spec(claim: str, op: str) -> str:
    return f"model m : {claim} {{\n  input x : [B, N, 4]\n  output tanh({op}(x))\n}}\n"


def _claims(src: str, confirm: bool):
    c = api._pipeline(src, "x.bk", None, (), confirm)
    return c, {r.prop: r.proof for r in c.ir.claims}


def test_check_defers_the_confirming_probe_and_compile_runs_it():
    src = _spec("causal, equivariant(flip(N)), bounded(norm <= 1.0)", "tanh")
    c, rs = _claims(src, confirm=False)
    assert [d for d in c.diagnostics if d.is_error] == []
    assert all(p.holds and p.how == "composition" and DEFERRED in p.detail for p in rs.values())
    c, rs = _claims(src, confirm=True)
    assert all(p.holds and p.how == "composition+probe" and "at the probe" in p.detail for p in rs.values())


@pytest.mark.parametrize("claim, op, culprit", [
    ("causal", "shift_left_test", "`shift_left_test` (shift_left_test) declares itself pointwise along sequence axes (`sequence`), but its probe alone"),
    ("equivariant(flip(N))", "cum_flip_test", "`cum_flip_test` (cum_flip_test) declares that it commutes"),
    ("bounded(norm <= 1.0)", "loud_test", "`loud_test` (loud_test) declares |y| ≤ 1"),
])
def test_a_lying_declaration_passes_check_and_is_caught_by_the_confirming_probe(liars, claim, op, culprit):
    src = f"model m : {claim} {{\n  input x : [B, N, 4]\n  output {op}(x)\n}}\n"
    assert [d for d in bkdsl.check_source(src) if d.is_error] == []  # the static proof trusts the declaration
    for diags in (bkdsl.check_source(src, probe=True), api._pipeline(src, "x.bk", None).diagnostics):
        (d,) = [d for d in diags if d.is_error]
        assert d.code == "E0310" and culprit in d.label and "at the probe" in d.label
    with pytest.raises(bkdsl.api.BkErrors):  # compile (and so train) refuses it
        bkdsl.compile_source(src)


def test_a_lying_declaration_claim_is_caught_at_compile(liars):
    decl = "propagator p = shift_left_prop_test() : causal\n"
    c, rs = _claims(decl, confirm=False)
    assert rs["causal"].holds and rs["causal"].how == "analytic" and DEFERRED in rs["causal"].detail
    c, rs = _claims(decl, confirm=True)
    (d,) = [d for d in c.diagnostics if d.is_error]
    assert d.code == "E0310" and "`shift_left_prop_test` declares itself pointwise" in d.label


def test_check_still_refuses_a_deferred_probe_over_the_budget():
    src = "model m : causal {\n  input t : [B, N] int\n  output embedding(t, 1000000000, 4)\n}\n"
    (d,) = [d for d in bkdsl.check_source(src) if d.is_error]
    assert d.code == "E0305" and "over the probe budget" in d.label
    src = "model m : lipschitz(<= 2.0) {\n  input t : [B, N] int\n  output tanh(t)\n}\n"
    assert {d.code for d in bkdsl.check_source(src) if d.is_error} == \
        {d.code for d in bkdsl.check_source(src, probe=True) if d.is_error}


def test_cli_check_probe_runs_the_confirming_probe(tmp_path):
    import subprocess
    import sys

    plugin = tmp_path / "liar.py"
    plugin.write_text("from bkdsl.registry import Component, component\n\n\ndef shift_left(x):\n"
                      "    return x.roll(-1, dims=1)\n\n\n@component('shift_left', kind='function', inputs=('x',))\n"
                      "class ShiftLeft(Component):\n    sequence = 'pointwise'\n    mixes_last_axis = False\n"
                      "    function = staticmethod(shift_left)\n")
    spec = tmp_path / "m.bk"
    spec.write_text("model m : causal {\n  input x : [B, N, 4]\n  output shift_left(x)\n}\n")
    run = lambda *a: subprocess.run([sys.executable, "-m", "bkdsl", "--plugin", str(plugin), "check", *a, str(spec)],  # noqa: E731
                                    capture_output=True, text=True)
    assert run().returncode == 0
    r = run("--probe")
    assert r.returncode == 1 and "E0310" in r.stderr and "`shift_left` (shift_left) declares" in r.stderr


def test_check_of_phase8_runs_no_probe_and_loads_no_lowering():
    """phase8's `: causal` (and the next-token rule on its train block) is proven by composition at
    `check`: the model is never lowered (bkdsl.lower.fx and the model probe module stay unloaded); `--probe` lowers it."""
    import subprocess
    import sys

    code = ("import sys, bkdsl\n"
            "ds = bkdsl.check_file('specs/phase8.bk', probe=bool(int(sys.argv[1])))\n"
            "assert not [d for d in ds if d.is_error], ds\n"
            "print(sorted(m for m in ('bkdsl.verify.model_probe', 'bkdsl.lower.fx') if m in sys.modules))\n")
    out = [subprocess.run([sys.executable, "-c", code, flag], capture_output=True, text=True, check=True).stdout.strip()
           for flag in ("0", "1")]
    assert out[0] == "[]"
    assert "bkdsl.verify.model_probe" in out[1] and "bkdsl.lower.fx" in out[1]
