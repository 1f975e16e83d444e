r"""Diagonal of the resolvent of a symmetric tridiagonal Hamiltonian (BK-Core), in O(N).

For each sequence of a batch, H is the N×N symmetric tridiagonal matrix with on-site potential
``a`` (diagonal, ``a_i``) and hopping ``b`` (off-diagonal, ``b_i`` couples sites i and i+1). For a
spectral parameter z with Im z > 0 the resolvent G(z) = (H − zI)⁻¹ exists, and its diagonal is

    G_ii = 1 / (a_i − z − L_i − R_i),
    L_0 = 0,        L_i = b_{i−1}² / (a_{i−1} − z − L_{i−1})       (the left continued fraction)
    R_{N−1} = 0,    R_i = b_i²     / (a_{i+1} − z − R_{i+1})       (the right one, mirrored)

Writing d_i = a_i − z, the left and right Schur complements are

    α_i = d_i − L_i :  α_0 = d_0,      α_i = d_i − b_{i−1}² / α_{i−1}
    β_i = d_i − R_i :  β_{N−1} = d_{N−1}, β_i = d_i − b_i² / β_{i+1}
    G_ii = 1 / (α_i + β_i − d_i).

These are the ratios θ_i/θ_{i−1} and φ_i/φ_{i+1} of the classical determinant recurrences
(G_ii = θ_{i−1}φ_{i+1}/θ_N), whose products over- or underflow for N in the hundreds; the ratios do
not. Im d_i = −Im z < 0 and b² ≥ 0 keep Im α_i ≤ −Im z and Im β_i ≤ −Im z (−b²/w has negative imaginary
part when Im w < 0), so no denominator comes closer to 0 than Im z and |G_ii| ≤ 1/Im z: no guard
epsilon is needed anywhere.

Gradients (:class:`ResolventDiag`) are the adjoint of the two recurrences, another pair of O(N)
sweeps run in the opposite directions (Giles, "Collected matrix derivative results", and the usual
reverse-mode rule for a linear recurrence). With u_i = conj(∂L/∂G_ii) in PyTorch's convention for
complex outputs and s_i = α_i + β_i − d_i:

    σ_i = −u_i G_ii²                                  (adjoint of s_i)
    Ā_{N−1} = σ_{N−1},  Ā_i = σ_i + Ā_{i+1} b_i² / α_i²     (adjoint of α_i, right to left)
    B̄_0 = σ_0,          B̄_i = σ_i + B̄_{i−1} b_{i−1}² / β_i²  (adjoint of β_i, left to right)
    ∂L/∂a_i = Re(Ā_i + B̄_i − σ_i)
    ∂L/∂b_i = Re(−2 b_i (Ā_{i+1} / α_i + B̄_i / β_{i+1}))

The causal (retarded) resolvent, ``causal=True``, is the diagonal of the resolvent of each leading
principal block H⁽ⁱ⁾ = H[:i+1, :i+1]: G⁽ⁱ⁾_ii = 1 / (a_i − z − b_{i−1}² G⁽ⁱ⁻¹⁾_{i−1,i−1}) = 1/α_i, the
left continued fraction alone (one left Möbius scan). It reads only a_{≤i} and b_{<i}, and Im α_i ≤ −Im z
gives |G⁽ⁱ⁾_ii| ≤ 1/Im z as before. Its adjoint is the Ā sweep with σ_i = −u_i G_ii²:

    Ā_{N−1} = σ_{N−1},  Ā_i = σ_i + Ā_{i+1} b_i² / α_i²
    ∂L/∂a_i = Re Ā_i,   ∂L/∂b_i = Re(−2 b_i Ā_{i+1} / α_i)

The reference here is vectorised over the batch and sequential over N (a Python loop, the
specification of the Triton kernels beside it in :mod:`bkdsl.kernels.resolvent`);
:func:`resolvent_diag_dense` and :func:`resolvent_diag_causal_dense` are the float64 oracles the tests
compare against. Plain PyTorch: this module imports nothing of bkdsl but its diagnostics.
"""

from __future__ import annotations

from typing import Sequence, Union

import torch

from bkdsl.diagnostics import BkError

SpectralParameter = Union[complex, float, Sequence[float]]

__all__ = ["resolvent_diag_reference", "resolvent_backward_reference", "resolvent_diag_dense", "ResolventDiag",
           "resolvent_diag_causal_reference", "resolvent_causal_backward_reference", "resolvent_diag_causal_dense",
           "ResolventDiagCausal", "spectral_parameter", "check_inputs"]


