r"""Plain-PyTorch reference of the delta rule with the ELU+1 feature map and the normaliser.

The specification of :mod:`bkdsl.kernels.delta_rule` (the flash-linear-attention layout: the
reference lives beside the kernel and imports nothing from bkdsl). Source 001 §4.3, per head:

    φ(x) = ELU(x) + 1 > 0
    W_t = W_{t−1} + β_t (v_t − W_{t−1} φ(k_t)) ⊗ φ(k_t)        (delta rule)
    z_t = z_{t−1} + φ(k_t)                                     (normaliser)
    y_t = W_t φ(q_t) / (z_tᵀ φ(q_t))

:func:`delta_rule_recurrent` is the token-by-token recurrence. :func:`delta_rule_chunked` is the
chunked WY form (Yang et al. 2024, "Parallelizing Linear Transformers with the Delta Rule over
Sequence Length"): inside a chunk of C tokens with state S (= W at the chunk's start),

    A = tril(diag(β) K Kᵀ, −1),   T = (I + A)⁻¹
    W_k = T diag(β) K,            U_v = T diag(β) V               (the WY representation)
    U = U_v − W_k Sᵀ                                              (pseudo-values u_t)
    O = Q Sᵀ + (Q Kᵀ ⊙ M) U,      den = Q z + (Q Kᵀ ⊙ M) 1,   Y = O / den
    S ← S + Uᵀ K,                 z ← z + Kᵀ 1

with M the causal mask including the diagonal. It is ``bkdsl.nn.fast_weights.fast_weight_chunked``
with T written out (the Triton kernels compute exactly these quantities) and the feature map folded
in, so it runs in any dtype the matmuls take (computation in float32 at least).

Shapes: q, k ``[B, H, N, d_k]``, v ``[B, H, N, d_v]``, β ``[B, H, N]``; y ``[B, H, N, d_v]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["elu_plus_one", "delta_rule_recurrent", "delta_rule_chunked"]


def elu_plus_one(x: torch.Tensor) -> torch.Tensor:
    """φ(x) = ELU(x) + 1 (x + 1 for x > 0, eˣ otherwise)."""
    return F.elu(x) + 1.0


def _features(q: torch.Tensor, k: torch.Tensor, feature_map: bool) -> tuple[torch.Tensor, torch.Tensor]:
    return (elu_plus_one(q), elu_plus_one(k)) if feature_map else (q, k)


def delta_rule_recurrent(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor,
                         feature_map: bool = True, normalize: bool = True) -> torch.Tensor:
    """The recurrence one token at a time, in the inputs' dtype (use float64 for a ground truth)."""
    q, k = _features(q, k, feature_map)
    B, H, N, dk = k.shape
    W = k.new_zeros(B, H, v.shape[-1], dk)
    z = k.new_zeros(B, H, dk)
    ys = []
    for t in range(N):
        kt, qt = k[:, :, t], q[:, :, t]
        r = v[:, :, t] - (W @ kt.unsqueeze(-1)).squeeze(-1)
        W = W + beta[:, :, t, None, None] * r.unsqueeze(-1) * kt.unsqueeze(-2)
        z = z + kt
        y = (W @ qt.unsqueeze(-1)).squeeze(-1)
        if normalize:
            y = y / (z * qt).sum(-1, keepdim=True)
        ys.append(y)
    return torch.stack(ys, dim=2)


def delta_rule_chunked(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor,
                       feature_map: bool = True, normalize: bool = True, chunk: int = 64) -> torch.Tensor:
    """The chunked WY form (module docstring); computes in float32 at least, returns the input dtype."""
    out_dtype = v.dtype
    work = torch.promote_types(q.dtype, torch.float32)
    q, k, v, beta = (t.to(work) for t in (q, k, v, beta))
    q, k = _features(q, k, feature_map)
    B, H, N, dk = k.shape
    S = k.new_zeros(B, H, v.shape[-1], dk)
    z = k.new_zeros(B, H, dk)
    ys = []
    for s in range(0, N, chunk):
        K, V, Q, b = k[:, :, s:s + chunk], v[:, :, s:s + chunk], q[:, :, s:s + chunk], beta[:, :, s:s + chunk]
        C = K.shape[2]
        eye = torch.eye(C, dtype=work, device=K.device)
        A = (b.unsqueeze(-1) * (K @ K.transpose(-1, -2))).tril(-1)
        T = torch.linalg.solve_triangular(eye + A, eye.expand_as(A), upper=False, unitriangular=True)
        Wk = T @ (b.unsqueeze(-1) * K)
        Uv = T @ (b.unsqueeze(-1) * V)
        U = Uv - Wk @ S.transpose(-1, -2)
        QK = (Q @ K.transpose(-1, -2)).tril()
        Y = Q @ S.transpose(-1, -2) + QK @ U
        if normalize:
            Y = Y / ((Q * z.unsqueeze(-2)).sum(-1, keepdim=True) + QK.sum(-1, keepdim=True))
        ys.append(Y)
        S = S + U.transpose(-1, -2) @ K
        z = z + K.sum(2)
    return torch.cat(ys, dim=2).to(out_dtype)
