"""Kernel tests run Triton's CPU interpreter.

``triton.jit`` chooses between the compiled and the interpreted kernel when a kernel module is imported
(it reads ``TRITON_INTERPRET`` at decoration time), so the variable is set here, before any test in this
folder imports a module of ``bkdsl.kernels``. The tests feed CPU tensors, so the interpreter is forced
whatever the caller set.
"""

import os

os.environ["TRITON_INTERPRET"] = "1"
