"""Time reversal of training data (bkdsl/train/reversal.py, the time_reverse augmentation)."""

import pytest
import torch

from bkdsl.api import check_source, compile_source
from bkdsl.components.synthetic_data import pendulum_pairs
from bkdsl.diagnostics import BkError
from bkdsl.nn.hamiltonians import PendulumPotential, QuadraticKinetic, SeparableHamiltonian
from bkdsl.nn.integrators import Integrator
from bkdsl.train.augment import TimeReverse, apply_all, bind_to_source
from bkdsl.train.plan import plan_from_compiled
from bkdsl.train.reversal import LAYOUTS, PhaseSpacePair, SequenceFields, TokenPair


def _flow(x: torch.Tensor, dt: float) -> torch.Tensor:
    """The true pendulum flow (k = m = 1) for time dt, fine Yoshida-4."""
    H = SeparableHamiltonian(QuadraticKinetic(1.0), PendulumPotential(1.0), dim=1)
    fine = Integrator(H, "yoshida4", 1.0, 1)
    q, p = x[:, :1].double(), x[:, 1:].double()
    with torch.no_grad():
        for _ in range(1000):
            q, p = fine.step(q, p, dt=dt / 1000)
    return torch.cat([q, p], 1)


def test_pendulum_pair_is_reversed_as_a_hamiltonian_pair():
    """The issue's regression: (0.320, −1.678) must not become (−1.678, 0.320)."""
    x = torch.tensor([[0.320, -1.678]], dtype=torch.float64)
    x1 = _flow(x, 0.3)
    aug = TimeReverse(p=1.0, layout=LAYOUTS["hamiltonian_trajectories"])
    out = apply_all([aug], {"x": x, "x_next": x1}, {}, 0, 0, 0)
    assert torch.equal(out["x_next"], torch.tensor([[0.320, 1.678]], dtype=torch.float64))  # R x = (q, −p)
    assert torch.equal(out["x"], torch.stack([x1[:, 0], -x1[:, 1]], 1))                     # R x′
    # and the reversed pair is a true pair of the same system: Φ_dt(R x′) = R x
    assert torch.allclose(_flow(out["x"], 0.3), out["x_next"], atol=1e-9)


def test_reversed_generated_pairs_are_true_pairs_and_p_mixes():
    d = pendulum_pairs(64, 0.3, seed=1)
    d = {k: v.double() for k, v in d.items()}
    aug = TimeReverse(p=0.5, layout=LAYOUTS["hamiltonian_trajectories"])
    out = apply_all([aug], d, {}, 3, 0, 0)
    flipped = ~torch.isclose(out["x"], d["x"]).all(1)
    assert 0 < int(flipped.sum()) < 64
    assert torch.allclose(_flow(out["x"], 0.3), out["x_next"], atol=1e-5)  # data stored in float32


def test_token_windows_reverse_as_windows():
    w = torch.arange(22).reshape(2, 11)                   # two windows of 11 tokens
    batch = {"tokens": w[:, :-1], "targets": w[:, 1:]}
    out = TokenPair("tokens", "targets").reverse_pair(batch)
    rw = w.flip(1)
    assert torch.equal(out["tokens"], rw[:, :-1]) and torch.equal(out["targets"], rw[:, 1:])
    # next-token structure kept: targets[t] = tokens[t + 1]
    assert torch.equal(out["targets"][:, :-1], out["tokens"][:, 1:])


def test_sequence_fields_flip_their_axis():
    x = torch.randn(3, 5, 2)
    assert torch.equal(SequenceFields(("x",), axis=0).reverse_pair({"x": x})["x"], x.flip(1))


def test_phase_space_state_reversal_checks_the_layout():
    lay = PhaseSpacePair("x", "x_next", dof=1)
    assert torch.equal(lay.reverse_state(torch.tensor([[1.0, 2.0]])), torch.tensor([[1.0, -2.0]]))
    with pytest.raises(BkError) as e:
        lay.reverse_state(torch.zeros(2, 3))
    assert e.value.code == "E0612"


SPEC = """
data traj = hamiltonian_trajectories(samples = 64, dt = 0.3, normalize = none, augment = [{aug}])
model m {{ input x : [B, 2]; output x_next = linear(x, 2); }}
loss l = mse(x_next)
train t {{ model = m; data = traj; loss = l; epochs = 1; batch = 8; }}
"""


def test_check_accepts_a_declared_source_and_the_runner_binds_it():
    assert not [d for d in check_source(SPEC.format(aug="time_reverse(p = 1.0)")) if d.is_error]
    plan = plan_from_compiled(compile_source(SPEC.format(aug="time_reverse(p = 1.0)")))
    (aug,) = plan.data.augment
    assert aug.layout == LAYOUTS["hamiltonian_trajectories"]


def test_check_refuses_undeclared_sources_and_partial_fields():
    bad = """
data u = woods_saxon(samples = 8, augment = [time_reverse(p = 0.5)])
model m { input shape : [B, 2]; output A = linear(shape, 1); }
loss l = mse(A)
train t { model = m; data = u; loss = l; epochs = 1; batch = 8; }
"""
    (d,) = [d for d in check_source(bad, "s.bk") if d.is_error]
    assert d.code == "E0612" and (d.span.line, d.span.col) == (2, 46)
    (d,) = [d for d in check_source(SPEC.format(aug="time_reverse(p = 1.0, fields = [x])"), "s.bk") if d.is_error]
    assert d.code == "E0612" and "part of it" in d.message


def test_bind_to_source_reads_a_user_declaration():
    class Mine:
        name = "mine"
        time_reversal = SequenceFields(("s",))

    (aug,) = bind_to_source([TimeReverse(p=1.0)], Mine())
    assert aug.layout == SequenceFields(("s",))
