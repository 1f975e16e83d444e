"""Data sources: reading npz / h5 / safetensors, and every bad-data diagnostic (code + field + span)."""

import json

import h5py
import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

from bkdsl.diagnostics import BkError, Span
from bkdsl.semantics.values import CallValue, Ref
from bkdsl.components.training import instantiate
from bkdsl.train.data import validate
from bkdsl.components.data_sources import text_bytes_dataset
from bkdsl.train.corpus import corpus_files

SPAN = Span("spec.bk", 3, 5, 3, 20)
FSPAN = Span("spec.bk", 4, 9, 4, 30)


def write(path, arrays, units=None):
    s = str(path)
    if s.endswith(".npz"):
        extra = {"__units__": np.array(json.dumps(units))} if units else {}
        np.savez(path, **arrays, **extra)
    elif s.endswith((".h5", ".hdf5")):
        with h5py.File(path, "w") as f:
            for k, v in arrays.items():
                d = f.create_dataset(k, data=v)
                if units and k in units:
                    d.attrs["unit"] = units[k]
    else:
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, s,
                  metadata={"units": json.dumps(units)} if units else None)
    return path


def file_call(path, **fields):
    return CallValue("file", [str(path)], fields, span=SPAN, arg_spans={k: FSPAN for k in fields})


def fld(key, unit=None, shape=None):
    kw = {}
    if unit:
        kw["unit"] = unit
    if shape:
        kw["shape"] = shape
    return CallValue("field", [key], kw, span=FSPAN)


def load(call):
    ds = instantiate(call, "data").load(seed=0)
    validate(ds, span=SPAN)
    return ds


@pytest.fixture
def arrays():
    rng = np.random.default_rng(0)
    return {"density": rng.random((10, 4, 6)).astype(np.float64), "energy": rng.normal(size=(10,)) * 5}


@pytest.mark.parametrize("suffix", [".npz", ".h5", ".safetensors"])
def test_reads_declared_fields_in_every_format(tmp_path, arrays, suffix):
    p = write(tmp_path / f"d{suffix}", arrays, {"energy": "MeV", "density": "fm^-3"})
    ds = load(file_call(p, rho=fld("density", "fm^-3", [4, 6]), E=fld("energy", "MeV")))
    assert set(ds.fields) == {"rho", "E"}
    assert ds.fields["rho"].dtype == torch.float32 and ds.fields["rho"].shape == (10, 4, 6)
    np.testing.assert_allclose(ds.fields["E"].numpy(), arrays["energy"], rtol=1e-6)
    assert ds.info["E"].unit == "MeV"


@pytest.mark.parametrize("suffix", [".npz", ".h5", ".safetensors"])
def test_missing_field_is_E0601_naming_field_and_span(tmp_path, arrays, suffix):
    p = write(tmp_path / f"d{suffix}", arrays)
    with pytest.raises(BkError) as e:
        load(file_call(p, rho=fld("density"), Q20=fld("quadrupole")))
    assert e.value.code == "E0601"
    assert "`Q20`" in e.value.diagnostic.message and "quadrupole" in e.value.diagnostic.message
    assert e.value.diagnostic.span == FSPAN
    assert "density" in e.value.diagnostic.help  # lists what the file holds


def test_wrong_shape_is_E0602(tmp_path, arrays):
    p = write(tmp_path / "d.h5", arrays)
    with pytest.raises(BkError) as e:
        load(file_call(p, rho=fld("density", shape=[4, 7])))
    assert e.value.code == "E0602" and "`rho`" in e.value.diagnostic.message
    assert e.value.diagnostic.span == FSPAN


def test_different_sample_counts_is_E0602(tmp_path, arrays):
    arrays["energy"] = arrays["energy"][:7]
    p = write(tmp_path / "d.npz", arrays)
    with pytest.raises(BkError) as e:
        load(file_call(p, rho=fld("density"), E=fld("energy")))
    assert e.value.code == "E0602"


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf_is_E0603(tmp_path, arrays, bad):
    arrays["density"][3, 1, 2] = bad
    p = write(tmp_path / "d.safetensors", arrays)
    with pytest.raises(BkError) as e:
        load(file_call(p, rho=fld("density"), E=fld("energy")))
    assert e.value.code == "E0603"
    assert "`rho`" in e.value.diagnostic.message and "sample 3" in e.value.diagnostic.message
    assert e.value.diagnostic.span == FSPAN


