"""The registry moved to :mod:`bkdsl.registry` (the ground floor every stage imports). This name stays an
alias of that same module object for code written against the old path (``_REGISTRY`` included)."""

import sys

from bkdsl import registry as _registry

sys.modules[__name__] = _registry
