"""HyperbolicMoE(graphed_routing=True): CUDA graphs of the routing op where they apply, the op elsewhere."""

import pytest
import torch

from bkdsl.nn.hyperbolic_moe import HyperbolicMoE


def test_graphed_routing_off_cuda_is_the_plain_module():
    torch.manual_seed(0)
    plain = HyperbolicMoE(8, 4)
    graphed = HyperbolicMoE(8, 4, graphed_routing=True)
    graphed.load_state_dict(plain.state_dict())
    x = 0.1 * torch.rand(10, 8)
    assert not graphed._graphable(x)                     # CPU: no graph is captured
    torch.testing.assert_close(graphed(x), plain(x), rtol=0, atol=0)
    assert graphed._graphs == {}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_graphed_routing_matches_the_op_on_cuda():
    torch.manual_seed(0)
    plain = HyperbolicMoE(32, 8).cuda()
    graphed = HyperbolicMoE(32, 8, graphed_routing=True).cuda()
    graphed.load_state_dict(plain.state_dict())
    x = (0.1 * torch.rand(256, 32)).cuda().requires_grad_(True)
    for _ in range(2):                                   # the second step replays the captured graphs
        yp, yg = plain(x), graphed(x)
        torch.testing.assert_close(yg, yp, rtol=1e-6, atol=1e-7)
        gp = torch.autograd.grad(yp.sum(), [x, plain.centroids])
        gg = torch.autograd.grad(yg.sum(), [x, graphed.centroids])
        for a, b in zip(gg, gp):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert len(graphed._graphs) == 1
