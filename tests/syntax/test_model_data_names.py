"""`model` and `data` are names inside expressions (loss operands) and keywords where statements start."""

from bkdsl.syntax import ast as A
from bkdsl.syntax.fmt import format_module
from bkdsl.syntax.parser import parse

SRC = """loss l(lam = 1.0) = mse(x_next) + lam * mse(reverse(model(x = reverse(model.x_next)).x_next), data.x)
train t {
  model = m
  data  = d
}
"""


def test_model_and_data_parse_as_names_in_expressions_and_keys_in_train_blocks():
    mod, diags = parse(SRC, "s.bk")
    assert not diags
    loss, train = mod.stmts
    names = []

    def walk(e):
        if isinstance(e, A.Name):
            names.append(e.id)
        for v in getattr(e, "__dict__", {}).values():
            for x in (v if isinstance(v, list) else [v]):
                if hasattr(x, "__dataclass_fields__"):
                    walk(x)

    walk(loss)
    assert names.count("model") == 2 and names.count("data") == 1
    assert [e.key for e in train.entries][:2] == ["model", "data"]


def test_loss_operands_survive_the_formatter():
    out = format_module(parse(SRC, "s.bk")[0])
    assert "model(x = reverse(model.x_next)).x_next" in out and "data.x" in out
    assert parse(out, "s.bk")[1] == []
