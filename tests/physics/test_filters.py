import torch

from bkdsl.physics.filters import energy_window, flatten_histogram, q20_window, thesis_cap


def test_windows_and_flatten():
    E = torch.tensor([0.1, 0.2, 0.15, 0.12, 5.0, 9.0, 20.0], dtype=torch.float64)
    assert energy_window(E, 0.0, 15.87).tolist() == [True] * 6 + [False]
    assert q20_window(E, 3.0, 16.0).tolist() == [False] * 4 + [True, True, False]
    keep = flatten_histogram(E, 0.0, 10.0, 10, 2, torch.Generator().manual_seed(0))
    assert int(keep[:4].sum()) == 2 and bool(keep[4]) and bool(keep[5]) and bool(keep[6])
    assert thesis_cap(298_982) == 2250 and thesis_cap(1000) == 8
