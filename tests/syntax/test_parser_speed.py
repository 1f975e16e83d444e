"""The parser's speed work: the LALR table cache only in a user-private directory (Lark unpickles
it), the cyclic GC paused while parsing, and the iterative tree → AST walk (any depth, same AST)."""

import gc
import os
import stat

from bkdsl.syntax import parser as P


def test_table_cache_lives_in_a_private_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = P.table_cache_path("start: NAME\n")
    assert isinstance(path, str) and path.startswith(str(tmp_path / "bkdsl"))
    assert stat.S_IMODE(os.stat(tmp_path / "bkdsl").st_mode) & 0o077 == 0
    assert P.table_cache_path("start: NAME\n") == path != P.table_cache_path("start: NUMBER\n")


def test_no_table_cache_where_others_could_write(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    (tmp_path / "bkdsl").mkdir()
    os.chmod(tmp_path / "bkdsl", 0o777)  # a planted pickle could be loaded: refuse to cache there
    assert P.table_cache_path("start: NAME\n") is False
    monkeypatch.setenv("XDG_CACHE_HOME", "/proc/no-such-dir")
    assert P.table_cache_path("start: NAME\n") is False


def test_gc_paused_while_parsing_and_restored():
    seen = []

    class Spy(P._ToAst):
        def const_decl(self, meta, ch):
            seen.append(gc.isenabled())
            return super().const_decl(meta, ch)

    real, P._ToAst = P._ToAst, Spy
    try:
        assert gc.isenabled()
        mod, diags = P.parse("const a = 1\nconst b = 2\n")
    finally:
        P._ToAst = real
    assert diags == [] and len(mod.stmts) == 2
    assert seen == [False, False] and gc.isenabled()


def test_a_long_spec_parses_to_the_same_ast_as_its_statements_one_by_one():
    lines = [f"const c{i} = {i} fm * 2 + {i}.5 fm" for i in range(3000)]
    mod, diags = P.parse("\n".join(lines) + "\n")
    assert diags == [] and len(mod.stmts) == 3000
    one, _ = P.parse(lines[1234] + "\n")
    assert mod.stmts[1234].value == one.stmts[0].value
    assert mod.stmts[1234].span.line == 1235
