"""`bkdsl train SPEC --sweep KEY=A,B`: parsing, the Cartesian plan, refusal before training, the run
directories and sweep.json, and resume after an interruption (sequential and batched)."""

import json
from pathlib import Path

import pytest

from bkdsl.train import batched as Bt
from bkdsl.train import sweep as S
from bkdsl.train.cli import main

ROOT = Path(__file__).resolve().parents[2]
SPEC = str(ROOT / "specs" / "tiny_regression.bk")
QUICK = ["--set", "train.epochs=2", "--set", "data.samples=96", "--quiet", "--device", "cpu"]


# -- parsing -------------------------------------------------------------------------------------------
def test_values_split_at_top_level_commas_only():
    assert S.split_values("1e-3,3e-3") == ["1e-3", "3e-3"]
    assert S.split_values("mtl(d_z = 1, width = 8),mtl(d_z = 2)") == ["mtl(d_z = 1, width = 8)", "mtl(d_z = 2)"]
    assert S.split_values('[0.8, 0.1, 0.1], "a,b"') == ["[0.8, 0.1, 0.1]", '"a,b"']


def test_axes_are_cartesian_first_axis_slowest_with_numbered_names():
    axes, d = S.parse_sweep_args(["optimizer.lr=1e-3,3e-3", "train.seed=0,1,2"])
    assert d == []
    runs = S.combinations(axes)
    assert [r.swept for r in runs][:4] == [{"optimizer.lr": "1e-3", "train.seed": "0"},
                                           {"optimizer.lr": "1e-3", "train.seed": "1"},
                                           {"optimizer.lr": "1e-3", "train.seed": "2"},
                                           {"optimizer.lr": "3e-3", "train.seed": "0"}]
    assert len(runs) == 6
    assert [r.name for r in runs[:2]] == ["000-lr-1e-3_seed-0", "001-lr-1e-3_seed-1"]


@pytest.mark.parametrize("item", ["optimizer.lr", "optimizer.lr=", "optimizer.lr=1,,2", "optimizer.lr=1,1",
                                  "lr=1,2", "train.model.x.y=1", "a.b.c=1"])
def test_malformed_sweep_items_are_E0206(item):
    _, d = S.parse_sweep_args([item])
    assert [x.code for x in d] == ["E0206"]


def test_entry_arg_keys_fold_into_the_entrys_call():
    text = Path(SPEC).read_text()
    run = S.SweepRun(0, "000", {"model.width": "16", "optimizer.lr": "1e-2", "optimizer.betas": "[0.8, 0.9]"})
    ov, d = S.resolve_overrides(text, SPEC, {"train.epochs": "2"}, run, None)
    assert d == []
    assert ov == {"train.epochs": "2", "train.model": "profile(width = 16)",
                  "train.optimizer": "adam(lr = 1e-2, betas = [0.8, 0.9])"}
    # a --set of the entry is the call the argument is replaced in
    ov, d = S.resolve_overrides(text, SPEC, {"train.optimizer": "adamw(lr = 1e-3, weight_decay = 0.1)"},
                                S.SweepRun(0, "000", {"optimizer.lr": "5e-3"}), None)
    assert ov["train.optimizer"] == "adamw(weight_decay = 0.1, lr = 5e-3)"
    _, d = S.resolve_overrides(text, SPEC, {}, S.SweepRun(0, "000", {"loss.alpha": "1"}), None)
    assert [x.code for x in d] == ["E0206"] and "not a call" in d[0].message   # `loss = fit`


