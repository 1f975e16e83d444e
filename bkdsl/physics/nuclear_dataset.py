"""The container of a generated density data set, and the per-sample seeding both generators share
(:mod:`bkdsl.physics.dataset`, orbital-free ETF; :mod:`bkdsl.physics.hf_dataset`, Kohn-Sham HF+BCS)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class NuclearDataset:
    """``fields`` name -> tensor [S, ...]; ``units`` name -> pint string; ``stats`` the counts of every
    drop and the timings; ``config`` every setting, including the convergence criterion as text."""

    fields: dict[str, torch.Tensor]
    units: dict[str, str]
    stats: dict
    config: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.fields["E"].shape[0])


def sample_generator(seed: int, i: int) -> torch.Generator:
    """The generator of sample ``i`` of a data set seeded ``seed``: a sample does not depend on the
    chunking or the batch size (numpy's SeedSequence mixes the pair into one 63-bit seed)."""
    s = int(np.random.SeedSequence([int(seed), int(i)]).generate_state(1, dtype=np.uint64)[0] >> 1)
    return torch.Generator().manual_seed(s)
