from bkdsl.syntax import ast as A
from bkdsl.syntax.parser import parse
from tests.conftest import pos

EXAMPLE = '''# comment
import stdlib.nets                     # trailing
from stdlib.nets import dense

const d_model = 256
const dr      = 0.4 fm
const alpha   = 1e-3 fm^-3
const z0      = 0.1i
const v0      = [0.6, 1.2] MeV*fm^1.5

manifold ball = poincare(c = 1.0)
integrator leap = leapfrog(dt = 0.05, steps = 20) : symplectic, reversible
loss mtl(alpha) = mse(E) + alpha * l2_integral(rho, measure = cylinder(dr, dr))

block layer(d: int, heads: int = 2) {
  input  h : [B, N, d] on ball
  param  W : [d, 2 * d]
  output mobius_add(h, h)
}

data u = file("x.npz",
              x = field("x") in fm^-3)

train t {
  model   = layer(d = 4)
  select  = best(val.loss)
  metrics = [mae(E) in MeV]
}
'''


def test_parses_every_construct():
    m, diags = parse(EXAMPLE, "ex.bk")
    assert diags == []
    kinds = [type(s).__name__ for s in m.stmts]
    assert kinds == ["Import", "FromImport", "Const", "Const", "Const", "Const", "Const", "ComponentDecl",
                     "ComponentDecl", "ComponentDecl", "Block", "Data", "Train"]
    consts = {s.name: s.value for s in m.stmts if isinstance(s, A.Const)}
    assert consts["dr"] == A.Quantity(A.Num(0.4, "0.4"), "fm")
    assert consts["alpha"].unit == "fm^-3"
    assert consts["z0"].value == 0.1j
    assert consts["v0"].unit == "MeV*fm^1.5" and isinstance(consts["v0"].magnitude, A.ListExpr)
    leap = m.stmts[8]
    assert [c.name for c in leap.claims] == ["symplectic", "reversible"]
    blk = m.stmts[10]
    assert blk.formals[1].default == A.Num(2, "2")
    assert blk.body[0].type.manifold == "ball"
    assert blk.body[1].type.shape[1].op == "*"
    train = m.stmts[12]
    assert [e.key for e in train.entries] == ["model", "select", "metrics"]  # `model` is a key here
    assert isinstance(train.entries[2].value.items[0], A.InUnit)


def test_spans_point_at_source():
    m, _ = parse(EXAMPLE, "ex.bk")
    leap = m.stmts[8]
    assert (leap.span.line, leap.span.col) == pos(EXAMPLE, "integrator leap")
    assert (leap.claims[1].span.line, leap.claims[1].span.col) == pos(EXAMPLE, "reversible")


def test_comments_are_collected_with_positions():
    m, _ = parse(EXAMPLE, "ex.bk")
    assert [c.text for c in m.comments] == ["# comment", "# trailing"]
    assert (m.comments[1].line, m.comments[1].col) == pos(EXAMPLE, "# trailing")


def test_precedence_power_binds_tighter_than_unary_minus():
    m, _ = parse("const x = -2^2 * 3 + 1\n", "p.bk")
    e = m.stmts[0].value
    assert isinstance(e, A.BinOp) and e.op == "+"
    assert isinstance(e.left, A.BinOp) and e.left.op == "*"
    assert isinstance(e.left.left, A.Neg) and e.left.left.operand.op == "^"


def test_syntax_error_has_location_and_expectation():
    src = "const x = 1\nblock b {\n  y = f(\n}\n"
    m, diags = parse(src, "bad.bk")
    assert m is None and len(diags) == 1
    d = diags[0]
    assert d.code == "E0001"
    assert (d.span.line, d.span.col) == pos(src, "}")
    assert d.help and "expected" in d.help


def test_unexpected_character():
    src = "const x = 3 $ 4\n"
    _, diags = parse(src, "bad.bk")
    assert diags[0].code == "E0001" and (diags[0].span.line, diags[0].span.col) == pos(src, "$")


def test_newlines_inside_brackets_are_whitespace():
    m, diags = parse("const v = [1,\n  2,\n  3]\nconst w = f(a = 1,\n  b = 2)\n", "nl.bk")
    assert diags == [] and len(m.stmts[0].value.items) == 3
