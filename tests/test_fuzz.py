"""Fuzzing the front end: every input ends in success or diagnostics — never an uncaught exception.

Two generators (hypothesis): token soup over the language's own vocabulary, and mutations of the real
specs and stdlib files (deleted spans, duplicated/swapped lines, inserted tokens, replaced numbers).
Together at least 2000 cases run in CI.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bkdsl
from bkdsl.diagnostics import Diagnostic
from tests.conftest import SPECS, STDLIB

TOKENS = ["import", "from", "const", "manifold", "propagator", "binding", "integrator", "loss", "hamiltonian",
          "block", "model", "input", "param", "output", "data", "train", "on", "in", "int", "float", "complex",
          "true", "false", "x", "h", "ball", "B", "N", "d", "poincare", "linear", "relu", "expmap0", "logmap0",
          "mobius_add", "conv2d", "repeat", "mse", "cross_entropy", "leapfrog", "rk4", "stdlib.nets", "nets",
          "0", "1", "2.5", "1e-3", "0.1i", "-", "+", "*", "/", "^", "=", ":", ",", ".", "(", ")", "[", "]", "{",
          "}", "...", ";", "fm", "MeV", "fm^-3", "MeV*fm^1.5", '"s"', "#c", "\n", "\n", "\n", "$", "@"]

# In CI the examples are drawn from a fixed seed (a red CI must be reproducible); locally each run
# explores new ones. BKDSL_FUZZ_EXAMPLES raises the count for a longer hunt.
DERANDOMIZE = bool(os.environ.get("CI"))
N = int(os.environ.get("BKDSL_FUZZ_EXAMPLES", "1000"))

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
