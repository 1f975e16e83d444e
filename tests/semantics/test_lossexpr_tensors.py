"""Loss terms over model tensors: parameters, two outputs, the model on a transformed input, reverse()."""

import pytest
import torch

from bkdsl.api import check_source, compile_source
from bkdsl.diagnostics import BkError
from bkdsl.train.plan import plan_from_compiled
from bkdsl.train.reversal import LAYOUTS

HEAD = """
data traj = hamiltonian_trajectories(samples = 32, dt = 0.3, normalize = none, split = [0.5, 0.25, 0.25])
model m {
  input x : [B, 2]
  param W : [2]
  e = linear(x, 8)
  output x_next = x + linear(tanh(e), 2)
  output y = x * W
}
"""
TRAIN = "train t { model = m; data = traj; loss = l; epochs = 1; batch = 8; }\n"


def _bound(loss: str):
    c = compile_source(HEAD + f"loss l = {loss}\n" + TRAIN)
    plan = plan_from_compiled(c)
    torch.manual_seed(0)
    model = plan.build_model()
    plan.loss.bind_model(model, plan.inputs)
    x = torch.randn(4, 2)
    batch = {"x": x, "x_next": torch.randn(4, 2)}
    return plan.loss, model, batch


def _errors(loss: str):
    return [d for d in check_source(HEAD + f"loss l = {loss}\n" + TRAIN, "s.bk") if d.is_error]


def test_weight_decay_of_a_named_op_is_half_the_squared_norm_and_its_gradient_is_theta():
    loss, model, batch = _bound("mse(x_next) + 0.1 * weight_decay(model.e)")
    out = model(**{"x": batch["x"]})
    total, terms = loss(out, batch)
    e = dict(model.named_modules())["e"]
    want = 0.5 * sum((p ** 2).sum() for p in e.parameters())
    assert torch.allclose(terms["weight_decay(model.e)"], want)
    # only `e`'s parameters feel the term: d(0.1·½Σθ²)/dθ = 0.1θ
    (g_total,) = torch.autograd.grad(total, [e.weight])
    (g_fit,) = torch.autograd.grad(loss(model(x=batch["x"]), batch)[1]["mse(x_next)"], [e.weight])
    assert torch.allclose(g_total - g_fit, 0.1 * e.weight, atol=1e-6)


def test_smoothness_reads_one_named_parameter_with_a_weight():
    loss, model, batch = _bound("smoothness(model.W)")
    W = model.W
    total, _ = loss(model(x=batch["x"]), batch)
    assert torch.allclose(total, ((W[..., 1:] - W[..., :-1]) ** 2).sum())
    # a weight one longer than the differences drops its last entry (the AdS η_n⁴ of the paper)
    loss, model, batch = _bound("smoothness(model.W, weight = 2.0 + 0 * model.W)")
    total, _ = loss(model(x=batch["x"]), batch)
    assert torch.allclose(total, 2.0 * ((model.W[..., 1:] - model.W[..., :-1]) ** 2).sum())


def test_two_outputs_and_the_model_on_a_transformed_input():
    loss, model, batch = _bound("mse(model.x_next, model.y) + mse(reverse(model(x = reverse(model.x_next)).x_next), data.x)")
    out = model(x=batch["x"])
    total, terms = loss(out, batch)
    R = LAYOUTS["hamiltonian_trajectories"].reverse_state
    back = R(model(x=R(out["x_next"]))["x_next"])
    assert torch.allclose(terms["mse(model.x_next, model.y)"], ((out["x_next"] - out["y"]) ** 2).mean())
    key = "mse(reverse(model(x = reverse(model.x_next)).x_next), data.x)"
    assert torch.allclose(terms[key], ((back - batch["x"]) ** 2).mean())
    total.backward()  # differentiable through both model applications
    assert model.W.grad is not None


def test_distance_on_the_poincare_ball_is_the_geodesic_distance():
    import geoopt

    loss, model, batch = _bound("distance(0.1 * model.x_next, 0.1 * data.x, c = 1.0)")
    out = model(x=batch["x"])
    total, _ = loss(out, batch)
    want = geoopt.PoincareBall(c=1.0).dist(0.1 * out["x_next"], 0.1 * batch["x"]).mean()
    assert torch.allclose(total, want)


@pytest.mark.parametrize("loss, code, needle", [
    ("mse(x_next) + weight_decay(model.nosuch)", "E0101", "nosuch"),
    ("mse(model(z = data.x).x_next, data.x)", "E0204", "no input `z`"),
    ("mse(model(x = data.x).nope, data.x)", "E0601", "no output `nope`"),
    ("mse(model.x_next, data.nope)", "E0601", "no field `nope`"),
    ("smoothness(x)", "E0204", "reads a model tensor"),
    ("mse(x_next) + model.x_next", "E0205", "tensor, not a loss"),
])
def test_wrong_operands_are_coded_diagnostics_at_check_time(loss, code, needle):
    errs = _errors(loss)
    assert errs and errs[0].code == code and needle in errs[0].message, errs


def test_a_wrong_parameter_path_stops_before_training():
    c = compile_source(HEAD + "loss l = mse(x_next) + smoothness(model.e.nosuch)\n" + TRAIN)
    plan = plan_from_compiled(c)
    with pytest.raises(BkError) as e:
        plan.loss.bind_model(plan.build_model(), plan.inputs)
    assert e.value.code == "E0101" and "weight" in e.value.diagnostic.help


def test_reverse_needs_a_declared_structure():
    spec = """
data u = woods_saxon(samples = 8)
model m { input shape : [B, 2]; output A = linear(shape, 1); }
loss l = mse(A) + mse(model(shape = reverse(data.shape)).A, data.A)
train t { model = m; data = u; loss = l; epochs = 1; batch = 8; }
"""
    errs = [d for d in check_source(spec, "s.bk") if d.is_error]
    assert [d.code for d in errs] == ["E0612"] and errs[0].span.line == 4


def test_units_of_operands_are_checked():
    spec = """
data u = woods_saxon(samples = 8, normalize = none)
model m { input shape : [B, 2]; output rho = linear(shape, 32); output A = linear(shape, 1); }
loss l = mse(model.rho, data.A)
train t { model = m; data = u; loss = l; epochs = 1; batch = 8; }
"""
    errs = [d for d in check_source(spec, "s.bk") if d.is_error]
    assert errs and errs[0].code == "E0203"


def test_a_bare_output_name_first_in_a_two_tensor_term_is_the_models_output():
    """`mse(y, data.x)`: a bare name first is the model's output. The loss declaration checked on its own
    (no model known yet) must not refuse it; the train block's check decides, with a did-you-mean."""
    assert not _errors("mse(y, data.x)")
    loss, model, batch = _bound("mse(y, data.x)")
    out = model(x=batch["x"])
    total, _ = loss(out, batch)
    assert torch.allclose(total, ((out["y"] - batch["x"]) ** 2).mean())
    errs = _errors("mse(yy, data.x)")
    assert [d.code for d in errs] == ["E0601"] and "no output `yy`" in errs[0].message, errs
    assert "did you mean `y`" in errs[0].help
