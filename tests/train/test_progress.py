"""Progress while data is generated: lines on stderr from the generator's progress callback."""

import io

import pytest

from bkdsl.train import progress as P


def test_progress_line_counts_percent_and_eta():
    line = P.progress_line("nuclear_densities", {"done": 1280, "samples": 20000, "wall_s": 41.0})
    assert line == "generating nuclear_densities: 1 280/20 000 samples (6 %), 41 s, ETA 10 min"
    assert "ETA" not in P.progress_line("x", {"done": 20000, "samples": 20000, "wall_s": 600.0})


def test_progress_is_throttled_but_always_reports_the_end(monkeypatch):
    out = io.StringIO()
    t = [0.0]
    monkeypatch.setattr(P.time, "monotonic", lambda: t[0])
    cb = P.generation_progress("g", every_s=5.0, stream=out)
    for done, when in [(128, 0.0), (256, 1.0), (384, 6.0), (512, 7.0), (640, 7.5)]:
        t[0] = when
        cb({"done": done, "samples": 640, "wall_s": when})
    lines = out.getvalue().splitlines()
    assert [l.split(":")[1].split("/")[0].strip() for l in lines] == ["128", "384", "640"]


def test_quiet_silences_the_console_not_the_log_inside_its_block_only(caplog):
    out = io.StringIO()
    with caplog.at_level("INFO", logger="bkdsl.data"), P.console(False):
        P.generation_progress("g", stream=out)({"done": 1, "samples": 1, "wall_s": 0.1})
    assert out.getvalue() == "" and "generating g: 1/1 samples" in caplog.text
    assert P.enabled is True                                             # restored after the block


def test_nuclear_densities_source_reports_progress(monkeypatch, capsys):
    """The data source hands the generator a progress callback (the u236 run's minutes of silence)."""
    from bkdsl.components.training import instantiate
    from bkdsl.physics import dataset as phys
    from bkdsl.semantics.values import CallValue

    def fake(progress=None, samples=0, **kw):
        progress({"done": samples, "samples": samples, "converged": samples, "wall_s": 2.0})
        raise RuntimeError("stop after the first report")

    monkeypatch.setattr(phys, "generate_nuclear_densities", fake)
    src = instantiate(CallValue("nuclear_densities", kwargs={"samples": 16}), "data")
    with pytest.raises(RuntimeError, match="stop after"):
        src.load(seed=0)
    assert "generating nuclear_densities: 16/16 samples (100 %), 2 s" in capsys.readouterr().err
