"""Issue #13 item 6: imports read only inside the spec's tree, the stdlib and --include directories."""

from __future__ import annotations

import os

import pytest

import bkdsl
from bkdsl.cli import main
from bkdsl.semantics import resolve as R


@pytest.fixture
def no_reads_outside(monkeypatch, tmp_path):
    """Record every module file the loader reads."""
    read = []
    orig = R.Path.read_text

    def spy(self, *a, **k):
        read.append(os.path.realpath(self))
        return orig(self, *a, **k)

    monkeypatch.setattr(R.Path, "read_text", spy)
    return read


@pytest.mark.parametrize("line", ['import "../../../../../../../../etc/passwd" as p',
                                  'from "/etc/passwd" import x',
                                  'import "/etc/hostname" as h',
                                  'from "../outside.bk" import a'])
def test_imports_outside_the_tree_are_refused_unread(tmp_path, line, no_reads_outside):
    (tmp_path / "outside.bk").write_text("const a = 1\n")
    spec = tmp_path / "proj" / "main.bk"
    spec.parent.mkdir()
    spec.write_text(line + "\n")
    diags = bkdsl.check_file(spec)
    assert [d.code for d in diags] == ["E0106"], [d.render() for d in diags]
    assert "root:x:0:0" not in diags[0].render()  # never echoes the file's content
    assert not [p for p in no_reads_outside if p.startswith("/etc") or p.endswith("outside.bk")]


def test_symlink_out_of_the_tree_is_refused(tmp_path):
    (tmp_path / "secret.bk").write_text("const a = 1\n")
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "link.bk").symlink_to(tmp_path / "secret.bk")
    (proj / "main.bk").write_text('import "link.bk" as l\n')
    assert [d.code for d in bkdsl.check_file(proj / "main.bk")] == ["E0106"]


def test_inside_the_tree_stdlib_and_include_are_allowed(tmp_path, capsys):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "shared.bk").write_text("const width = 8\n")
    proj = tmp_path / "proj"
    (proj / "sub").mkdir(parents=True)
    (proj / "sub" / "local.bk").write_text("const depth = 2\n")
    spec = proj / "main.bk"
    spec.write_text(f'import "sub/local.bk" as l\nimport stdlib.nets\nfrom "{lib}/shared.bk" import width\n')
    assert [d.code for d in bkdsl.check_file(spec)] == ["E0106"]
    assert bkdsl.check_file(spec, includes=(lib,)) == []
    assert main(["check", str(spec), "--include", str(lib)]) == 0
    assert main(["check", str(spec)]) == 1
    assert "error[E0106]" in capsys.readouterr().err


def test_not_a_bk_file_inside_the_tree_is_refused(tmp_path):
    (tmp_path / "data.h5").write_bytes(b"\x89HDF\r\n")
    (tmp_path / "main.bk").write_text('import "data.h5" as d\n')
    assert [d.code for d in bkdsl.check_file(tmp_path / "main.bk")] == ["E0106"]


def test_missing_module_inside_the_tree_is_still_E0102(tmp_path):
    (tmp_path / "main.bk").write_text('import "nosuch.bk" as n\nimport stdlib.nosuch\n')
    assert [d.code for d in bkdsl.check_file(tmp_path / "main.bk")] == ["E0102", "E0102"]
