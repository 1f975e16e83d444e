"""The closing lines of `make demo` (bkdsl/tour.py): numbers read from the files, failures said so."""

from __future__ import annotations

import json

from bkdsl.tour import claim_lines, main, refused_lines, run_lines


def test_claims_are_counted_from_ir_json():
    ir = {"claims": [{"subject": "net(width=32)", "property": "bounded(norm <= 1.0)", "holds": True,
                      "how": "probe", "detail": "d1"},
                     {"subject": "m", "property": "causal", "holds": False, "how": "probe", "detail": "d2"}]}
    lines = claim_lines(ir)
    assert lines[0].strip() == "claims: 1/2 established"
    assert "proven" in lines[1] and "REFUSED" in lines[2]
    assert "missing" in claim_lines(None)[0]


def test_refusal_number_is_quoted_and_its_absence_is_said():
    text = ("s.bk:3:1: error[E0302]: `rk4` is not symplectic\n  |   ^^^ `rk4` is not symplectic: "
            "max|JᵀΩJ − Ω| = 1.6e-05 at the probe (tolerance 1e-09)\n")
    lines = refused_lines(text)
    assert "error[E0302]" in lines[0] and "1.6e-05" in lines[1]
    assert "no probe number" in refused_lines("error[E0301]: x\n")[1]
    assert "no diagnostic" in refused_lines("")[0]


def test_non_finite_metric_is_not_printed_as_a_number():
    final = {"status": "completed", "epochs": 2, "test": {"test.mae_rho": float("nan"), "test.loss": 0.5},
             "units": {"mae_rho": "fm^-3"}}
    out = "\n".join(run_lines(final, None))
    assert "mae_rho = NOT FINITE fm^-3" in out and "loss = 0.5" in out


def test_main_reads_the_demo_files(tmp_path, capsys):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "ir.json").write_text(json.dumps({"claims": []}))
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "final.json").write_text(json.dumps({"status": "completed", "test": {"test.rel_l2_rho": 0.06}}))
    assert main(["--spec", "s.bk", "--compiled", str(tmp_path / "c"), "--refused", str(tmp_path / "none.txt"),
                 "--run", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "claims: 0/0 established" in out and "rel_l2_rho = 0.06" in out and "no diagnostic captured" in out
