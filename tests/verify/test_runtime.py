import geoopt
import pytest
import torch

from bkdsl.diagnostics import BkError
from bkdsl.verify.runtime import assert_manifolds, distance_off


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.ball = geoopt.PoincareBall(c=1.0)
        self.centroid = geoopt.ManifoldParameter(self.ball.projx(torch.tensor([[0.3, 0.2]])), manifold=self.ball)
        self.bk_out_manifold = self.ball

    def forward(self, x):
        return self.ball.mobius_add(x, self.centroid)


def test_on_manifold_passes_and_counts():
    net = Net()
    with assert_manifolds(net) as g:
        net(torch.tensor([[0.1, 0.1]]))
    assert g.checks == 2 and not g.handles


def test_parameter_pushed_off_is_named():
    net = Net()
    with torch.no_grad():
        net.centroid.data.copy_(torch.tensor([[1.5, 0.0]]))  # outside the unit ball
    with assert_manifolds(net):
        with pytest.raises(BkError) as e:
            net(torch.tensor([[0.1, 0.1]]))
    assert e.value.code == "E0402" and "centroid" in str(e.value) and "distance" in str(e.value)


def test_manifold_tensor_output_checked():
    sphere = geoopt.Sphere()

    class M(torch.nn.Module):
        def forward(self, x):
            return geoopt.ManifoldTensor(2 * x, manifold=sphere)

    m = M()
    with assert_manifolds(m):
        with pytest.raises(BkError):
            m(torch.tensor([[1.0, 0.0]]))


def test_distance_off():
    s = geoopt.Sphere()
    assert distance_off(s, torch.tensor([1.0, 0.0])) < 1e-7
    assert distance_off(s, torch.tensor([2.0, 0.0])) == pytest.approx(1.0)
