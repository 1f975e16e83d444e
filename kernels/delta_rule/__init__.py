"""The delta rule with φ = ELU + 1 and the normaliser, chunked in the WY form (flash-linear-attention layout).

* :mod:`.naive` — the plain-PyTorch reference (recurrent and chunked), the specification;
* :mod:`.chunk` — the Triton forward and backward kernels and their launchers;
* :mod:`.op` — ``torch.ops.bkdsl.delta_rule`` (custom op, fake, autograd) and :func:`delta_rule`, the
  dispatching entry models call.
"""

from bkdsl.kernels.delta_rule.naive import delta_rule_chunked, delta_rule_recurrent, elu_plus_one
from bkdsl.kernels.delta_rule.op import delta_rule

__all__ = ["delta_rule", "delta_rule_chunked", "delta_rule_recurrent", "elu_plus_one"]
