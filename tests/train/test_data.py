"""Splits, normalisation, augmentations and the dataset cache."""

import pytest
import torch
from hypothesis import given, settings, strategies as st

from bkdsl.diagnostics import BkError
from bkdsl.train.augment import Flip, TimeReverse, apply_all
from bkdsl.train.cache import DatasetCache, cache_key, code_version
from bkdsl.train.data import Dataset, FieldInfo, epoch_order, split_indices
from bkdsl.train.normalize import Normalizer
from bkdsl.components.data_sources import woods_saxon_dataset


@settings(max_examples=30, deadline=None)
@given(n=st.integers(10, 500), seed=st.integers(0, 2**31))
def test_split_is_a_deterministic_partition(n, seed):
    a = split_indices(n, [0.8, 0.1, 0.1], seed)
    b = split_indices(n, [0.8, 0.1, 0.1], seed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    allidx = torch.cat([a["train"], a["val"], a["test"]])
    assert torch.equal(allidx.sort().values, torch.arange(n))
    assert len(a["val"]) >= 1 and len(a["test"]) >= 1


def test_split_depends_on_seed_and_keeps_groups_together():
    assert not torch.equal(split_indices(100, [0.5, 0.5], 0)["train"], split_indices(100, [0.5, 0.5], 1)["train"])
    groups = torch.arange(60) // 6  # 10 groups of 6
    s = split_indices(60, [0.6, 0.2, 0.2], 4, groups)
    sets = [set(groups[s[k]].tolist()) for k in ("train", "val", "test")]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    assert sum(len(x) for x in sets) == 10


@pytest.mark.parametrize("bad", [[0.0, 0.5, 0.5], [0.9, 0.2], [0.5, -0.1, 0.6]])
def test_bad_split_is_E0609(bad):
    with pytest.raises(BkError) as e:
        split_indices(50, bad, 0)
    assert e.value.code == "E0609"


def test_epoch_order_depends_on_seed_and_epoch_only():
    assert torch.equal(epoch_order(50, 3, 2), epoch_order(50, 3, 2))
    assert not torch.equal(epoch_order(50, 3, 2), epoch_order(50, 3, 1))


@pytest.mark.parametrize("kind", ["minmax", "standard"])
def test_normalisation_fits_train_and_inverts(kind):
    g = torch.Generator().manual_seed(0)
    x = 5 + 3 * torch.randn(200, 4, generator=g)
    tok = torch.randint(0, 9, (200, 4), generator=g)
    n = Normalizer(kind).fit({"x": x, "tok": tok})
    y = n.apply({"x": x, "tok": tok})
    assert torch.equal(y["tok"], tok)  # integer fields are never normalised
    if kind == "minmax":
        assert float(y["x"].min()) == pytest.approx(0, abs=1e-6) and float(y["x"].max()) == pytest.approx(1, abs=1e-6)
    else:
        assert float(y["x"].mean()) == pytest.approx(0, abs=1e-5) and float(y["x"].std(unbiased=False)) == pytest.approx(1, abs=1e-4)
    torch.testing.assert_close(n.invert("x", y["x"]), x)
    m = Normalizer().load_state(n.state_json(), n.state_tensors())
    torch.testing.assert_close(m.invert("x", y["x"]), x)


def test_constant_field_does_not_divide_by_zero():
    n = Normalizer("minmax").fit({"c": torch.full((5, 2), 3.0)})
    assert torch.isfinite(n.apply({"c": torch.full((5, 2), 3.0)})["c"]).all()


def _grid_batch(b=64):
    rho = torch.arange(b * 3 * 4, dtype=torch.float32).reshape(b, 3, 4)
    return {"rho": rho, "E": torch.arange(b, dtype=torch.float32)[:, None], "Q30": torch.ones(b, 1)}


def test_flip_named_axis_flips_grids_and_negates_odd_scalars():
    info = {"rho": FieldInfo("rho", axes=("r", "z")), "E": FieldInfo("E"), "Q30": FieldInfo("Q30", odd_under=("z",))}
    b = _grid_batch()
    out = apply_all([Flip("z", p=0.5)], b, info, seed=1, epoch=0, step=0)
    flipped = (out["rho"] != b["rho"]).flatten(1).any(1)
    assert 0 < int(flipped.sum()) < 64
    assert torch.equal(out["rho"][flipped], b["rho"][flipped].flip(2))
    assert torch.equal(out["Q30"][:, 0] < 0, flipped)
    assert torch.equal(out["E"], b["E"])
    again = apply_all([Flip("z", p=0.5)], b, info, seed=1, epoch=0, step=0)
    assert torch.equal(again["rho"], out["rho"])  # draws depend on (seed, epoch, step) only


def test_flip_integer_axis_and_probability_bounds():
    b = _grid_batch()
    assert torch.equal(apply_all([Flip(0, p=1.0)], b, {}, 0, 0, 0)["rho"], b["rho"].flip(1))
    assert torch.equal(apply_all([Flip(0, p=0.0)], b, {}, 0, 0, 0)["rho"], b["rho"])
    with pytest.raises(BkError) as e:
        apply_all([Flip("q")], b, {"rho": FieldInfo("rho", axes=("r", "z"))}, 0, 0, 0)
    assert e.value.code == "E0609"


def test_time_reverse_reverses_declared_sequences_and_refuses_undeclared_data():
    from bkdsl.train.reversal import SequenceFields

    x = torch.arange(20.0).reshape(2, 10)
    aug = TimeReverse(p=1.0, layout=SequenceFields(("x",)))
    assert torch.equal(apply_all([aug], {"x": x}, {}, 0, 0, 0)["x"], x.flip(1))
    with pytest.raises(BkError) as e:  # no declared structure: never a silent axis flip
        apply_all([TimeReverse(p=1.0)], {"x": x}, {}, 0, 0, 0)
    assert e.value.code == "E0612"


def test_cache_generates_once_and_keys_on_params_and_code(tmp_path):
    calls = []

    def gen():
        calls.append(1)
        return woods_saxon_dataset(8, 5, 0.5, (3.0, 7.0), (0.5, 0.6), 0.16, 0)

    c = DatasetCache(tmp_path)
    v = code_version(woods_saxon_dataset)
    a, hit_a = c.get_or_create("ws", {"samples": 8}, v, gen)
    b, hit_b = c.get_or_create("ws", {"samples": 8}, v, gen)
    assert (hit_a, hit_b) == (False, True) and len(calls) == 1
    assert torch.equal(a.fields["rho"], b.fields["rho"]) and b.info["rho"].unit == "fm^-3"
    assert b.info["rho"].axes == ("r",)
    c.get_or_create("ws", {"samples": 9}, v, gen)
    c.get_or_create("ws", {"samples": 8}, v + "x", gen)
    assert len(calls) == 3
    assert cache_key("ws", {"a": 0.1}, v) != cache_key("ws", {"a": 0.1000000001}, v)


def test_damaged_cache_entry_is_regenerated(tmp_path):
    c = DatasetCache(tmp_path)
    gen = lambda: Dataset({"x": torch.ones(3, 2)}, {"x": FieldInfo("x")})  # noqa: E731
    c.get_or_create("s", {}, "v", gen)
    p = c.path(cache_key("s", {}, "v"))
    p.write_bytes(p.read_bytes()[:20])
    ds, hit = c.get_or_create("s", {}, "v", gen)
    assert not hit and torch.equal(ds.fields["x"], torch.ones(3, 2))


def test_nuclear_densities_wraps_the_generator_and_caches(monkeypatch, tmp_path):
    """The physics generator is called once per parameter set; fields get units, grid axes and parity."""
    import sys
    import types

    import numpy as np

    from bkdsl.components.training import instantiate
    from bkdsl.semantics.units import ureg
    from bkdsl.semantics.values import CallValue

    calls = []

    def generate_nuclear_densities(nucleus, samples, seed, progress=None):
        calls.append(nucleus)
        rng = np.random.default_rng(seed)
        return {"rho": rng.random((samples, 4, 6)), "E": ureg.Quantity(rng.normal(size=samples) * 1e3, "keV"),
                "Q30": rng.normal(size=samples)}

    import bkdsl.physics  # noqa: F401  the real package first, so that only its dataset module is faked

    fake = types.ModuleType("bkdsl.physics.dataset")
    fake.generate_nuclear_densities = generate_nuclear_densities
    monkeypatch.setitem(sys.modules, "bkdsl.physics.dataset", fake)
    monkeypatch.setattr("bkdsl.physics.dataset", fake, raising=False)
    monkeypatch.setenv("BKDSL_CACHE", str(tmp_path))
    monkeypatch.setattr("bkdsl.components.data_sources.code_version", lambda *o: "test")
    call = CallValue("nuclear_densities", [], {"nucleus": "U236", "samples": 5, "split": [0.6, 0.2, 0.2]})
    a = instantiate(call, "data").load(seed=2)
    b = instantiate(call, "data").load(seed=2)
    assert calls == ["U236"] and torch.equal(a.fields["rho"], b.fields["rho"])
    assert b.info["E"].unit == "MeV" and b.info["rho"].axes == ("r", "z") and b.info["Q30"].odd_under == ("z",)
    out = apply_all([Flip("z", p=1.0)], {k: v[:2] for k, v in b.fields.items()}, b.info, 0, 0, 0)
    assert torch.equal(out["rho"], b.fields["rho"][:2].flip(2)) and torch.equal(out["Q30"], -b.fields["Q30"][:2])
