"""Packaging: a normal (non-editable) install carries the grammar and the standard library, and
``bkdsl check`` works from another directory with it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
import tomllib
import venv

import pytest

from tests.conftest import ROOT

SPEC = '''from stdlib.nets import basic_block
model m {
  input x : [B, 4]
  output y = linear(relu(linear(x, 8)), 1)
}
'''


def test_every_package_folder_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "bkdsl").rglob("__init__.py")}
    found |= {"bkdsl." + ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "kernels").rglob("__init__.py")}
    assert found - listed == set()


@pytest.mark.slow
def test_a_non_editable_install_checks_a_spec_elsewhere(tmp_path):
    # a clean copy of what a clone holds (no build/ or egg-info left in the working tree)
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("bkdsl", "kernels", "grammar", "stdlib"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False, system_site_packages=True).create(env_dir)
    py = env_dir / "bin" / "python"
    # the dependencies (torch, lark, ...) come from the test environment; bkdsl itself does not
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    with open(os.path.join(site, "zz_test_deps.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(src)],
                       capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    (work / "s.bk").write_text(SPEC)
    r = subprocess.run([str(py), "-c", "import bkdsl, sys; print(bkdsl.__file__); "
                        "from bkdsl.cli import main; sys.exit(main(['check', 's.bk']))"],
                       capture_output=True, text=True, env=env, cwd=work)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().startswith(str(env_dir)), r.stdout  # the installed copy, not the checkout
    assert (env_dir / "lib").exists() and list(env_dir.glob("lib/python*/site-packages/bkdsl/stdlib/nets.bk"))
    assert list(env_dir.glob("lib/python*/site-packages/bkdsl/grammar/bk.lark"))
