"""Checkpoint I/O: round trip, corruption detection (E0606), nothing to resume (E0610), no pickles."""

import re
from pathlib import Path

import pytest
import torch

from bkdsl.diagnostics import BkError
from bkdsl.train.checkpoint import load_checkpoint, save_checkpoint


def _save(d, step=7):
    w = {"lin.weight": torch.randn(4, 3), "lin.bias": torch.zeros(4)}
    t = {"optim.0.exp_avg": torch.ones(4, 3), "rng.torch": torch.get_rng_state()}
    return save_checkpoint(d, "last", w, t, {"epoch": 2, "global_step": step, "best": None}), w, t


def test_round_trip_and_old_sidecar_removed(tmp_path):
    _save(tmp_path, step=5)
    p, w, t = _save(tmp_path, step=9)
    ck = load_checkpoint(p)
    assert all(torch.equal(ck.weights[k], w[k]) for k in w)
    assert torch.equal(ck.tensors["rng.torch"], t["rng.torch"]) and ck.state["epoch"] == 2
    assert sorted(x.name for x in tmp_path.iterdir()) == ["last-000000009.state.safetensors", "last.safetensors"]
    # the weights file alone is a plain safetensors file any tool can read
    from safetensors.torch import load_file

    assert set(load_file(str(p))) == set(w)


def test_truncated_weights_are_E0606(tmp_path):
    p, _, _ = _save(tmp_path)
    p.write_bytes(p.read_bytes()[:-9])
    with pytest.raises(BkError) as e:
        load_checkpoint(p)
    assert e.value.code == "E0606"


@pytest.mark.parametrize("which", ["weights", "sidecar"])
def test_flipped_byte_is_E0606(tmp_path, which):
    p, _, _ = _save(tmp_path)
    target = p if which == "weights" else next(tmp_path.glob("last-*.state.safetensors"))
    b = bytearray(target.read_bytes())
    b[-3] ^= 0x40  # inside the tensor data: the file still parses
    target.write_bytes(bytes(b))
    with pytest.raises(BkError) as e:
        load_checkpoint(p)
    assert e.value.code == "E0606" and "hash" in e.value.diagnostic.message


def test_missing_sidecar_and_garbage_are_E0606(tmp_path):
    p, _, _ = _save(tmp_path)
    next(tmp_path.glob("last-*.state.safetensors")).unlink()
    with pytest.raises(BkError) as e:
        load_checkpoint(p)
    assert e.value.code == "E0606"
    p.write_bytes(b"\x80\x04 definitely a pickle, never loaded")
    with pytest.raises(BkError) as e:
        load_checkpoint(p)
    assert e.value.code == "E0606"


def test_absent_checkpoint_is_E0610(tmp_path):
    with pytest.raises(BkError) as e:
        load_checkpoint(tmp_path / "checkpoints" / "last.safetensors")
    assert e.value.code == "E0610"


def test_no_unpickling_anywhere_in_the_runner():
    root = Path(__file__).resolve().parents[2] / "bkdsl" / "train"
    for f in root.glob("*.py"):
        text = f.read_text()
        for m in re.finditer(r"torch\.load\(([^)]*)\)", text):
            assert "weights_only=True" in m.group(1), f"{f.name}: {m.group(0)}"
        assert "import pickle" not in text and "allow_pickle=True" not in text, f.name
