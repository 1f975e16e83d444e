"""Fast-weight programmers: linear attention with the delta rule (source 001 §4.3).

With φ(x) = ELU(x) + 1 (positive, so the normaliser never vanishes), per head:

    R_t = v_t − W_{t−1} φ(k_t)                  (what the memory gets wrong about k_t)
    W_t = W_{t−1} + β_t R_t ⊗ φ(k_t)            (delta rule; β_t = σ(w_β · x_t) is learned)
    z_t = z_{t−1} + φ(k_t)                      (normaliser)
    y_t = W_t φ(q_t) / (z_tᵀ φ(q_t))

The *additive* rule (plain linear attention, source 001 §4.1) is W_t = W_{t−1} + v_t ⊗ φ(k_t): it
never removes what it wrote, so a key written twice returns the average of its values and the
memory fills up with crosstalk — the retrieval collapse of §4.2.

Two exact forms of the same recurrence:

* :func:`fast_weight_recurrent` — the reference: one step per token, O(T) sequential steps.
* :func:`fast_weight_chunked` — parallel in time within chunks of C tokens. Inside a chunk the delta
  rule's pseudo-values u_t = β_t (v_t − W_{t−1} φ(k_t)) satisfy a unit lower-triangular system
  (I + tril(diag β · K Kᵀ, −1)) U = diag β · (V − K W₀ᵀ), solved with one triangular solve;
  then W_t = W₀ + Σ_{i≤t} u_i ⊗ k_i gives every output of the chunk with matmuls, and the state
  passes to the next chunk (the WY form that flash-linear-attention's ``chunk_delta_rule`` fuses).
  This is the form a later kernel fuses; the tests hold the two to 1e-5 in float64 (in practice
  ~1e-13).

Shapes: q, k ``[B, H, T, d_k]``, v ``[B, H, T, d_v]``, β ``[B, H, T]``; state W ``[B, H, d_v, d_k]``,
z ``[B, H, d_k]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bkdsl.kernels import dispatch

RULES = ("delta", "additive")


def elu_plus_one(x: torch.Tensor) -> torch.Tensor:
    """φ(x) = ELU(x) + 1 > 0 (source 001 §4.3.1)."""
    return F.elu(x) + 1.0


def fast_weight_recurrent(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor,
                          rule: str = "delta", normalize: bool = True,
                          state: tuple[torch.Tensor, torch.Tensor] | None = None,
                          ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """Reference recurrent form. q, k are already feature-mapped (φ applied). Returns y, (W, z)."""
    B, H, T, dk = k.shape
    dv = v.shape[-1]
    W, z = state if state is not None else (k.new_zeros(B, H, dv, dk), k.new_zeros(B, H, dk))
    ys = []
    for t in range(T):
        kt, vt, qt = k[:, :, t], v[:, :, t], q[:, :, t]
        if rule == "delta":
            r = vt - (W @ kt.unsqueeze(-1)).squeeze(-1)
            W = W + beta[:, :, t, None, None] * r.unsqueeze(-1) * kt.unsqueeze(-2)
        elif rule == "additive":
            W = W + vt.unsqueeze(-1) * kt.unsqueeze(-2)
        else:
            raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
        z = z + kt
        y = (W @ qt.unsqueeze(-1)).squeeze(-1)
        if normalize:
            y = y / (z * qt).sum(-1, keepdim=True)
        ys.append(y)
    return torch.stack(ys, dim=2), (W, z)


def fast_weight_chunked(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor,
                        rule: str = "delta", normalize: bool = True, chunk: int = 64,
                        state: tuple[torch.Tensor, torch.Tensor] | None = None,
                        ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """Chunked parallel-in-time form of :func:`fast_weight_recurrent` (same arguments, same result)."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    B, H, T, dk = k.shape
    dv = v.shape[-1]
    W, z = state if state is not None else (k.new_zeros(B, H, dv, dk), k.new_zeros(B, H, dk))
    ys = []
    for s in range(0, T, chunk):
        K, V, Q = k[:, :, s:s + chunk], v[:, :, s:s + chunk], q[:, :, s:s + chunk]
        C = K.shape[2]
        causal = torch.ones(C, C, dtype=torch.bool, device=K.device).tril()
        if rule == "delta":
            b = beta[:, :, s:s + chunk]
            # (I + tril(diag β K Kᵀ, −1)) U = diag β (V − K Wᵀ)
            A = (K @ K.transpose(-1, -2)).masked_fill(causal.logical_not(), 0.0).tril(-1) * b.unsqueeze(-1)
            eye = torch.eye(C, dtype=K.dtype, device=K.device)
            rhs = b.unsqueeze(-1) * (V - K @ W.transpose(-1, -2))
            U = torch.linalg.solve_triangular(eye + A, rhs, upper=False, unitriangular=True)
        else:
            U = V
        QK = (Q @ K.transpose(-1, -2)).masked_fill(causal.logical_not(), 0.0)  # k_i·q_t for i ≤ t
        Y = Q @ W.transpose(-1, -2) + QK @ U
        if normalize:
            Y = Y / ((Q * z.unsqueeze(-2)).sum(-1, keepdim=True) + QK.sum(-1, keepdim=True))
        ys.append(Y)
        W = W + U.transpose(-1, -2) @ K
        z = z + K.sum(2)
    return torch.cat(ys, dim=2), (W, z)


