"""The lazy registry: a committed manifest (name → kind → module) that cannot go stale, lookups that
import only the defining module, and user components that behave as with eager loading."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bkdsl import registry
from bkdsl.components import manifest
from bkdsl.components._manifest import MANIFEST
from bkdsl.lazy import lazy_function

ROOT = Path(__file__).resolve().parents[2]


def run_py(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_regenerating_the_manifest_gives_the_committed_file():
    """Fails when a built-in component is added, renamed or moved without `python -m bkdsl.components.manifest`."""
    r = subprocess.run([sys.executable, "-m", "bkdsl.components.manifest", "--check"], capture_output=True,
                       text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_check_refuses_a_stale_manifest(tmp_path, monkeypatch):
    """The --check mode compares text: a manifest missing one entry is reported stale (exit 1)."""
    stale = tmp_path / "_manifest.py"
    stale.write_text(manifest.render({k: v for k, v in list(MANIFEST.items())[1:]}), encoding="utf-8")
    monkeypatch.setattr(manifest, "PATH", stale)
    monkeypatch.setattr(manifest, "entries", lambda: dict(MANIFEST))
    monkeypatch.setattr(registry, "_REGISTRY", {})
    assert manifest.main(["--check"]) == 1
    stale.write_text(manifest.render(dict(MANIFEST)), encoding="utf-8")
    assert manifest.main(["--check"]) == 0


def test_every_built_in_is_in_the_manifest_under_its_module():
    found = {(c.name, c.kind): c.__module__ for c in registry.all_components().values()
             if c.__module__ in registry.BUILTIN_MODULES}
    listed = {(n, k): m for n, roles in MANIFEST.items() for k, m in roles.items()}
    assert found.items() <= listed.items()
    assert set(listed) <= set(found) | {(n, k) for n, roles in registry._REGISTRY.items() for k in roles}


def test_lookup_imports_only_the_defining_module():
    r = run_py("import sys\nfrom bkdsl import registry\n"
               "assert registry.lookup('linear').__module__ == 'bkdsl.components.layers'\n"
               "assert registry.lookup('no_such_component') is None\n"
               "mods = sorted(m for m in sys.modules if m.startswith('bkdsl.components.') and m != 'bkdsl.components._manifest')\n"
               "print(mods)\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "['bkdsl.components.layers']"


def test_names_come_from_the_manifest_without_imports():
    r = run_py("import sys\nfrom bkdsl import registry\n"
               "print('adam' in registry.names('optimizer'), 'adam' in registry.names('loss'),\n"
               "      'mae' in registry.names(('metric',)), any(m.startswith('bkdsl.components.') and\n"
               "      m != 'bkdsl.components._manifest' for m in sys.modules))\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "False", "True", "False"]


def test_a_name_with_two_roles_resolves_as_with_eager_loading():
    """`mae` is a loss term and a metric: without a kind the metric, as before; with a kind, that one."""
    assert registry.lookup("mae").kind == "metric"
    assert registry.lookup("mae", "loss").kind == "loss"
    assert registry.lookup("mae", ("optimizer",)) is None


def test_a_user_override_replaces_a_built_in_not_yet_imported():
    """replace=True before the built-in's module was ever imported: the built-in is registered first,
    so the override wins (and without replace=True the taken name is refused) — as with eager loading."""
    code = ("import bkdsl\nfrom bkdsl import registry\n"
            "class Mine(bkdsl.Component):\n    pass\n"
            "try:\n    bkdsl.component('layernorm', kind='layer')(Mine)\n    print('accepted')\n"
            "except ValueError:\n    print('refused')\n"
            "bkdsl.component('layernorm', kind='layer', replace=True)(Mine)\n"
            "print(registry.lookup('layernorm') is Mine)\n")
    r = run_py(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["refused", "True"]


def test_every_lazy_function_of_a_built_in_resolves():
    """A misspelt lazy reference would fail only when lowered; resolve them all here."""
    seen = 0
    for cls in registry.all_components().values():
        for klass in cls.__mro__:
            for attr, v in vars(klass).items():
                if isinstance(v, lazy_function):
                    assert callable(v.resolve()), f"{cls.__name__}.{attr} -> {v}"
                    seen += 1
    assert seen > 20


@pytest.mark.parametrize("name", ["expmap0", "logmap0"])
def test_the_hyperbolic_ops_pick_their_form_by_manifold(name):
    """On a Lorentz hyperboloid ``function`` is the bkdsl.nn.lorentz form, else the Poincaré one."""
    from bkdsl.nn import lorentz, poincare

    cls = registry.lookup(name)
    op = cls(cls.Params())
    assert op.function is getattr(poincare, name)
    op.k = 1.0
    assert op.function is getattr(lorentz, name)
