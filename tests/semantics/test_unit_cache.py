"""pint's parsed unit definitions cached in bkdsl's private cache directory: used when private, skipped
otherwise, and a damaged cache file never breaks the units (it is parsed again)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bkdsl.semantics import units

ROOT = Path(__file__).resolve().parents[2]
PROBE = "from bkdsl.semantics.units import ureg, unit_cache_folder\nprint(unit_cache_folder())\nprint(ureg.parse_units('MeV*fm**-3') == ureg.MeV / ureg.fm**3)\n"


def run_units(cache_home: Path, **env: str) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if k != "BKDSL_UNIT_CACHE"}
    e.update(XDG_CACHE_HOME=str(cache_home), **env)
    return subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT, env=e, timeout=120)


def test_the_cache_is_written_then_read(tmp_path):
    r = run_units(tmp_path)
    assert r.returncode == 0 and r.stdout.split()[-1] == "True", r.stderr
    folder = Path(r.stdout.split()[0])
    assert folder.parent == tmp_path / "bkdsl" and list(folder.glob("*.pickle"))
    assert (tmp_path / "bkdsl").stat().st_mode & 0o777 == 0o700
    r = run_units(tmp_path)
    assert r.returncode == 0 and r.stdout.split()[-1] == "True", r.stderr


def test_a_damaged_cache_is_parsed_again(tmp_path):
    assert run_units(tmp_path).returncode == 0
    files = list((tmp_path / "bkdsl").glob("pint-*/*.pickle"))
    assert files
    for f in files:
        f.write_bytes(b"\x80\x05not a pickle")
    r = run_units(tmp_path)
    assert r.returncode == 0 and r.stdout.split()[-1] == "True", r.stderr


def test_no_cache_where_others_may_write(tmp_path, monkeypatch):
    base = tmp_path / "bkdsl"
    base.mkdir(mode=0o700)
    base.chmod(0o777)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("BKDSL_UNIT_CACHE", raising=False)
    assert units.unit_cache_folder() is None
    base.chmod(0o700)
    assert units.unit_cache_folder() == base / f"pint-{units.pint.__version__}-{units._install_key()}"


def test_the_cache_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("BKDSL_UNIT_CACHE", "off")
    assert units.unit_cache_folder() is None


def test_a_cache_written_by_another_environment_is_never_read(tmp_path):
    """pint's cache holds absolute paths of its definition files: a moved or re-created venv must get its
    own folder (the key hashes pint's location), and a folder that cannot be read is cleared, so the
    warning appears once, not at every start."""
    first = run_units(tmp_path)
    folder = Path(first.stdout.split()[0])
    assert folder.name.startswith(f"pint-{units.pint.__version__}-") and len(folder.name.rsplit("-", 1)[1]) == 12
    for f in folder.glob("*.pickle"):
        f.write_bytes(b"\x80\x05not a pickle")
    broken = run_units(tmp_path)
    assert broken.returncode == 0 and broken.stdout.split()[-1] == "True", broken.stderr
    again = run_units(tmp_path)
    assert again.returncode == 0 and "unusable" not in again.stderr, again.stderr
