"""The thesis' sample filters (ch. 4 sec. 4.2.2), as boolean keep-masks.

* :func:`energy_window`   keep E_lo <= E <= E_hi (thesis: -1780.87 <= E <= -1765.00 MeV, i.e. an
                          excitation window of 15.87 MeV above the ground state).
* :func:`q20_window`      keep Q_lo <= Q20 <= Q_hi (thesis: [3, 16] b).
* :func:`flatten_histogram` cap every one of ``bins`` energy bins at ``cap`` samples, dropping the excess
                          at random (thesis: 100 bins, at most 2250 per bin, for 298 982 samples).

All are deterministic given a ``torch.Generator``.
"""

from __future__ import annotations

import math

from bkdsl.lazy import lazy_module

torch = lazy_module("torch")  # at first use: the thesis constants below are read by schemas without torch

#: thesis numbers
THESIS_EXCITATION_WINDOW = (0.0, 1780.87 - 1765.00)   # MeV above the ground state
THESIS_Q20_WINDOW = (3.0, 16.0)                          # b (absolute, HFB ground state ~ prolate)
THESIS_BINS = 100
THESIS_CAP = 2250
THESIS_GENERATED = 298_982


def energy_window(E: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    return (E >= lo) & (E <= hi)


def q20_window(Q20: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    return (Q20 >= lo) & (Q20 <= hi)


def thesis_cap(n_generated: int) -> int:
    """The thesis' per-bin cap scaled to a smaller run: ceil(2250 * n / 298 982)."""
    return max(1, math.ceil(THESIS_CAP * n_generated / THESIS_GENERATED))


def flatten_histogram(E: torch.Tensor, lo: float, hi: float, bins: int, cap: int,
                      gen: torch.Generator, keep: torch.Tensor | None = None) -> torch.Tensor:
    """Keep at most ``cap`` samples per energy bin on [lo, hi] (others outside the range untouched)."""
    E = E.detach().cpu()
    keep = torch.ones_like(E, dtype=torch.bool) if keep is None else keep.detach().cpu().clone()
    width = (hi - lo) / bins
    b = torch.floor((E - lo) / width).long().clamp(0, bins - 1)
    inside = (E >= lo) & (E <= hi) & keep
    order = torch.randperm(len(E), generator=gen)
    count = torch.zeros(bins, dtype=torch.long)
    for i in order.tolist():
        if inside[i]:
            if count[b[i]] >= cap:
                keep[i] = False
            else:
                count[b[i]] += 1
    return keep