def spectral_parameter(z: SpectralParameter) -> complex:
    """z as a python complex; a pair (Re z, Im z) is accepted. Raises E0304 unless Im z > 0."""
    if isinstance(z, torch.Tensor):
        z = complex(z.item())
    elif isinstance(z, (tuple, list)):
        if len(z) != 2:
            raise BkError("E0204", f"spectral parameter z given as {len(z)} numbers",
                          help="give z as a complex number or a pair (Re z, Im z)")
        z = complex(float(z[0]), float(z[1]))
    else:
        z = complex(z)
    if not z.imag > 0.0:
        raise BkError("E0304", f"the resolvent (H − zI)⁻¹ needs Im z > 0, got z = {z}",
                      help="use a small positive imaginary part, e.g. z = 0.1j (BK-Core's usual value)")
    return z


def check_inputs(a: torch.Tensor, b: torch.Tensor) -> None:
    """Shapes [B, N] and [B, N−1], one real floating dtype (float32 or float64), one device."""
    if a.dim() != 2 or b.dim() != 2 or b.shape[0] != a.shape[0] or b.shape[1] != max(a.shape[1] - 1, 0):
        raise BkError("E0401", f"resolvent_diag expects a [B, N] and b [B, N−1], got a {list(a.shape)} "
                               f"and b {list(b.shape)}",
                      help="the hopping b has one entry per bond, N−1 for a chain of N sites")
    if a.dtype not in (torch.float32, torch.float64) or b.dtype != a.dtype:
        raise BkError("E0403", f"resolvent_diag expects real float32 or float64 a and b of one dtype, "
                               f"got {a.dtype} and {b.dtype}")
    if a.shape[1] == 0:
        raise BkError("E0401", "resolvent_diag of an empty chain (N = 0)")


def _complex_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64


def _left_sweep(a: torch.Tensor, b: torch.Tensor, z: complex) -> torch.Tensor:
    """α (complex [B, N]), the left Schur complements α_0 = d_0, α_i = d_i − b_{i−1}²/α_{i−1}."""
    cdt = _complex_dtype(a.dtype)
    d_cols = (a.to(cdt) - z).unbind(1)
    b2_cols = (b * b).to(cdt).unbind(1)
    alpha = [d_cols[0]]
    for i in range(1, a.shape[1]):
        alpha.append(d_cols[i] - b2_cols[i - 1] / alpha[-1])
    return torch.stack(alpha, 1)


def _schur_sweeps(a: torch.Tensor, b: torch.Tensor, z: complex) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """α, β (each [B, N], complex) and d = a − z. One Python step per site, the batch vectorised."""
    cdt = _complex_dtype(a.dtype)
    n = a.shape[1]
    d = a.to(cdt) - z
    b2 = (b * b).to(cdt)
    d_cols, b2_cols = d.unbind(1), b2.unbind(1)
    beta = [d_cols[n - 1]]
    for i in range(n - 2, -1, -1):
        beta.append(d_cols[i] - b2_cols[i] / beta[-1])
    beta.reverse()
    return _left_sweep(a, b, z), torch.stack(beta, 1), d


