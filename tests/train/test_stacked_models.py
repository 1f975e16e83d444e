"""StackedModels under bf16 autocast with batch norm: the vmapped copy feeds its batch norms float32
(vmap's batch-norm rule on CUDA refuses bf16 input with float32 running statistics), the runs' own
modules are left without hooks, and the stacked forward equals each model's own forward."""

from __future__ import annotations

import torch

from bkdsl.train.batched import StackedModels


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.bn = torch.nn.BatchNorm2d(4)

    def forward(self, x):
        return {"y": torch.relu(self.bn(self.conv(x)))}


def test_stacked_batch_norm_gets_float32_and_runs_stay_unhooked():
    torch.manual_seed(0)
    models = [_Net() for _ in range(3)]
    st = StackedModels(models)
    assert all(not m.bn._forward_pre_hooks for m in models)       # the runs' own modules untouched
    xs = [torch.randn(2, 1, 8, 8) for _ in range(3)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = st({"x": st.stack_inputs(xs)})["y"]
        alone = [m(x)["y"] for m, x in zip(models, xs)]
    assert out.dtype == torch.float32                              # batch norm ran on float32 input
    for r in range(3):
        torch.testing.assert_close(out[r], alone[r].float(), atol=3e-2, rtol=3e-2)


def test_has_convolution_marks_the_models_auto_keeps_sequential():
    from bkdsl.train.batched import has_convolution

    assert has_convolution(_Net())
    assert not has_convolution(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)))
