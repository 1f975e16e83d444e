"""The resolvent diagonal (BK-Core) as the nn layer sees it: re-exported from :mod:`bkdsl.kernels.resolvent`.

The reference, the oracles and the kernels live together in ``kernels/resolvent/`` (``naive.py`` beside
the Triton kernels); this module keeps the public names where models and the fx lowering import them.
"""

from bkdsl.kernels.resolvent import (ResolventDiag, ResolventDiagCausal, SpectralParameter, check_inputs,
                                     resolvent_backward_reference, resolvent_causal_backward_reference,
                                     resolvent_diag, resolvent_diag_causal_dense, resolvent_diag_causal_reference,
                                     resolvent_diag_dense, resolvent_diag_reference, spectral_parameter)

__all__ = ["resolvent_diag", "resolvent_diag_reference", "resolvent_backward_reference", "resolvent_diag_dense",
           "ResolventDiag", "resolvent_diag_causal_reference", "resolvent_causal_backward_reference",
           "resolvent_diag_causal_dense", "ResolventDiagCausal", "spectral_parameter", "check_inputs",
           "SpectralParameter"]