# -- the command line ----------------------------------------------------------------------------------
def test_a_refused_combination_stops_the_sweep_before_any_run(tmp_path, capsys):
    out = tmp_path / "sw"
    rc = main([SPEC, *QUICK, "--sweep", "train.batch=16,0", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 1
    assert "error[E0609]" in err and "in sweep run 001-batch-0 (train.batch=0)" in err
    assert not out.exists()          # nothing trained, nothing written


def test_sweep_writes_numbered_runs_sweep_json_and_a_table(tmp_path, capsys):
    out = tmp_path / "sw"
    rc = main([SPEC, *QUICK, "--sweep", "optimizer.lr=1e-3,1e-2", "--sweep", "model.width=8,16", "--out", str(out),
               "--sweep-mode", "sequential"])
    table = capsys.readouterr().out
    assert rc == 0
    doc = json.loads((out / "sweep.json").read_text())
    names = [r["dir"] for r in doc["runs"]]
    assert names == ["000-lr-1e-3_width-8", "001-lr-1e-3_width-16", "002-lr-1e-2_width-8", "003-lr-1e-2_width-16"]
    for r in doc["runs"]:
        fin = json.loads((out / r["dir"] / "final.json").read_text())
        assert r["status"] == fin["status"] == "completed" and r["test"] == fin["test"]
        assert fin["record"]["overrides"]["train.optimizer"] == f"adam(lr = {r['swept']['optimizer.lr']})"
        assert (out / r["dir"] / "checkpoints" / "best.safetensors").exists()
    losses = [r["test"]["test.loss"] for r in doc["runs"]]
    assert len(set(losses)) == 4                    # four different runs, not one run four times
    for n in names:
        assert n in table
    # the same sweep again into the same directory is refused; a different sweep on --resume too
    assert main([SPEC, *QUICK, "--sweep", "optimizer.lr=1e-3,1e-2", "--sweep", "model.width=8,16",
                 "--out", str(out)]) == 1
    assert "E0620" in capsys.readouterr().err
    assert main([SPEC, *QUICK, "--sweep", "optimizer.lr=1e-3,2e-2", "--sweep", "model.width=8,16",
                 "--out", str(out), "--resume"]) == 1
    err = capsys.readouterr().err
    assert "E0620" in err and "axes changed" in err


def _interrupt_at(monkeypatch, module, epoch_to_stop: int, calls_before: int = 0):
    """Ctrl-C (KeyboardInterrupt) at the first batch of ``epoch_to_stop``, after ``calls_before`` such batches."""
    real = module.apply_all
    seen = {"n": 0}

    def apply_all(augs, raw, info, seed, epoch, b):
        if epoch == epoch_to_stop and b == 0:
            seen["n"] += 1
            if seen["n"] > calls_before:
                raise KeyboardInterrupt
        return real(augs, raw, info, seed, epoch, b)

    monkeypatch.setattr(module, "apply_all", apply_all)


@pytest.mark.parametrize("mode", ["sequential", "batched", "vmap"])
def test_an_interrupted_sweep_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch, mode, capsys):
    from bkdsl.train import loop

    args = [SPEC, *QUICK, "--sweep", "optimizer.lr=1e-3,1e-2", "--sweep-mode", mode]
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0
    ref = json.loads((tmp_path / "whole" / "sweep.json").read_text())
    # sequential: run 000 completes, run 001 is interrupted in its second epoch; batched: both in epoch 2
    with monkeypatch.context() as m:
        _interrupt_at(m, loop if mode == "sequential" else Bt, 1, calls_before=1 if mode == "sequential" else 0)
        assert main([*args, "--out", str(tmp_path / "cut")]) == 130
    cut = json.loads((tmp_path / "cut" / "sweep.json").read_text())
    assert [r["status"] for r in cut["runs"]] == (["completed", "pending"] if mode == "sequential" else
                                                  ["pending", "pending"])
    if mode != "sequential":    # `batched` takes the grouped form (tiny_regression's model has one)
        assert cut["groups"] == [] and {"batched": "grouped", "vmap": "vmap"}[mode] in (tmp_path / "cut" / "000-lr-1e-3" / "train.log").read_text()
    assert not (tmp_path / "cut" / "001-lr-1e-2" / "final.json").exists()
    assert (tmp_path / "cut" / "001-lr-1e-2" / "checkpoints" / "last.safetensors").exists()
    assert main([*args, "--out", str(tmp_path / "cut"), "--resume"]) == 0
    got = json.loads((tmp_path / "cut" / "sweep.json").read_text())
    for a, b in zip(ref["runs"], got["runs"]):
        assert b["status"] == "completed"
        assert b["test"] == pytest.approx(a["test"], rel=1e-6, abs=1e-9)
        assert b["best"]["value"] == pytest.approx(a["best"]["value"], rel=1e-6)
    if mode != "sequential":
        assert all(r["mode"] == "batched" for r in got["runs"])
        assert got["groups"][-1]["resumed_at_step"] > 0
        assert got["groups"][-1]["strategy"] == {"batched": "grouped", "vmap": "vmap"}[mode]


def test_dry_run_checks_every_combination_and_trains_nothing(tmp_path, capsys):
    out = tmp_path / "sw"
    assert main([SPEC, *QUICK, "--sweep", "train.seed=0,1", "--out", str(out), "--dry-run"]) == 0
    assert "000-seed-0" in capsys.readouterr().out
    assert not out.exists()


def test_the_batched_sweep_equals_the_sequential_sweep(tmp_path, capsys):
    args = [SPEC, *QUICK, "--sweep", "optimizer.lr=1e-3,1e-2", "--sweep", "train.seed=0,1"]
    assert main([*args, "--out", str(tmp_path / "seq"), "--sweep-mode", "sequential"]) == 0
    assert main([*args, "--out", str(tmp_path / "bat"), "--sweep-mode", "batched"]) == 0
    seq, bat = (json.loads((tmp_path / d / "sweep.json").read_text()) for d in ("seq", "bat"))
    assert [g["runs"] for g in bat["groups"]] == [[r["dir"] for r in bat["runs"]]]   # one group of four
    assert bat["groups"][0]["strategy"] == "grouped" and {r["strategy"] for r in bat["runs"]} == {"grouped"}
    for a, b in zip(seq["runs"], bat["runs"]):
        assert (a["mode"], b["mode"]) == ("sequential", "batched")
        assert b["test"] == pytest.approx(a["test"], rel=1e-6, abs=1e-9)
    assert len({r["test"]["test.loss"] for r in bat["runs"]}) == 4


def test_forced_batched_mode_refuses_a_run_it_cannot_batch_with_E0621(tmp_path, capsys):
    rc = main([SPEC, *QUICK, "--sweep", "optimizer.lr=1e-3,1e-2", "--set", "train.assert_manifolds=true",
               "--sweep-mode", "batched", "--out", str(tmp_path / "sw")])
    assert rc == 1
    err = capsys.readouterr().err
    assert "error[E0621]" in err and "assert_manifolds" in err
    assert not list((tmp_path / "sw").glob("*/checkpoints"))


def test_auto_mode_trains_sequentially_on_the_cpu(tmp_path, capsys):
    out = tmp_path / "sw"
    assert main([SPEC, "--set", "train.epochs=1", "--set", "data.samples=64", "--device", "cpu",
                 "--sweep", "optimizer.lr=1e-3,1e-2", "--out", str(out)]) == 0
    doc = json.loads((out / "sweep.json").read_text())
    assert doc["mode"] == "auto" and [r["mode"] for r in doc["runs"]] == ["sequential", "sequential"]
    assert doc["groups"] == []
    assert "auto batches on CUDA only" in capsys.readouterr().err


def test_a_grid_over_a_shape_key_trains_one_grouped_group_per_shape_equal_to_sequential(tmp_path, capsys):
    # model.width changes the parameter shapes (as d_z does for u236_mtl.bk): one grouped group per width
    args = [SPEC, *QUICK, "--sweep", "model.width=16,32", "--sweep", "train.seed=0,1"]
    assert main([*args, "--out", str(tmp_path / "seq"), "--sweep-mode", "sequential"]) == 0
    assert main([*args, "--out", str(tmp_path / "grp"), "--sweep-mode", "grouped"]) == 0
    seq, grp = (json.loads((tmp_path / d / "sweep.json").read_text()) for d in ("seq", "grp"))
    assert [(g["runs"], g["strategy"]) for g in grp["groups"]] == [
        (["000-width-16_seed-0", "001-width-16_seed-1"], "grouped"),
        (["002-width-32_seed-0", "003-width-32_seed-1"], "grouped")]
    for a, b in zip(seq["runs"], grp["runs"]):
        assert b["test"] == pytest.approx(a["test"], rel=1e-5, abs=1e-9)
    assert len({r["test"]["test.loss"] for r in grp["runs"]}) == 4


def test_groups_that_differ_only_in_linear_sizes_merge_while_the_padding_is_cheap():
    runs = [S.SweepRun(i, f"{i:03d}", {}) for i in range(4)]
    big = ({"enc": (512, 1), "dec": (1, 12288)}, 24_000_000)          # u236-like: d_z = 1 and 3
    big3 = ({"enc": (512, 3), "dec": (3, 12288)}, 24_030_000)
    small = ({"a": (2, 16), "b": (16, 32)}, 600)                        # an MLP at width 16 and 32
    small2 = ({"a": (2, 32), "b": (32, 32)}, 1200)
    groups = {("sigA", 0, "grouped"): runs[:1], ("sigB", 0, "grouped"): runs[1:2],
              ("sigC", 0, "grouped"): runs[2:3], ("sigD", 0, "grouped"): runs[3:]}
    padded = {0: ("P", big), 1: ("P", big3), 2: ("Q", small), 3: ("Q", small2)}
    out = S._merge_padded(groups, padded)
    assert sorted([r.index for r in rs] for rs in out.values()) == [[0, 1], [2], [3]]
    assert Bt.padding_overhead([big, big3]) < 0.01 and Bt.padding_overhead([small, small2]) > Bt.PAD_OVERHEAD_MAX
    # vmap groups and groups at different resume steps are never merged
    groups = {("sigA", 0, "vmap"): runs[:1], ("sigB", 0, "vmap"): runs[1:2]}
    assert len(S._merge_padded(groups, {})) == 2
    groups = {("sigA", 0, "grouped"): runs[:1], ("sigB", 5, "grouped"): runs[1:2]}
    assert len(S._merge_padded(groups, {0: ("P", big), 1: ("P", big3)})) == 2


def test_forced_grouped_mode_on_a_model_without_the_form_is_E0625_with_its_reason(tmp_path, capsys):
    spec = str(ROOT / "specs" / "hamiltonian_leapfrog.bk")    # its integrator is a module, not an fx graph
    rc = main([spec, "--train", "pend_leapfrog", "--device", "cpu", "--quiet", "--set", "train.pend_leapfrog.epochs=1",
               "--sweep", "train.pend_leapfrog.seed=0,1", "--sweep-mode", "grouped", "--out", str(tmp_path / "sw")])
    assert rc == 1
    err = capsys.readouterr().err
    assert "error[E0625]" in err and "hamiltonian_leapfrog.bk:" in err and "Integrator" in err
    assert not list((tmp_path / "sw").glob("*/checkpoints"))


def test_batched_mode_merges_padded_groups_only_for_models_with_a_grouped_form(tmp_path, monkeypatch, capsys):
    # with the padding allowed to cost anything, the two widths would merge into one padded module — but a
    # model without a grouped form (faked here) must stay one vmap group per shape, not fail with E0625
    monkeypatch.setattr(Bt, "PAD_OVERHEAD_MAX", 1e9)
    args = [SPEC, *QUICK, "--sweep", "model.width=16,32", "--sweep-mode", "batched"]
    assert main([*args, "--out", str(tmp_path / "merged")]) == 0
    doc = json.loads((tmp_path / "merged" / "sweep.json").read_text())
    assert [(len(g["runs"]), g["strategy"]) for g in doc["groups"]] == [(2, "grouped")]
    monkeypatch.setattr(Bt, "grouping_refusal", lambda model: "no grouped form (test)")
    monkeypatch.setattr(Bt.GroupedModels, "__init__", lambda *a, **k: (_ for _ in ()).throw(Bt.GroupingRefused("test")))
    assert main([*args, "--out", str(tmp_path / "vmap")]) == 0
    doc = json.loads((tmp_path / "vmap" / "sweep.json").read_text())
    assert [(len(g["runs"]), g["strategy"]) for g in doc["groups"]] == [(1, "vmap"), (1, "vmap")]
