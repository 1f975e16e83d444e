"""Tile tables with fallback (#20.3): a tile that fails to compile or fails its check gives way to the next,
with one warning; the tile in use is queryable; other errors propagate."""

import logging

import pytest
import torch
from triton.compiler.errors import CompilationError

from bkdsl.kernels import dispatch, tiles
from bkdsl.kernels.resolvent import ops
from bkdsl.kernels.resolvent.naive import resolvent_diag_causal_reference, resolvent_diag_reference
from bkdsl.nn.resolvent import resolvent_diag


@pytest.fixture(autouse=True)
def _fresh_tables():
    tiles.reset()
    yield
    tiles.reset()


class _Boom(CompilationError):
    def __init__(self, msg):  # CompilationError's own constructor wants an AST node
        Exception.__init__(self, msg)
        self.msg = msg

    def __str__(self):
        return self.msg


def test_compile_error_falls_back_once_and_is_remembered(caplog):
    calls = []

    def launch(t):
        calls.append(t)
        if t == "big":
            raise _Boom("ptxas died (segmentation fault)")
        return torch.ones(3)

    with caplog.at_level(logging.WARNING, logger="bkdsl.kernels.tiles"):
        assert torch.equal(tiles.run("k", ("key",), ["big", "small"], launch), torch.ones(3))
        assert torch.equal(tiles.run("k", ("key",), ["big", "small"], launch), torch.ones(3))
    assert calls == ["big", "small", "small"]  # the failed tile is not retried
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "'big'" in warnings[0].getMessage() and "'small'" in warnings[0].getMessage()
    assert tiles.active("k") == {"k ('key',)": "small"}
    assert "ptxas died" in next(iter(tiles.failures("k").values()))


def test_runtime_error_from_ptxas_counts_as_a_compile_error():
    assert tiles.is_compile_error(RuntimeError("Internal Triton PTX codegen error: ptxas: segmentation fault"))
    assert not tiles.is_compile_error(RuntimeError("CUDA error: an illegal memory access was encountered"))
    assert not tiles.is_compile_error(ValueError("bad shape"))


def test_failed_check_falls_back():
    def launch(t):
        return torch.full((2,), float("nan")) if t == 0 else torch.zeros(2)

    out = tiles.run("k", 1, [0, 1], launch, tiles.finite_or_nonfinite_input(torch.ones(2)))
    assert torch.equal(out, torch.zeros(2))
    assert tiles.active("k") == {"k 1": 1}


def test_nan_input_is_not_a_tile_failure():
    nan_in = torch.tensor([float("nan")])
    out = tiles.run("k", 2, ["a", "b"], lambda t: nan_in * 2, tiles.finite_or_nonfinite_input(nan_in))
    assert torch.isnan(out).all() and tiles.active("k") == {"k 2": "a"}


def test_other_errors_propagate_and_exhaustion_is_reported():
    with pytest.raises(ValueError, match="caller"):
        tiles.run("k", 3, ["a", "b"], lambda t: (_ for _ in ()).throw(ValueError("caller's mistake")))
    assert tiles.active("k") == {}

    def always(t):
        raise _Boom(f"tile {t} does not fit")

    with pytest.raises(tiles.TileTableExhausted, match="tile a does not fit.*tile b does not fit"):
        tiles.run("k", 4, ["a", "b"], always)


def test_resolvent_op_falls_back_from_a_failing_default_layout(monkeypatch, caplog):
    """Under the interpreter: a default layout with SEGS = 3 (tl.arange needs a power of two) fails to
    compile; the causal and the two-sided ops fall back to the next layout, say so once, and are right."""
    bad = dict(seg=2, segs=3, io="strided")
    monkeypatch.setattr(ops, "FWD_TILES", (bad,) + ops.FWD_TILES[1:])
    g = torch.Generator().manual_seed(7)
    a = torch.randn(2, 21, generator=g, dtype=torch.float64)
    b = 1.0 + 0.3 * torch.randn(2, 20, generator=g, dtype=torch.float64)
    with caplog.at_level(logging.WARNING, logger="bkdsl.kernels.tiles"), dispatch.force("triton"):
        gc = resolvent_diag(a, b, 0.2 + 0.1j, causal=True)
        resolvent_diag(a, b, 0.2 + 0.1j, causal=True)
        gt = resolvent_diag(a, b, 0.2 + 0.1j)
    torch.testing.assert_close(gc, resolvent_diag_causal_reference(a, b, 0.2 + 0.1j), rtol=1e-11, atol=1e-12)
    torch.testing.assert_close(gt, resolvent_diag_reference(a, b, 0.2 + 0.1j), rtol=1e-11, atol=1e-12)
    assert tiles.active("resolvent.causal_fwd") == {"resolvent.causal_fwd ('torch.float64', 'cpu')": ops.FWD_TILES[1]}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2  # once per kernel (causal, two-sided), not per call
    assert all("segs': 3" in w and "InterpreterError" in w for w in warnings)
