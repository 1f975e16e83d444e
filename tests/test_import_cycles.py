"""tools/import_cycles.py finds a cycle hidden in a function (so its clean report of bkdsl means something)."""

from __future__ import annotations

import importlib.util

from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("import_cycles", ROOT / "tools" / "import_cycles.py")
tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tool)


def test_a_cycle_through_an_import_inside_a_function_is_found(tmp_path):
    pkg = tmp_path / "bkdsl"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from bkdsl import b\n")
    (pkg / "b.py").write_text("def f():\n    from bkdsl.a import x\n")
    (pkg / "c.py").write_text("import importlib\nimportlib.import_module('bkdsl.d')\n")
    (pkg / "d.py").write_text("import bkdsl.c\n")
    assert sorted(tool.cycles(tmp_path)) == [["bkdsl.a", "bkdsl.b"], ["bkdsl.c", "bkdsl.d"]]


def test_bkdsl_has_no_import_cycle():
    assert tool.cycles(ROOT) == []
