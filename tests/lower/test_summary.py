"""Issue #19 item 7: the model summary (bkdsl/lower/summary.py) — parameter counts against torch's numel
on the lowered module, multiply-adds by hand and against torch's FlopCounterMode."""

from __future__ import annotations

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

import bkdsl
from bkdsl.cli import main
from bkdsl.diagnostics import BkError
from bkdsl.lower.fx import example_inputs
from bkdsl.lower.summary import parse_sizes, summarize

MLP = ("model mlp() {\n  input x : [B, 3]\n  h = relu(linear(x, 5))\n  output y = linear(h, 2)\n}\n")
NESTED = ("block lin(n: int) {\n  input x : [B, n]\n  output tanh(linear(x, n))\n}\n"
          "model m() {\n  input x : [B, 4]\n  param s : [4]\n  output y = repeat(lin(4), 3)(x) * s\n}\n")
CONV = ("model enc() {\n  input img : [B, 2, 12, 10]\n  h = relu(conv2d(img, out_channels = 4, kernel = 3, stride = 2))\n"
        "  output z = linear(flatten(h), 3)\n}\n")
GPT = ("model lm() {\n  input tokens : [B, N] int\n  h = embedding(tokens, 16, 32)\n"
       "  h = h + self_attention(layernorm(h), heads = 4)\n  h = h + gelu_mlp(layernorm(h), hidden = 48)\n"
       "  output logits = linear(h, 16)\n}\n")


def _summary(src, sizes=None):
    c = bkdsl.compile_source(src, "s.bk")
    ir = c.model_ir(c.main_call)
    return c, ir, summarize(ir, c.module, sizes)


def _torch_macs(c, ir, sizes):
    inputs = example_inputs(ir, sizes)
    # the math backend of SDPA runs as bmm's, which the counter sees (the CPU flash kernel it does not)
    with FlopCounterMode(display=False) as fc, torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        c.module(**inputs)
    return fc.get_total_flops() // 2  # torch counts a multiply-add as two flops


def test_mlp_by_hand():
    c, ir, s = _summary(MLP)
    # linear 3→5: 15 weights + 5 biases, 15 MACs; linear 5→2: 10 + 2, 10 MACs; relu: 0
    assert [(r.name, r.params, r.macs) for r in s.rows] == [("x", 0, 0), ("linear", 20, 15), ("h", 0, 0), ("y", 12, 10)]
    assert s.total_params == 32 == sum(p.numel() for p in c.module.parameters())
    assert s.total_macs == 25 and s.macs_exact
    assert [r.shape for r in s.rows][-1] == "[B, 2] float"


def test_mlp_macs_scale_with_batch_and_match_torch():
    c, ir, s = _summary(MLP, {"B": 7})
    assert s.total_macs == 7 * 25 == _torch_macs(c, ir, {"B": 7})


def test_nested_blocks_and_params_sum_to_the_module():
    c, ir, s = _summary(NESTED)
    assert s.total_params == sum(p.numel() for p in c.module.parameters()) == 3 * (16 + 4) + 4
    blocks = [r for r in s.rows if r.op.startswith("block")]
    assert len(blocks) == 3 and all(r.params == 20 and r.macs == 16 for r in blocks)
    assert any(r.depth == 1 and r.op == "linear" for r in s.rows)
    assert s.total_macs == 48


GREEN = "model gf() {\n  input g : [B, N] complex\n  output f = green_features(g, 8)\n}\n"


MOE = ("manifold ball = poincare(c = 1.0)\nmodel moe() {\n  input x : [B, N, 8] on ball\n"
       "  output y = hyperbolic_moe(x, experts = 4, top_k = 2, hidden = 16)\n}\n")


@pytest.mark.parametrize("src,sizes", [(CONV, {}), (GPT, {"N": 8}), (GREEN, {"N": 5}), (MOE, {"N": 5})])
def test_macs_match_torch_flop_counter(src, sizes):
    c, ir, s = _summary(src, sizes)
    assert s.macs_exact
    assert s.total_params == sum(p.numel() for p in c.module.parameters())
    assert s.total_macs == _torch_macs(c, ir, {"B": 1, **sizes}) > 0


def test_unsized_dimension_and_unknown_component_are_not_counted_as_zero():
    c, ir, s = _summary(GPT)  # N has no size
    assert not s.macs_exact and "linear" in s.uncounted and "self_attention" in s.uncounted
    src = ("block b() {\n  input x : [B, 16]\n  output circulant(linear(x, 16), 16)\n}\n"
           "model m() {\n  input x : [B, 16]\n  output y = linear(b()(x), 2)\n}\n")
    c, ir, s = _summary(src)
    block = next(r for r in s.rows if r.op.startswith("block"))
    assert block.macs is None and s.uncounted == ("circulant",)
    assert s.total_macs == 16 * 16 + 16 * 2  # a lower bound: the counted rows, inside the block too
    assert s.total_params == sum(p.numel() for p in c.module.parameters()) > 0


def test_bad_size_is_a_coded_error():
    assert parse_sizes(["N=128", "T=4"]) == {"N": 128, "T": 4}
    for bad in ("N", "N=0", "N=x", "=3"):
        with pytest.raises(BkError) as e:
            parse_sizes([bad])
        assert e.value.code == "E0206"


def test_compile_prints_the_summary_and_writes_it_to_the_report(tmp_path, capsys):
    spec = tmp_path / "lm.bk"
    spec.write_text(GPT)
    assert main(["compile", str(spec), "-o", str(tmp_path / "out"), "--size", "N=8"]) == 0
    out = capsys.readouterr().out
    assert "model summary" in out and "self_attention" in out
    _, _, s = _summary(GPT, {"N": 8})
    assert f"{s.total_macs:,}" in out
    report = (tmp_path / "out" / "report.md").read_text()
    assert "### Summary" in report and f"{s.total_macs:,}" in report and "| `logits` | linear |" in report