def _adjoint_sweeps(b: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor, sigma: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Ā (right to left) and B̄ (left to right), the adjoints of α and β (module docstring)."""
    n = alpha.shape[1]
    b2 = (b * b).to(alpha.dtype)
    s_cols, b2_cols = sigma.unbind(1), b2.unbind(1)
    ra = (b2 / (alpha[:, :-1] * alpha[:, :-1])).unbind(1)  # ∂α_{i+1}/∂α_i = b_i²/α_i²
    rb = (b2 / (beta[:, 1:] * beta[:, 1:])).unbind(1)      # ∂β_i/∂β_{i+1} = b_i²/β_{i+1}²
    abar = [s_cols[n - 1]]
    for i in range(n - 2, -1, -1):
        abar.append(s_cols[i] + abar[-1] * ra[i])
    abar.reverse()
    bbar = [s_cols[0]]
    for i in range(1, n):
        bbar.append(s_cols[i] + bbar[-1] * rb[i - 1])
    return torch.stack(abar, 1), torch.stack(bbar, 1)


def resolvent_backward_reference(a: torch.Tensor, b: torch.Tensor, z: complex, grad: torch.Tensor
                                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """(∂L/∂a, ∂L/∂b) from ∂L/∂G (PyTorch's convention), by the adjoint sweeps; O(N)."""
    alpha, beta, d = _schur_sweeps(a, b, z)
    g = 1.0 / (alpha + beta - d)
    sigma = -grad.conj() * g * g
    abar, bbar = _adjoint_sweeps(b, alpha, beta, sigma)
    grad_a = (abar + bbar - sigma).real
    grad_b = (-2.0 * b * (abar[:, 1:] / alpha[:, :-1] + bbar[:, :-1] / beta[:, 1:])).real
    return grad_a.to(a.dtype), grad_b.to(b.dtype)


def resolvent_diag_reference(a: torch.Tensor, b: torch.Tensor, z: SpectralParameter) -> torch.Tensor:
    """diag((H − zI)⁻¹) by the two continued fractions, no autograd (see :class:`ResolventDiag`)."""
    z = spectral_parameter(z)
    check_inputs(a, b)
    alpha, beta, d = _schur_sweeps(a, b, z)
    return 1.0 / (alpha + beta - d)


def resolvent_causal_backward_reference(a: torch.Tensor, b: torch.Tensor, z: complex, grad: torch.Tensor
                                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """(∂L/∂a, ∂L/∂b) of the causal diagonal G_ii = 1/α_i from ∂L/∂G, by the Ā sweep; O(N)."""
    alpha = _left_sweep(a, b, z)
    g = 1.0 / alpha
    sigma = -grad.to(alpha.dtype).conj() * g * g
    n = alpha.shape[1]
    s_cols = sigma.unbind(1)
    ra = ((b * b).to(alpha.dtype) / (alpha[:, :-1] * alpha[:, :-1])).unbind(1)  # ∂α_{i+1}/∂α_i
    abar = [s_cols[n - 1]]
    for i in range(n - 2, -1, -1):
        abar.append(s_cols[i] + abar[-1] * ra[i])
    abar.reverse()
    abar = torch.stack(abar, 1)
    grad_a = abar.real
    grad_b = (-2.0 * b * (abar[:, 1:] / alpha[:, :-1])).real
    return grad_a.to(a.dtype), grad_b.to(b.dtype)


def resolvent_diag_causal_reference(a: torch.Tensor, b: torch.Tensor, z: SpectralParameter) -> torch.Tensor:
    """The retarded diagonal G⁽ⁱ⁾_ii = 1/α_i (leading blocks), by the left continued fraction; no autograd."""
    z = spectral_parameter(z)
    check_inputs(a, b)
    return 1.0 / _left_sweep(a, b, z)


class ResolventDiagCausal(torch.autograd.Function):
    """G⁽ⁱ⁾_ii = 1/α_i with exact O(N) gradients through the Ā sweep (module docstring); z constant."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor, z: complex) -> torch.Tensor:  # type: ignore[override]
        ctx.z = z
        ctx.save_for_backward(a, b)
        return 1.0 / _left_sweep(a, b, z)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        a, b = ctx.saved_tensors
        grad_a, grad_b = resolvent_causal_backward_reference(a, b, ctx.z, grad)
        return grad_a, grad_b, None


class ResolventDiag(torch.autograd.Function):
    """G_ii with exact O(N) gradients w.r.t. a and b through the adjoint sweeps (module docstring).

    The forward keeps only a and b; the backward recomputes α and β (one more O(N) sweep) rather than
    holding two complex [B, N] tensors per call in memory. z is a constant (no gradient).
    """

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor, z: complex) -> torch.Tensor:  # type: ignore[override]
        ctx.z = z
        ctx.save_for_backward(a, b)
        alpha, beta, d = _schur_sweeps(a, b, z)
        return 1.0 / (alpha + beta - d)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        a, b = ctx.saved_tensors
        grad_a, grad_b = resolvent_backward_reference(a, b, ctx.z, grad)
        return grad_a, grad_b, None


def resolvent_diag_dense(a: torch.Tensor, b: torch.Tensor, z: SpectralParameter) -> torch.Tensor:
    """The O(N³) oracle: diag(inv(H − zI)) in complex128 from the dense matrix. Differentiable."""
    z = spectral_parameter(z)
    check_inputs(a, b)
    a64, b64 = a.to(torch.float64), b.to(torch.float64)
    h = torch.diag_embed(a64) + torch.diag_embed(b64, offset=1) + torch.diag_embed(b64, offset=-1)
    eye = torch.eye(a.shape[1], dtype=torch.complex128, device=a.device)
    return torch.diagonal(torch.linalg.inv(h.to(torch.complex128) - z * eye), dim1=-2, dim2=-1)


def resolvent_diag_causal_dense(a: torch.Tensor, b: torch.Tensor, z: SpectralParameter) -> torch.Tensor:
    """The O(N⁴) oracle of the causal diagonal: G⁽ⁱ⁾_ii = inv(H[:i+1, :i+1] − zI)_ii in complex128, one
    dense inverse per leading block. Differentiable."""
    z = spectral_parameter(z)
    check_inputs(a, b)
    a64, b64 = a.to(torch.float64), b.to(torch.float64)
    h = (torch.diag_embed(a64) + torch.diag_embed(b64, offset=1) + torch.diag_embed(b64, offset=-1)).to(torch.complex128)
    cols = []
    for i in range(a.shape[1]):
        eye = torch.eye(i + 1, dtype=torch.complex128, device=a.device)
        cols.append(torch.linalg.inv(h[:, : i + 1, : i + 1] - z * eye)[:, i, i])
    return torch.stack(cols, 1)
