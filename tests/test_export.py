"""bkdsl export: the export of a trained run loads in a fresh process that never imports bkdsl and gives
the same predictions, in physical units."""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

import bkdsl
from bkdsl.cli import main
from tests.tiny_run import train_tiny

# Runs in a fresh interpreter: torch (+ safetensors / onnxruntime) only. Reads inputs.safetensors, writes
# outputs.safetensors; fails if anything imported bkdsl.
CONSUMER = r'''
import json, sys
import torch
from safetensors.torch import load_file, save_file
fmt, path, inp, out = sys.argv[1:5]
x = load_file(inp)
if fmt == "torch.export":
    ep = torch.export.load(path)
    y = ep.module()(**x)
elif fmt == "onnx":
    import onnxruntime as ort
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    y = {o.name: torch.from_numpy(v) for o, v in zip(s.get_outputs(), s.run(None, {k: v.numpy() for k, v in x.items()}))}
else:  # safetensors: the user's own module for the architecture, every number from the file
    from safetensors import safe_open
    w = load_file(path)
    meta = json.loads(safe_open(path, "pt").metadata()["bkdsl"])
    assert meta["normalization"]["folded"] and meta["outputs"]["rho"]["unit"] == "fm^-3"
    lin = lambda h, n: h @ w[f"model.{n}.weight"].T + w[f"model.{n}.bias"]
    s = (x["shape"] - w["shift__shape"].float()) / w["scale__shape"].float()
    h = torch.tanh(lin(torch.tanh(lin(s, "linear")), "linear_1"))
    y = {k: lin(h, k) * w[f"scale__{k}"].float() + w[f"shift__{k}"].float() for k in ("rho", "A")}
save_file({k: v.detach().contiguous() for k, v in y.items()}, out)
assert "bkdsl" not in sys.modules and not any(m.startswith("bkdsl.") for m in sys.modules), "imported bkdsl"
print("ok")
'''


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("export"))


def _formats():
    out = ["safetensors", "torch.export"]
    try:
        import onnx, onnxruntime, onnxscript  # noqa: F401,E401
        out.append("onnx")
    except ImportError:
        out.append(pytest.param("onnx", marks=pytest.mark.skip(reason="onnx/onnxruntime/onnxscript not installed")))
    return out


@pytest.mark.parametrize("fmt", _formats())
def test_export_round_trip_in_a_process_without_bkdsl(run, tmp_path, fmt, capsys):
    target = tmp_path / {"safetensors": "m.safetensors", "torch.export": "m.pt2", "onnx": "m.onnx"}[fmt]
    assert main(["export", str(run), "--format", fmt, "-o", str(target)]) == 0
    assert f"wrote {target}" in capsys.readouterr().out
    x = {"shape": torch.tensor([[3.5, 0.5], [5.0, 0.55], [6.5, 0.62], [4.2, 0.47], [5.9, 0.6]])}  # R, a in fm
    save_file(x, str(tmp_path / "in.safetensors"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, "-c", CONSUMER, fmt, str(target), str(tmp_path / "in.safetensors"),
                        str(tmp_path / "out.safetensors")], cwd=tmp_path, env=dict(env, OMP_NUM_THREADS="1"),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-2000:]
    got = load_file(str(tmp_path / "out.safetensors"))
    with torch.no_grad():
        ref = bkdsl.load_run(run)(**x)
    for k in ("rho", "A"):
        torch.testing.assert_close(got[k], ref[k], rtol=1e-5, atol=1e-6)
    assert float(ref["rho"].max()) < 1.0 and float(ref["A"].abs().max()) > 10  # fm^-3 and nucleons, not [0, 1]


def test_export_metadata_names_units_and_normalisation(run, tmp_path):
    from bkdsl.export import export_run

    path, meta = export_run(run, "torch.export", tmp_path / "m.pt2")
    assert meta["dynamic_batch"] is True and meta["max_rel_err"] <= 1e-4
    assert meta["inputs"]["shape"] == {"shape": ["B", 2], "dtype": "float", "unit": "fm"}
    assert set(meta["normalization"]["fields"]) == {"shape", "rho", "A"}
    assert meta["run"]["spec_hash"] == json.loads((run / "run.json").read_text())["spec_hash"]


def test_export_refuses_a_directory_that_is_not_a_run(tmp_path, capsys):
    assert main(["export", str(tmp_path), "--format", "safetensors"]) == 1
    err = capsys.readouterr().err
    assert "error[E0622]" in err and "Traceback" not in err


def test_an_export_that_differs_from_the_model_is_refused_and_removed(run, tmp_path, monkeypatch):
    """The check can fail: a program that is not the model's (here: outputs off by 1 %) is E0623."""
    import bkdsl.export as E

    real = torch.export.load
    monkeypatch.setattr(torch.export, "load", lambda p: _Scaled(real(p)))
    with pytest.raises(bkdsl.BkError) as e:
        E.export_run(run, "torch.export", tmp_path / "m.pt2")
    assert e.value.code == "E0623" and "differs" in e.value.diagnostic.message
    assert not (tmp_path / "m.pt2").exists()


class _Scaled:
    def __init__(self, ep):
        self.ep = ep

    def module(self):
        m = self.ep.module()
        return lambda **x: {k: v * 1.01 for k, v in m(**x).items()}
