"""``bkdsl new NAME``: a small commented starter spec that checks, trains in seconds on a CPU and proves
a claim.

The task is the Woods–Saxon density of a nucleus, ρ(r) = ρ0 / (1 + exp((r − R)/a)), learned on a radial
grid from (R, a); the spec generates its own data (``woods_saxon``), so nothing is downloaded. The
model ends in a sigmoid, so its claim ``bounded(norm <= 1.0)`` is proven by the compiler (sup |σ| = 1)
— and refused if the user swaps the sigmoid for an unbounded op. tests/test_starter.py runs
``new → check → train`` on the written file.
"""

from __future__ import annotations

import re
from pathlib import Path

from bkdsl.diagnostics import BkError
from bkdsl.exitcodes import EXIT_OK

# The names the starter itself declares, and the language's keywords: a train block may take neither.
_TAKEN = {"net", "profiles", "fit", "as", "binding", "block", "bool", "complex", "const", "data", "false",
          "float", "from", "hamiltonian", "import", "in", "input", "int", "integrator", "loss", "manifold",
          "model", "on", "output", "param", "propagator", "train", "true"}

TEMPLATE = """\
# {name}: a starter spec written by `bkdsl new`. Edit it, then
#
#   bkdsl check {file}              parse, type-check, and prove the claim on `net`
#   bkdsl compile {file} --run      torch.fx code, a model summary and report.md under out/{stem}/
#   bkdsl train {file}              train on the CPU in seconds; runs/{stem}/ gets metrics, plots, weights
#   bkdsl components                every component you can use (docs/components.md)
#
# The task: learn the Woods–Saxon density of a nucleus, rho(r) = rho0 / (1 + exp((r − R) / a)), on a
# radial grid, from its half-density radius R and surface diffuseness a. The spec generates its own data.

data profiles = woods_saxon(
  samples = 256,                   # (R, a) pairs drawn from the ranges below
  nr = 16,                         # radial grid points, r = 0, step, 2 step, ...
  step = 0.5 fm,
  radius = [3.0, 7.0] fm,          # R
  diffuseness = [0.45, 0.65] fm,   # a
  rho0 = 0.16 fm^-3,               # nuclear saturation density
  split = [0.8, 0.1, 0.1],         # train / validation / test
  normalize = minmax,              # every field scaled to [0, 1] for training; metrics are in physical units
  seed = 0
)

# A property after `:` is a claim the compiler must prove or refuse. `bounded(norm <= 1.0)`: every
# output entry lies in [−1, 1] for every input — proven because the last op is a sigmoid (sup |σ| = 1).
# Replace `sigmoid` by `linear` and `bkdsl check` refuses it (error E0301).
model net(width: int = 32) : bounded(norm <= 1.0) {{
  input shape : [B, 2]                  # (R, a), normalised; the data field is named `shape`
  h = tanh(linear(shape, width))        # one hidden layer; `bkdsl components layer` lists others
  output rho = sigmoid(linear(h, 16))   # rho on the 16 grid points (normalised to [0, 1])
}}

loss fit = mse(rho)                     # mean squared error against the data field `rho`

train {name} {{
  model     = net(width = 32)
  data      = profiles
  loss      = fit
  optimizer = adam(lr = 1e-2)
  batch     = 32
  epochs    = 20                        # one curve point per epoch; try --set train.epochs=60
  seed      = 0
  metrics   = [mae(rho) in fm^-3, rel_l2(rho)]   # reported in physical units (fm^-3), on the test split
  plots     = [curve(val.mae_rho)]
}}
"""


def train_name(path: Path) -> str:
    """The train block's name: the file's stem as a bk identifier, clear of keywords and the starter's
    own names."""
    name = re.sub(r"\W", "_", path.stem, flags=re.ASCII).strip("_") or "starter"
    if name[0].isdigit():
        name = "spec_" + name
    return f"{name}_run" if name in _TAKEN else name


def starter_text(path: Path) -> str:
    name = train_name(path)
    return TEMPLATE.format(name=name, file=path.as_posix(), stem=path.stem)


def write_starter(target: str | Path) -> Path:
    """Write the starter spec to ``target`` (``.bk`` appended when missing); E0005 if it exists."""
    path = Path(target)
    if path.suffix != ".bk":
        path = path.with_name(path.name + ".bk")
    if path.exists():
        raise BkError("E0005", f"{path} already exists; `bkdsl new` does not overwrite files",
                      help="pick another name, or move the file away first")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8") as f:  # "x": refuse a file created meanwhile, too
            f.write(starter_text(path))
    except FileExistsError:
        raise BkError("E0005", f"{path} already exists; `bkdsl new` does not overwrite files") from None
    except OSError as e:
        raise BkError("E0611", f"cannot write {path}: {e.strerror or type(e).__name__}",
                      help="check the directory exists and is writable") from None
    return path


# ------------------------------------------------------------------------------------ command
def add_parser(subparsers):
    p = subparsers.add_parser("new", help="write a small commented starter spec (NAME.bk) that trains in seconds",
                              description="Write NAME.bk: generated data, a small model with a proven claim, "
                                          "a loss and a train block. Never overwrites a file.")
    p.add_argument("name", metavar="NAME", help="the spec to write (NAME or NAME.bk, a path is allowed)")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    path = write_starter(args.name)
    print(f"wrote {path}\nnext:\n  bkdsl check {path}\n  bkdsl train {path}        (writes runs/{path.stem}/)")
    return EXIT_OK