def test_unit_mismatch_is_E0604(tmp_path, arrays):
    p = write(tmp_path / "d.h5", arrays, {"energy": "fm"})
    with pytest.raises(BkError) as e:
        load(file_call(p, E=fld("energy", "MeV")))
    assert e.value.code == "E0604" and "`E`" in e.value.diagnostic.message
    assert e.value.diagnostic.span == FSPAN


def test_compatible_units_are_converted(tmp_path, arrays):
    p = write(tmp_path / "d.npz", arrays, {"energy": "keV"})
    ds = load(file_call(p, E=fld("energy", "MeV")))
    np.testing.assert_allclose(ds.fields["E"].numpy(), arrays["energy"] * 1e-3, rtol=1e-6)


def test_unit_given_as_quantity_or_ref(tmp_path, arrays):
    from bkdsl.semantics.units import ureg

    p = write(tmp_path / "d.npz", arrays, {"energy": "MeV"})
    ds = load(file_call(p, E=CallValue("field", ["energy"], {"unit": ureg.Quantity(1, "MeV")})))
    assert ds.info["E"].unit == "MeV"
    ds = load(file_call(p, E=CallValue("field", ["energy"], {"unit": Ref("MeV")})))
    assert ds.info["E"].unit == "MeV"


@pytest.mark.parametrize("content,name", [(None, "absent.h5"), (b"not an hdf5 file at all", "x.h5"),
                                          (b"garbage", "x.npz"), (b"\x00\x01", "x.safetensors"),
                                          (b"a,b\n1,2\n", "x.csv")])
def test_unreadable_file_is_E0605(tmp_path, content, name):
    p = tmp_path / name
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(BkError) as e:
        load(file_call(p, x=fld("x")))
    assert e.value.code == "E0605" and e.value.diagnostic.span == SPAN


def test_npz_with_pickled_objects_is_refused(tmp_path):
    p = tmp_path / "evil.npz"
    np.savez(p, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(BkError) as e:
        load(file_call(p, x=fld("x")))
    assert e.value.code == "E0605"


def test_text_bytes_is_deterministic_and_shifted(tmp_path):
    for i in range(3):
        (tmp_path / f"m{i}.py").write_text(f"# module {i}\n" + "x = 1\n" * (40 + i))
    a = text_bytes_dataset(16, 10_000, str(tmp_path))
    b = text_bytes_dataset(16, 10_000, str(tmp_path))
    assert torch.equal(a.fields["tokens"], b.fields["tokens"])
    assert a.fields["tokens"].dtype == torch.int64 and a.fields["tokens"].shape[1] == 16
    assert torch.equal(a.fields["tokens"][:, 1:], a.fields["targets"][:, :-1])
    assert a.groups.unique().numel() == 3


def test_stdlib_text_is_available():
    files = corpus_files()
    assert len(files) > 100 and all(f.suffix == ".py" for f in files)
    assert not any("site-packages" in f.parts for f in files)
    ds = text_bytes_dataset(64, 50_000)
    assert ds.fields["tokens"].shape[1] == 64 and 700 <= ds.fields["tokens"].shape[0] <= 50_000 // 65
    assert int(ds.fields["tokens"].max()) < 256


def test_every_built_in_source_is_written_once_schema_and_load_in_one_class():
    """Each registered data source is one DataSource class: its schema carries the common data keys,
    and it implements load (the registry's DataSource protocol) itself — no second runtime elsewhere."""
    from bkdsl import registry
    from bkdsl.components.data_sources import COMMON_DATA_KEYS, DataSource

    sources = {c.name: c for c in registry.all_components().values() if c.kind == "data"}
    assert {"file", "text_bytes", "woods_saxon", "nuclear_densities", "associative_recall", "ads_response",
            "hamiltonian_trajectories", "holographic_task"} <= set(sources)
    for name, cls in sources.items():
        assert issubclass(cls, DataSource), name
        assert cls.load is not DataSource.load, name
        assert set(COMMON_DATA_KEYS) <= set(cls.Params.model_fields), name
