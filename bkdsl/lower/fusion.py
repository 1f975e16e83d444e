"""fx rewrite passes that swap reference calls for fused kernels (ARCHITECTURE.md, "Kernels").

Lowering emits calls of the kernel *dispatchers* (``bkdsl.nn.resolvent.resolvent_diag``), which
pick Triton on CUDA and the PyTorch reference elsewhere at run time. :func:`fuse_kernels` rewrites
those calls into the custom ops themselves (``torch.ops.bkdsl.resolvent_diag``) for a graph that is
known to run on CUDA — what ``bkdsl compile --kernels triton`` shows in graph.py and what torch.compile
/ torch.export then see as opaque ops with fake (meta) implementations.
"""

from __future__ import annotations

import torch
import torch.fx as fx

from bkdsl.kernels.resolvent import load_ops
from bkdsl.nn.resolvent import resolvent_diag, spectral_parameter


def _resolvent_rewrite(g: fx.Graph, node: fx.Node) -> fx.Node:
    load_ops()  # registers torch.ops.bkdsl.resolvent_diag[_causal] (imports Triton)
    a, b = node.args[:2]
    z = spectral_parameter(node.kwargs.get("z", node.args[2] if len(node.args) > 2 else None))
    causal = node.kwargs.get("causal", node.args[3] if len(node.args) > 3 else False)
    op = torch.ops.bkdsl.resolvent_diag_causal if causal else torch.ops.bkdsl.resolvent_diag
    with g.inserting_before(node):
        return g.call_function(op.default, (a, b, z.real, z.imag))


REWRITES = {resolvent_diag: _resolvent_rewrite}


def fuse_kernels(gm: fx.GraphModule) -> int:
    """Rewrite dispatcher calls into ``torch.ops.bkdsl.*`` in ``gm`` and its nested GraphModules;
    returns the number of calls rewritten."""
    n = 0
    for mod in gm.modules():
        if not isinstance(mod, fx.GraphModule):
            continue
        changed = False
        for node in list(mod.graph.nodes):
            if node.op == "call_function" and node.target in REWRITES:
                new = REWRITES[node.target](mod.graph, node)
                new.name = node.name
                node.replace_all_uses_with(new)
                mod.graph.erase_node(node)
                n += 1
                changed = True
        if changed:
            mod.graph.lint()
            mod.recompile()
    return n
