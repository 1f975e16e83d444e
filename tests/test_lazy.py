"""bkdsl.lazy: a module is imported at its first attribute access, not before; a lazy class attribute
reads as the real function."""

from __future__ import annotations

import sys

from bkdsl.lazy import lazy_function, lazy_module


def _module_file(tmp_path, monkeypatch, name: str) -> None:
    (tmp_path / f"{name}.py").write_text("LOADS = []\nLOADS.append(1)\n\ndef double(x):\n    return 2 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)


def test_lazy_module_imports_at_first_attribute_access(tmp_path, monkeypatch):
    _module_file(tmp_path, monkeypatch, "bk_lazy_probe_a")
    m = lazy_module("bk_lazy_probe_a")
    assert "bk_lazy_probe_a" not in sys.modules and "loaded" not in repr(m)
    assert m.double(3) == 6
    assert "bk_lazy_probe_a" in sys.modules and m.LOADS == [1] and "loaded" in repr(m)
    assert m.double is sys.modules["bk_lazy_probe_a"].double
    monkeypatch.delitem(sys.modules, "bk_lazy_probe_a")


def test_setting_an_attribute_sets_it_on_the_real_module(tmp_path, monkeypatch):
    _module_file(tmp_path, monkeypatch, "bk_lazy_probe_b")
    m = lazy_module("bk_lazy_probe_b")
    m.extra = 5
    assert sys.modules["bk_lazy_probe_b"].extra == 5
    monkeypatch.delitem(sys.modules, "bk_lazy_probe_b")


def test_a_missing_module_fails_at_first_use_with_the_import_error(monkeypatch):
    m = lazy_module("bk_no_such_module_anywhere")
    try:
        m.anything
    except ModuleNotFoundError as e:
        assert e.name == "bk_no_such_module_anywhere"
    else:  # pragma: no cover
        raise AssertionError("no error")


def test_lazy_function_reads_as_the_function_on_class_and_instance(tmp_path, monkeypatch):
    _module_file(tmp_path, monkeypatch, "bk_lazy_probe_c")

    class Op:
        function = lazy_function("bk_lazy_probe_c", "double")

    assert "bk_lazy_probe_c" not in sys.modules
    real = Op.function
    assert real is sys.modules["bk_lazy_probe_c"].double
    assert Op().function is real and Op().function(4) == 8  # unbound, like staticmethod
    monkeypatch.delitem(sys.modules, "bk_lazy_probe_c")
