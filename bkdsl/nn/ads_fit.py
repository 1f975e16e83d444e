"""Fitting the AdS/CFT network to boundary data, and the validation rule that picks its regulariser
weight and layer count (issue 18, item 6).

:func:`fit_metric` trains one :class:`~bkdsl.nn.ads.AdSNetwork` on a training split and reports, beside
the recovered metric's relative RMS error, the loss of the *true* metric on the same data (the data's
own discretisation floor, :func:`~bkdsl.nn.ads.true_metric_loss`) on the training and the validation
split.

:func:`select_and_fit` is the validation rule, fixed before any result was seen and the same for every
metric: hold out ``val_frac`` (20 %) of the samples; for every (layers, c_reg) of the fixed grid
:data:`LAYER_GRID` × :data:`C_GRID` fit on the rest; compare the validation losses (asinh squared
error of F, without the regulariser) by the one-standard-error rule of :func:`choose`: the simplest
model (fewest layers, then largest c_reg) whose validation loss is within one standard error of the
smallest. Only the validation losses decide — the true metric is used for reporting, never for
choosing. Why one SE rather than the bare minimum: the inverse problem is ill-conditioned, so
metrics 10–20 % apart fit the data equally well (validation losses within their noise); the bare
minimum then picks at random among them, the simplest of them is the smooth one.

Why layers 20 and 40 only: the grid was fixed from the discretisation floor, never from a recovered
metric. With 10 layers the true metric misses its own data by more than 1 % noise (asinh squared
error 2.3e-4 for AdS–Schwarzschild d = 3, 5.9e-4 for d = 4, against the noise's 1e-4), so a fit there
can only succeed by absorbing discretisation bias into h.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch

from bkdsl.nn.ads import (AdSNetwork, Bulk, MetricFn, asinh_mse, horizon_probability, relative_rms,
                          true_metric_loss)
from bkdsl.nn.ads_data import generate_response, split

LAYER_GRID = (20, 40)
C_GRID = (1e-4, 1e-3, 1e-2, 1e-1)


@dataclass
class FitResult:
    rel_rms: float
    eta: list[float]
    h_learned: list[float]
    h_true: list[float]
    final_loss: float           # the fit term on the training split at the end
    epochs: int
    val_loss: float = math.nan  # the fit term on the validation split
    floor_train: float = math.nan  # the same loss with the true metric (the discretisation floor)
    floor_val: float = math.nan
    layers: int = 0
    c_reg: float = 0.0
    val_se: float = math.nan    # standard error of val_loss: std of the per-sample terms / √n

    def to_dict(self) -> dict:
        return asdict(self)


def _per_sample(net: AdSNetwork, x, y, label: str, eps: float) -> torch.Tensor:
    F = net(x)
    if label == "response":
        return (torch.asinh(F) - torch.asinh(y)) ** 2
    return (horizon_probability(F, eps) - y).abs()


def _fit_term(net: AdSNetwork, x, y, label: str, eps: float) -> torch.Tensor:
    return asinh_mse(net(x), y) if label == "response" else _per_sample(net, x, y, label, eps).mean()


def train_network(net: AdSNetwork, x: torch.Tensor, y: torch.Tensor, label: str = "response",
                  epochs: int = 40, lr: float = 1.0, c_reg: float = 1e-4, optimizer: str = "lbfgs",
                  batch: int = 256, eps: float = 0.1, log: Callable[[int, float], None] | None = None) -> float:
    """Train ``net`` in place on (x, y); return the last fit term (NaN if it never got a finite one).

    The inverse problem is ill-conditioned (the response is a smooth function of two boundary
    numbers, and h enters it through nested integrals), so first-order optimizers crawl: full-batch
    L-BFGS with a strong-Wolfe line search reaches in seconds what Adam does not in minutes (both are
    available: ``optimizer="adam"`` uses minibatches of ``batch``). A line search that wanders into
    a metric where the integration overflows is undone: parameters restored, step halved."""

    def objective(xb, yb):
        fit = _fit_term(net, xb, yb, label, eps)
        return fit, fit + c_reg * net.smoothness()

    loss_v = math.nan
    if optimizer == "lbfgs":
        step_lr = lr

        def make():
            return torch.optim.LBFGS(net.parameters(), lr=step_lr, max_iter=50, history_size=50,
                                     line_search_fn="strong_wolfe")

        opt = make()
        for ep in range(epochs):
            saved = [p.detach().clone() for p in net.parameters()]

            def closure():
                opt.zero_grad()
                _, total = objective(x, y)
                total.backward()
                return total

            opt.step(closure)
            with torch.no_grad():
                fit, total = objective(x, y)
            if not torch.isfinite(total) or not all(torch.isfinite(p).all() for p in net.parameters()):
                with torch.no_grad():
                    for p, s in zip(net.parameters(), saved):
                        p.copy_(s)
                step_lr /= 2
                opt = make()
                continue
            loss_v = float(fit)
            if log is not None:
                log(ep, loss_v)
    elif optimizer == "adam":
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
        for ep in range(epochs):
            perm = torch.randperm(len(x))
            for s in range(0, len(x), batch):
                idx = perm[s:s + batch]
                fit, total = objective(x[idx], y[idx])
                opt.zero_grad()
                total.backward()
                opt.step()
                loss_v = float(fit.detach())
            sched.step()
            if log is not None:
                log(ep, loss_v)
    else:
        raise ValueError(f"optimizer must be lbfgs or adam, got {optimizer!r}")
    return loss_v


def _evaluate(net, h_true, train, val, label, eps, bulk, layer, grid, substeps, epochs, loss_v, c_reg):
    with torch.no_grad():
        ht = h_true(net.eta)
        terms = _per_sample(net, val["x"], val["y"], label, eps) if len(val["x"]) > 1 else None
        val_loss = float(terms.mean()) if terms is not None else math.nan
        val_se = float(terms.std() / math.sqrt(len(terms))) if terms is not None else math.nan
    if label == "response":
        floor_t = true_metric_loss(h_true, train["x"], train["y"], net.n, layer, bulk, grid, substeps)
        floor_v = (true_metric_loss(h_true, val["x"], val["y"], net.n, layer, bulk, grid, substeps)
                   if len(val["x"]) else math.nan)
    else:
        floor_t = floor_v = math.nan
    return FitResult(relative_rms(net.h.detach(), ht), net.eta.tolist(), net.h.detach().tolist(), ht.tolist(),
                     loss_v, epochs, val_loss, floor_t, floor_v, net.n, c_reg, val_se)


def fit_metric(h_true: MetricFn, label: str = "response", layers: int = 20, layer: str = "rk4",
               samples: int = 2000, epochs: int = 40, lr: float = 1.0, c_reg: float = 1e-4,
               optimizer: str = "lbfgs", batch: int = 256, seed: int = 0, bulk: Bulk = Bulk(),
               eps: float = 0.1, init: float = 1.0, grid: str = "log", substeps: int = 1,
               noise: float = 0.0, val_frac: float = 0.2, data: dict | None = None,
               log: Callable[[int, float], None] | None = None) -> FitResult:
    """Generate data from ``h_true`` (or take ``data``), hold out ``val_frac``, train an
    :class:`AdSNetwork` from h ≡ ``init`` on the rest, and compare h with the truth."""
    torch.manual_seed(seed)
    if data is None:
        data = generate_response(h_true, samples, bulk, label=label, eps=eps, seed=seed, noise=noise)
    train, val = split(data, (1 - val_frac, val_frac), seed)
    net = AdSNetwork(layers, layer, bulk, init=init, grid=grid, substeps=substeps)
    loss_v = train_network(net, train["x"], train["y"], label, epochs, lr, c_reg, optimizer, batch, eps, log)
    return _evaluate(net, h_true, train, val, label, eps, bulk, layer, grid, substeps, epochs, loss_v, c_reg)


@dataclass
class Selection:
    """The validation rule's outcome: the chosen fit and every candidate's (layers, c_reg, val_loss, rel_rms)."""

    chosen: FitResult
    candidates: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"chosen": self.chosen.to_dict(), "candidates": self.candidates}


def choose(candidates: list[dict]) -> int:
    """Index of the candidate the rule picks — the one-standard-error rule (Hastie, Tibshirani,
    Friedman, *The Elements of Statistical Learning*, §7.10): take the smallest finite validation loss
    L* and its standard error s*; among the candidates with L ≤ L* + s*, the simplest: the fewest
    ``layers``, then the largest ``c_reg``. Raises ValueError when no candidate has a finite
    validation loss (never a silent pick)."""
    finite = [i for i, c in enumerate(candidates) if math.isfinite(c["val_loss"])]
    if not finite:
        raise ValueError("no candidate has a finite validation loss")
    best = min(finite, key=lambda i: candidates[i]["val_loss"])
    se = candidates[best].get("val_se", 0.0)
    bound = candidates[best]["val_loss"] + (se if math.isfinite(se) else 0.0)
    within = [i for i in finite if candidates[i]["val_loss"] <= bound]
    return min(within, key=lambda i: (candidates[i]["layers"], -candidates[i]["c_reg"]))


def select_and_fit(h_true: MetricFn, layer_grid=LAYER_GRID, c_grid=C_GRID, samples: int = 2000,
                   seed: int = 0, noise: float = 0.01,
                   progress: Callable[[dict], None] | None = None, **fit_kw) -> Selection:
    """The validation rule (module docstring) on data from ``h_true``: one data set, one split, every
    grid point fitted, the smallest validation loss chosen."""
    data = generate_response(h_true, samples, fit_kw.get("bulk", Bulk()), label="response", seed=seed, noise=noise)
    fits, rows = [], []
    for n in layer_grid:
        for c in c_grid:
            r = fit_metric(h_true, layers=n, c_reg=c, seed=seed, data=data, **fit_kw)
            fits.append(r)
            rows.append({"layers": n, "c_reg": c, "val_loss": r.val_loss, "val_se": r.val_se,
                         "train_loss": r.final_loss,
                         "floor_val": r.floor_val, "rel_rms": r.rel_rms})
            if progress is not None:
                progress(rows[-1])
    return Selection(fits[choose(rows)], rows)
