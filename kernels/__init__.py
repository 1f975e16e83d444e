"""Fused Triton kernels, installed as ``bkdsl.kernels``.

One file per op. Each registers a torch custom op ``torch.ops.bkdsl.<name>`` with fake (meta) and
autograd registrations; its specification is the plain-PyTorch reference in ``bkdsl.nn``. Which
implementation runs is decided by :mod:`bkdsl.kernels.dispatch`.
"""
