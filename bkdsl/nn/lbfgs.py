"""L-BFGS driven by the runner's ordinary step (the ``lbfgs`` optimizer of bkdsl/components/optimizers.py)."""

from __future__ import annotations

import logging
import math
from contextlib import nullcontext
from typing import Callable

import torch

log = logging.getLogger(__name__)


class ClosureLBFGS(torch.optim.LBFGS):
    """``torch.optim.LBFGS`` driven by the runner's ordinary step.

    L-BFGS evaluates the loss at several points per step (its line search), so ``step`` needs a closure
    that recomputes loss and gradient. The runner has already done the first evaluation (forward,
    loss, backward) when it steps; it hands over that loss and a ``recompute`` function with
    :meth:`prepare`, and the closure given to torch returns the runner's loss on its first call (the
    gradients are in place) and recomputes afterwards (``wants_closure`` tells the runner to do so).

    A step that ends on non-finite parameters or loss (one more evaluation at the end checks the loss
    there; torch keeps only the one before its last update) — a line search that wandered into a region
    where the model overflows (the AdS network integrating into a singular metric) — is undone: the
    parameters are restored, the curvature history is dropped and later steps use half the step
    length (``backoff``), as the library fit :func:`bkdsl.nn.ads_fit.fit_metric` does.

    The curvature history (lists of tensors) goes to checkpoints as numbered tensors
    (``old_dirs.0`` …), never pickled."""

    wants_closure = True
    _LISTS = ("old_dirs", "old_stps", "ro")

    def __init__(self, params, **kw):
        super().__init__(params, **kw)
        self.backoff = 1.0
        self._pending: tuple | None = None

    def prepare(self, loss: torch.Tensor, recompute: Callable[[], torch.Tensor], autocast=nullcontext) -> None:
        self._pending = (loss, recompute, autocast)

    def step(self, closure=None):
        if closure is None:
            if self._pending is None:
                raise RuntimeError("ClosureLBFGS.step needs prepare(loss, recompute) or a closure")
            loss, recompute, autocast = self._pending
            self._pending = None
            first = [loss]

            def closure():
                if first:
                    return first.pop()
                self.zero_grad(set_to_none=True)
                with autocast():
                    value = recompute()
                value.backward()
                return value

        params = [p for g in self.param_groups for p in g["params"]]
        saved = [p.detach().clone() for p in params]
        lrs = [g["lr"] for g in self.param_groups]
        for g in self.param_groups:
            g["lr"] = g["lr"] * self.backoff
        try:
            out = super().step(closure)
        finally:
            for g, lr in zip(self.param_groups, lrs):
                g["lr"] = lr
        finite = all(bool(torch.isfinite(p).all()) for p in params)
        if finite:  # the loss where the step ended (torch keeps only the one before the last update)
            with torch.enable_grad():
                finite = math.isfinite(float(closure().detach()))
        if not finite:
            with torch.no_grad():
                for p, s in zip(params, saved):
                    p.copy_(s)
            self.state.clear()
            self.backoff *= 0.5
            log.warning("lbfgs: the step ended on non-finite values; undone, step length now x%g", self.backoff)
        return out

    def state_dict(self):
        sd = super().state_dict()
        for idx, st in list(sd["state"].items()):
            st = dict(st)
            st.pop("al", None)  # scratch space, written before it is read
            for k in self._LISTS:
                if k in st:
                    lst = st.pop(k)
                    st[f"{k}_n"] = len(lst)
                    for i, t in enumerate(lst):
                        st[f"{k}.{i}"] = t
            st["backoff"] = self.backoff
            sd["state"][idx] = st
        return sd

    def load_state_dict(self, state_dict):
        sd = {"state": {}, "param_groups": state_dict["param_groups"]}
        for idx, st in state_dict["state"].items():
            st = dict(st)
            self.backoff = float(st.pop("backoff", 1.0))
            for k in self._LISTS:
                n = int(st.pop(f"{k}_n", 0))
                if n or f"{k}.0" in st:
                    st[k] = [st.pop(f"{k}.{i}") for i in range(n)]
            sd["state"][idx] = st
        super().load_state_dict(sd)