class FastWeightLayer(nn.Module):
    """A fast-weight memory layer: x ``[B, T, d_model]`` → y ``[B, T, d_model]``.

    q, k, v and β are projections of x; φ = ELU + 1 on q and k; ``key_norm`` divides φ(k) and φ(q)
    by their sums (an L1 normalisation that keeps them positive). Without it the delta update
    I − β φ(k)φ(k)ᵀ is a contraction only while β‖φ(k)‖² < 2; with it ‖φ(k)‖² ≤ 1 and any β ∈ (0, 1)
    is safe. ``mode`` picks the recurrent reference or the chunked form (identical results)."""

    def __init__(self, d_model: int, d_key: int = 32, d_value: int | None = None, heads: int = 1,
                 rule: str = "delta", normalize: bool = True, key_norm: bool = False,
                 mode: str = "chunked", chunk: int = 64):
        super().__init__()
        if rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
        if mode not in ("chunked", "recurrent"):
            raise ValueError(f"mode must be chunked or recurrent, got {mode!r}")
        d_value = d_value or d_key
        self.h, self.dk, self.dv = heads, d_key, d_value
        self.rule, self.normalize, self.key_norm, self.mode, self.chunk = rule, normalize, key_norm, mode, chunk
        self.wq = nn.Linear(d_model, heads * d_key, bias=False)
        self.wk = nn.Linear(d_model, heads * d_key, bias=False)
        self.wv = nn.Linear(d_model, heads * d_value, bias=False)
        self.wb = nn.Linear(d_model, heads)
        self.wo = nn.Linear(heads * d_value, d_model, bias=False)

    def projections(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Raw q, k ``[B, H, T, d_key]``, v ``[B, H, T, d_value]`` and β = σ(w_β · x) ``[B, H, T]``."""
        B, T, _ = x.shape
        split = lambda t, d: t.view(B, T, self.h, d).transpose(1, 2)  # noqa: E731
        beta = torch.sigmoid(self.wb(x)).transpose(1, 2)  # [B, H, T]
        return split(self.wq(x), self.dk), split(self.wk(x), self.dk), split(self.wv(x), self.dv), beta

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        q, k, v, beta = self.projections(x)
        q, k = elu_plus_one(q), elu_plus_one(k)
        if self.key_norm:
            q = q / q.sum(-1, keepdim=True)
            k = k / k.sum(-1, keepdim=True)
        return q, k, v, beta

    def uses_kernel(self, x: torch.Tensor) -> bool:
        """Whether this call takes ``torch.ops.bkdsl.delta_rule`` (the chunked Triton kernel): the delta
        rule in chunked mode with d_key, d_value ≤ 128 where :func:`bkdsl.kernels.dispatch.use_triton` says
        so (CUDA by default)."""
        return (self.mode == "chunked" and self.rule == "delta" and max(self.dk, self.dv) <= 128
                and dispatch.use_triton(x))

    def _kernel(self, x: torch.Tensor) -> torch.Tensor:
        # Triton is imported only on this path: the reference path runs where triton is not installed.
        from bkdsl.kernels.delta_rule import op  # noqa: F401  (registers torch.ops.bkdsl.delta_rule)

        if self.key_norm:  # φ and its L1 normalisation in PyTorch, the kernel without its feature map
            q, k, v, beta = self.features(x)
            return torch.ops.bkdsl.delta_rule(q, k, v, beta, False, self.normalize)[0]
        q, k, v, beta = self.projections(x)  # φ = ELU + 1 inside the kernel
        return torch.ops.bkdsl.delta_rule(q, k, v, beta, True, self.normalize)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.uses_kernel(x):  # the one dispatch decision of this call
            y = self._kernel(x)
            B, H, T, dv = y.shape
            return self.wo(y.transpose(1, 2).reshape(B, T, H * dv))
        q, k, v, beta = self.features(x)
        if self.mode == "chunked":
            y, _ = fast_weight_chunked(q, k, v, beta, self.rule, self.normalize, self.chunk)
        else:
            y, _ = fast_weight_recurrent(q, k, v, beta, self.rule, self.normalize)
        B, H, T, dv = y.shape
        return self.wo(y.transpose(1, 2).reshape(B, T, H * dv))


class FastWeightRecall(nn.Module):
    """Associative-recall model: token embedding with a one-token shift (each position sees its own
    token and the previous one, so a pair (key, value) meets at the value's position) → fast-weight
    layer → MLP → logits at every position (the task reads the last one)."""

    def __init__(self, vocab: int, d_model: int = 64, d_key: int = 32, heads: int = 1,
                 rule: str = "delta", normalize: bool = True, key_norm: bool = True, chunk: int = 64):
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        self.mix_in = nn.Linear(2 * d_model, d_model)
        self.fw = FastWeightLayer(d_model, d_key, d_key, heads, rule, normalize, key_norm, "chunked", chunk)
        self.mix = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, d_model), nn.GELU())
        self.head = nn.Linear(d_model, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        e = self.embed(tokens)
        prev = F.pad(e, (0, 0, 1, 0))[:, :-1]
        h = self.mix_in(torch.cat([e, prev], dim=-1))
        h = h + self.fw(h)
        return self.head(h + self.mix(h))
