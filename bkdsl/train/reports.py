"""Statistics that modules report about themselves during training.

A module may define ``training_report() -> dict[str, float]`` (scattering attention: the fraction of
block pairs skipped; hyperbolic MoE: the load of its busiest and idlest expert). The runner averages
each key over all modules that report it and records it as ``model.<key>`` in metrics.jsonl.
"""

from __future__ import annotations

import torch


def model_reports(model: torch.nn.Module) -> dict[str, float]:
    acc: dict[str, list[float]] = {}
    for m in model.modules():
        rep = getattr(m, "training_report", None)
        if callable(rep):
            for k, v in rep().items():
                acc.setdefault(k, []).append(float(v))
    return {f"model.{k}": sum(v) / len(v) for k, v in acc.items()}


@torch.no_grad()
def data_dependent_init(model: torch.nn.Module, forward) -> int:
    """Initialise modules that define ``init_from_batch(x)`` from the inputs they see on one batch.

    ``forward(model)`` runs the model once; each such module receives its own input (e.g. hyperbolic
    MoE centroids are placed by hyperbolic k-means on the embeddings that reach them). Returns the
    number of modules initialised. Run before data-parallel wrapping: DDP then broadcasts rank 0's.
    """
    handles, done = [], []

    def hook(mod, args):
        if mod not in done and args:
            mod.init_from_batch(args[0])
            done.append(mod)

    for m in model.modules():
        if callable(getattr(m, "init_from_batch", None)):
            handles.append(m.register_forward_pre_hook(hook))
    if handles:
        try:
            forward(model)
        finally:
            for h in handles:
                h.remove()
    return len(done)
