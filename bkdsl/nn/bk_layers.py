"""The BK-Core modules behind the components of bkdsl/components/bk_core.py (the ``phase8`` spec's
blocks): the tridiagonal Hamiltonian built from the hidden state and its resolvent diagonal, the Green
features fed back into the residual stream, and the attention and mixture-of-experts layers with the
statistics the runner logs (``training_report() -> dict[str, float]``).

They live apart from their declarations so that ``bkdsl check`` reads the components without torch.
"""

from __future__ import annotations

import torch

from bkdsl.nn.hyperbolic_moe import HyperbolicMoE
from bkdsl.nn.resolvent import resolvent_diag
from bkdsl.nn.scattering_attention import ScatteringAttention


class TridiagonalHamiltonian(torch.nn.Module):
    """H(h) from the hidden state: potential a_i = w_aᵀh_i + c_a on the diagonal, and on the
    off-diagonals (symmetric) the bond between sites i−1 and i, b_{i−1} = t₀ + w_bᵀ(h_{i−1} + h_i)/2.

    Row i of H reads h_{i−1}, h_i through a_i and b_{i−1}, and h_{i+1} only through the bond b_i to the
    next site. The causal (retarded) resolvent G⁽ⁱ⁾_ii = 1/(a_i − z − b_{i−1}² G⁽ⁱ⁻¹⁾_{i−1,i−1}) uses the
    leading block H[:i+1, :i+1], whose entries read h_{≤i} only; the two-sided resolvent also reads
    b_i and every later entry (bidirectional).
    """

    def __init__(self, d: int, t0: float):
        super().__init__()
        self.potential = torch.nn.Linear(d, 1)
        self.hopping = torch.nn.Linear(d, 1)
        self.t0 = t0

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.potential(h).squeeze(-1)
        b = self.t0 + self.hopping(0.5 * (h[:, 1:] + h[:, :-1])).squeeze(-1)
        return a.float(), b.float()


class GreenFunction(torch.nn.Module):
    """G_ii = diag((H(h) − zI)⁻¹) (two-sided) or G⁽ⁱ⁾_ii of the leading blocks (``causal``), O(N)
    (the whole propagator as one module, for direct use)."""

    def __init__(self, d: int, z: complex, t0: float, causal: bool = False):
        super().__init__()
        self.hamiltonian = TridiagonalHamiltonian(d, t0)
        self.z, self.causal = z, causal

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        a, b = self.hamiltonian(h)
        return resolvent_diag(a, b, self.z, causal=self.causal)


class GreenFeatures(torch.nn.Module):
    """[Re G, Im G] → d features (how the propagator's output re-enters the residual stream)."""

    def __init__(self, d: int):
        super().__init__()
        self.proj = torch.nn.Linear(2, d)

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        return self.proj(torch.stack((g.real, g.imag), dim=-1).to(self.proj.weight.dtype))


class ScatteringAttentionLayer(ScatteringAttention):
    def training_report(self) -> dict[str, float]:
        return {"attention_blocks_skipped": float(self.skipped_fraction),
                "attention_tokens_active": float(self.active_fraction)}


class HyperbolicMoELayer(HyperbolicMoE):
    def training_report(self) -> dict[str, float]:
        """Load of the busiest and idlest expert (shares of the last batch's assignments) and the mean
        distance the centroids travelled since k-means (Poincaré distance; tangent norm if Euclidean)."""
        load = self.load.float()
        if load.sum() <= 0:
            return {}
        return {"moe_load_max": float(load.max()), "moe_load_min": float(load.min()),
                "moe_centroid_travel": float(self.centroid_travel().float().mean())}
