"""Fuzzing the front end: every input ends in success or diagnostics — never an uncaught exception.

The main test runs 2000 cases of the adversarial suite in ``bench/fuzz.py`` (grammar-aware token
mutations and splices of every shipped spec and stdlib file, random unicode, deep nesting, huge
numbers, long inputs) through parse → resolve, the formatter's round trip on every fourth, under the
suite's CPU-time watchdog; seeded (seed 1, while the offline 100 000-case run uses seed 0), so a red CI
is reproducible: the failing case's index and text are in the assertion message. Two hypothesis
generators (token soup, line mutations) run the full ``check_source`` on a few hundred more.
"""

from __future__ import annotations

import importlib.util
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bkdsl
from bkdsl.diagnostics import Diagnostic
from tests.conftest import ROOT, SPECS, STDLIB


def _bench_fuzz():
    spec = importlib.util.spec_from_file_location("bench_fuzz", ROOT / "bench" / "fuzz.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_adversarial_suite_2000_cases():
    fz = _bench_fuzz()
    fz.warm_up()
    res = fz.fuzz(CASES, seed=1, full_every=0, fmt_every=4)
    assert res["cases"] == CASES
    assert (res["tracebacks"], res["hangs"], res["fmt_failures"]) == (0, 0, 0), \
        "\n".join(f"case {f['case']} ({f['generator']}): {f['result']}\n{f['text'][:300]!r}" for f in res["failures"][:5])
    assert all(c["cases"] > 0 for c in res["by_generator"].values())  # every generator ran


def test_the_suite_catches_what_it_claims_to_catch(monkeypatch):
    """The harness fails closed: an exception, a hang and a broken round trip are each counted."""
    fz = _bench_fuzz()
    import bkdsl.syntax.fmt as fmt

    monkeypatch.setattr(fz, "HANG_S", 0.2)
    assert fz.run_case("const a = 1\n", full=False) == "ok"
    import bkdsl.semantics.resolve as R

    def boom(*a, **k):
        raise IndexError("x")

    monkeypatch.setattr(R, "resolve", boom)
    assert fz.run_case("const a = 1\n", full=False).startswith("traceback: IndexError")

    def spin(*a, **k):
        while True:
            pass

    monkeypatch.setattr(R, "resolve", spin)
    assert fz.run_case("const a = 1\n", full=False) == "hang"
    monkeypatch.undo()
    monkeypatch.setattr(fmt, "format_module", lambda m: "const = \n")
    assert fz.run_case("const a = 1\n", full=False).startswith("fmt:")

TOKENS = ["import", "from", "const", "manifold", "propagator", "binding", "integrator", "loss", "hamiltonian",
          "block", "model", "input", "param", "output", "data", "train", "on", "in", "int", "float", "complex",
          "true", "false", "x", "h", "ball", "B", "N", "d", "poincare", "linear", "relu", "expmap0", "logmap0",
          "mobius_add", "conv2d", "repeat", "mse", "cross_entropy", "leapfrog", "rk4", "stdlib.nets", "nets",
          "0", "1", "2.5", "1e-3", "0.1i", "-", "+", "*", "/", "^", "=", ":", ",", ".", "(", ")", "[", "]", "{",
          "}", "...", ";", "fm", "MeV", "fm^-3", "MeV*fm^1.5", '"s"', "#c", "\n", "\n", "\n", "$", "@"]

# In CI the examples are drawn from a fixed seed (a red CI must be reproducible); locally each run
# explores new ones. BKDSL_FUZZ_EXAMPLES raises the count for a longer hunt.
DERANDOMIZE = bool(os.environ.get("CI"))
N = int(os.environ.get("BKDSL_FUZZ_EXAMPLES", "150"))
CASES = int(os.environ.get("BKDSL_FUZZ_CASES", "2000"))

SOURCES = [p.read_text() for p in SPECS + STDLIB] or ["const a = 1\n"]


def _ok(diags) -> None:
    assert isinstance(diags, list)
    assert all(isinstance(d, Diagnostic) for d in diags)
    for d in diags:
        d.render()  # rendering never fails either


@settings(max_examples=N, deadline=None, derandomize=DERANDOMIZE, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=40))
def test_token_soup_never_crashes(tokens):
    _ok(bkdsl.check_source(" ".join(tokens), "soup.bk"))


@st.composite
def mutated(draw):
    text = draw(st.sampled_from(SOURCES))
    lines = text.split("\n")
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["delete", "dup", "swap", "insert", "number", "truncate"]))
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        if op == "delete":
            ln = lines[i]
            a = draw(st.integers(0, len(ln)))
            b = draw(st.integers(a, len(ln)))
            lines[i] = ln[:a] + ln[b:]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "insert":
            ln = lines[i]
            a = draw(st.integers(0, len(ln)))
            lines[i] = ln[:a] + " " + draw(st.sampled_from(TOKENS)) + " " + ln[a:]
        elif op == "number":
            lines[i] = lines[i].replace(draw(st.sampled_from(["1", "2", "4", "6", "0.5"])),
                                        draw(st.sampled_from(["0", "-3", "1e9", "7", "0.0"])), 1)
        elif op == "truncate":
            lines = lines[:i]
    return "\n".join(lines)


@settings(max_examples=N, deadline=None, derandomize=DERANDOMIZE,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated())
def test_mutated_specs_never_crash(text):
    _ok(bkdsl.check_source(text, "mutant.bk"))
