"""Runner robustness (issue #13 items 5–6): every case is a coded diagnostic, never a traceback, a hang
or a run that reports `completed` without its checkpoint."""

from __future__ import annotations

import errno
import json
import os

import numpy as np
import pytest
import torch

from bkdsl.diagnostics import BkError
from bkdsl.train import checkpoint as ck
from bkdsl.train.checkpoint import load_checkpoint, save_checkpoint
from bkdsl.train.loop import MAX_SEED, run
from tests.components.test_data_sources import file_call, load, write
from tests.train.tiny import tiny_plan


def _fld(key):
    from bkdsl.semantics.values import CallValue

    return CallValue("field", [key], {})


def _save(d, step=7):
    w = {"lin.weight": torch.randn(4, 3)}
    return save_checkpoint(d, "last", w, {"rng.torch": torch.get_rng_state()}, {"epoch": 1, "global_step": step})


def _rewrite_header(p, sidecar):
    """A weights file whose header names ``sidecar`` (same tensors, same recorded hash)."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(p), framework="pt") as f:
        meta = dict(f.metadata())
    meta["sidecar"] = sidecar
    save_file(load_file(str(p)), str(p), metadata=meta)


@pytest.mark.parametrize("sidecar", ["/dev/zero", "../../etc/passwd", "../outside-000000007.state.safetensors",
                                     "sub/last-000000007.state.safetensors"])
def test_sidecar_outside_the_checkpoint_directory_is_refused_unopened(tmp_path, sidecar, monkeypatch):
    p = _save(tmp_path / "ck")
    _rewrite_header(p, sidecar)
    opened = []
    monkeypatch.setattr(ck, "file_sha256", lambda q: opened.append(q) or "x")
    with pytest.raises(BkError) as e:
        load_checkpoint(p)
    assert e.value.code == "E0606"
    assert opened == []  # refused before reading a byte of it


def test_sidecar_symlink_out_of_the_directory_is_refused(tmp_path):
    p = _save(tmp_path / "ck")
    side = next((tmp_path / "ck").glob("last-*.state.safetensors"))
    outside = tmp_path / "elsewhere.safetensors"
    outside.write_bytes(side.read_bytes())
    side.unlink()
    side.symlink_to(outside)
    with pytest.raises(BkError) as e:
        load_checkpoint(p)
    assert e.value.code == "E0606"


def test_full_disk_while_checkpointing_is_E0611_and_never_completed(tmp_path, monkeypatch):
    def full(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(ck, "save_file", full)
    with pytest.raises(BkError) as e:
        run(tiny_plan(epochs=1), tmp_path / "run", quiet=True)
    assert e.value.code == "E0611" and "No space left" in e.value.diagnostic.message
    final = tmp_path / "run" / "final.json"
    assert not final.exists() or json.loads(final.read_text())["status"] != "completed"


def test_out_is_a_file_is_E0611(tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    for out in (f, f / "sub"):
        with pytest.raises(BkError) as e:
            run(tiny_plan(epochs=1), out, quiet=True)
        assert e.value.code == "E0611"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_out_unwritable_is_E0611(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(BkError) as e:
            run(tiny_plan(epochs=1), ro / "run", quiet=True)
        assert e.value.code == "E0611"
    finally:
        ro.chmod(0o700)


@pytest.mark.parametrize("seed", [10 ** 24, -1, MAX_SEED + 1])
def test_seed_out_of_range_is_E0609(tmp_path, seed):
    plan = tiny_plan(epochs=1)
    plan.config.seed = seed
    with pytest.raises(BkError) as e:
        run(plan, tmp_path / "run", quiet=True)
    assert e.value.code == "E0609" and "seed" in e.value.diagnostic.message


def test_25_digit_seed_from_the_cli_is_a_diagnostic(tmp_path, capsys):
    from bkdsl.cli import main

    spec = tmp_path / "s.bk"
    spec.write_text((__import__("pathlib").Path(__file__).parents[2] / "specs" / "tiny_regression.bk").read_text())
    rc = main(["train", str(spec), "--out", str(tmp_path / "r"), "--set", "train.seed=" + "9" * 25,
               "--set", "train.epochs=1", "--set", "data.samples=32", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1 and "error[E06" in err and "Traceback" not in err


def test_complex_h5_field_is_E0605(tmp_path):
    p = write(tmp_path / "c.h5", {"psi": (np.ones((6, 3)) + 1j * np.ones((6, 3))).astype(np.complex64)})
    with pytest.raises(BkError) as e:
        load(file_call(p, psi=_fld("psi")))
    assert e.value.code == "E0605" and "complex" in e.value.diagnostic.message
