"""Time reversal of training data: the layouts a data source declares (PhaseSpacePair, TokenPair,
SequenceFields). They are declarations the verify pass reads without torch, so they live in
:mod:`bkdsl.components.reversal`; this module re-exports them for the runner and for user sources that
import them from here."""

from bkdsl.components.reversal import (LAYOUTS, Layout, PhaseSpacePair, SequenceFields,  # noqa: F401
                                       TokenPair, bind_layout, check_fields, refuse, reversal_layout)

__all__ = ["PhaseSpacePair", "TokenPair", "SequenceFields", "Layout", "LAYOUTS", "reversal_layout", "refuse",
           "bind_layout", "check_fields"]
