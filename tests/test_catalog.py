"""Issue #19 item 1: `bkdsl components` and docs/components.md, both read from the registry."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from bkdsl import catalog, registry
from bkdsl.cli import main
from bkdsl.semantics.units import quantity
from tests.conftest import ROOT


def test_committed_components_page_is_current():
    """Fails when a component was added or changed without `bkdsl components --markdown > docs/components.md`."""
    page = (ROOT / "docs" / "components.md").read_text(encoding="utf-8")
    assert page == catalog.render_markdown(catalog.entries(builtin_only=True)), \
        "docs/components.md is stale: run `bkdsl components --markdown > docs/components.md`"


def test_every_builtin_component_is_on_the_page():
    page = (ROOT / "docs" / "components.md").read_text(encoding="utf-8")
    names = {(c.name, c.kind) for c in registry.all_components().values() if c.__module__ in registry.BUILTIN_MODULES}
    assert len(names) > 100
    for name, kind in names:
        assert f'<a id="{kind}-{name}"'.replace("_", "-") in page.replace("_", "-"), (name, kind)


def test_entry_reads_types_units_defaults_constraints_and_claims():
    class P(BaseModel):
        model_config = ConfigDict(extra="forbid")
        width: int = Field(gt=0, description="hidden size")
        step: quantity("fm") = Field(0.25, gt=0, description="radial step")
        mode: str = "a"

    class Probe(registry.Component):
        """A made-up op: y = x.

        Second paragraph, not shown."""
        name, kind, inputs = "made_up", "layer", ("x",)
        Params = P
        guarantees = frozenset({"isometric"})
        sequence = "causal"

    e = catalog.entry_of(Probe)
    assert e.doc == "A made-up op: y = x."
    width, step, mode = e.params
    assert (width.type, width.default, width.constraint, width.doc) == ("int", None, "> 0", "hidden size")
    assert (step.type, step.unit, step.default) == ("float", "fm", "0.25")
    assert mode.default == '"a"'
    assert e.signature == 'made_up(x, width, step = 0.25 fm, mode = "a")'
    assert e.guarantees == ("isometric",) and e.sequence == "causal" and not e.decides
    assert "guarantees isometric" in catalog.claims_line(e)


def test_cli_lists_a_kind_and_shows_a_card(capsys):
    assert main(["components", "integrator"]) == 0
    out = capsys.readouterr().out
    assert "leapfrog" in out and "rk4" in out and "woods_saxon" not in out
    assert main(["components", "woods_saxon"]) == 0
    out = capsys.readouterr().out
    assert "rho0" in out and "in fm^-3" in out and "default 0.16" in out
    assert main(["components", "phasor_bind"]) == 0
    assert "claims:" in capsys.readouterr().out


def test_cli_index_covers_every_kind(capsys):
    assert main(["components"]) == 0
    out = capsys.readouterr().out
    for kind in {c.kind for c in registry.all_components().values()}:
        assert f"\n{kind} (" in "\n" + out, kind


def test_cli_unknown_name_is_a_coded_diagnostic(capsys):
    assert main(["components", "lineer"]) == 1
    err = capsys.readouterr().err
    assert "error[E0104]" in err and "did you mean `linear`?" in err
