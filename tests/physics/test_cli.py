import json

from bkdsl.physics.cli import main


def test_ground_state_json(capsys):
    assert main(["ground-state", "O16", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["nucleus"] == "O16" and d["binding_energy"] > 100 and d["units"]["Q20"] == "b"
    for k in ("r_n", "r_p", "r_ch", "Q20", "Q30", "iterations", "gradient_norm"):
        assert k in d


def test_ground_state_table_and_errors(capsys):
    assert main(["physics", "ground-state", "16O"]) == 0
    assert "binding energy" in capsys.readouterr().out
    assert main(["ground-state", "Qq7"]) == 1
    assert "E0701" in capsys.readouterr().err
    assert main(["ground-state", "O16", "--functional", "nope", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["code"] == "E0702"
    assert main(["ground-state", "Pb208", "--grid", "10,20,0.5"]) == 1
    assert "E0703" in capsys.readouterr().err
