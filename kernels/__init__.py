"""Fused Triton kernels, installed as ``bkdsl.kernels``.

One package per op, laid out as flash-linear-attention's ``fla/ops/<op>/``: ``naive.py`` (the plain-PyTorch
reference, the specification; it imports nothing of bkdsl but its diagnostics), the production Triton
kernel(s), ``ops.py`` (the ``torch.ops.bkdsl.<name>`` custom ops with fake and autograd registrations),
and where there are benchmark peers, ``variants.py`` (never imported by the production path). Each
package's ``__init__`` makes the one kernel-or-reference decision per call (:mod:`.dispatch`) and imports
Triton only on the kernel path. :mod:`.tiles` gives every default tile a fallback table (#20.3).

Ops: :mod:`.resolvent` (two-sided and causal resolvent diagonal), :mod:`.hyperbolic_routing`,
:mod:`.scattering_attention`.
"""
