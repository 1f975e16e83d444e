"""Superposition training (source 000 §6): PI² weight averaging, natural gradient, ensemble distillation.

Three optimizers that need more than ``p.grad``: the loss (or the outputs) at *other* weights, or
per-sample gradients. The runner hands them a :class:`FunctionalModel` — the model as a pure function
of its parameters (``torch.func.functional_call``) plus the spec's loss — and the batch, through
``step_with(fm, batch)`` (``functional_step = True``); a plain ``step()`` is refused (RuntimeError), so
an optimizer cannot silently run without what it needs.

**PI² (path-integral policy improvement, Theodorou, Buchli & Schaal 2010, for weights)** — §6.1.
After the base step W' = base(W, ∇L) (SGD or Adam; ``lr = 0`` makes it purely zeroth-order):

    W_k = W' + ε_k,  ε_k ~ N(0, σ² I),  k = 1…K        (K "particles", evaluated in one vmapped call)
    P_k = softmax(−λ S_k),  S_k = (L(W_k) − min L) / (max L − min L)   (PI²'s cost normalisation)
    W ← Σ_k P_k W_k = W' + Σ_k P_k ε_k

With K = 1 and σ = 0 the particle is W' itself: exactly the base step (tested).

**Natural gradient with the empirical Fisher** — §6.2 (imaginary-time evolution ≡ natural gradient).
W ← W − η (F + δI)⁻¹ g with F = (1/B) Σ_i g_i g_iᵀ from the per-sample gradients g_i (torch.func.vmap
of torch.func.grad), solved exactly through the Woodbury identity with U = [g_1 … g_B]ᵀ/√B:

    (δI + UᵀU)⁻¹ g = (g − Uᵀ (δ I_B + U Uᵀ)⁻¹ U g) / δ                      (O(B²P + B³), not O(P³))

Why the empirical Fisher and not K-FAC: K-FAC factors F per layer from the inputs and output-gradients
of Linear/Conv layers; a bk model is an arbitrary torch.fx graph of physics components (resolvents,
manifold maps, bindings) that K-FAC's layer rules and its maintained implementations (BackPACK wants
an ``nn.Sequential`` of supported layers) do not cover. Per-sample gradients from torch.func cover any
differentiable model, and Woodbury makes the damped inverse exact for batch ≪ parameters. The caveat
(Kunstner, Balles & Hennig 2019): the empirical Fisher is not the Fisher; near a minimum it mostly
rescales. ``fisher = "identity"`` with ``damping = 0`` makes the step plain SGD (tested).

**Ensemble distillation** — §6.3. The PI² particles are the teachers, weighted by P_k; the student
(the model's own weights) takes a base step on L_task + β·D with D the distillation term:

    categorical outputs:  D = KL(Σ_k P_k softmax(t_k) ‖ softmax(s))      (cross-entropy form)
    gaussian outputs:     D = ‖s − Σ_k P_k t_k‖² / 2       (KL between equal-variance Gaussians, the
                                                           mixture moment-matched to its mean)

The teachers' outputs come from one vmapped forward over the K particles.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Callable

import torch
from torch.func import functional_call, grad, vmap

log = logging.getLogger(__name__)

LossFn = Callable[[dict, dict], tuple[torch.Tensor, dict]]


class FunctionalModel:
    """``model`` as a function of a parameter dict: outputs(params, batch), loss(params, batch).

    Buffers are passed unchanged (a model whose forward writes buffers — batch-norm statistics in
    training mode — cannot be vmapped; the optimizers then evaluate particles one by one)."""

    def __init__(self, model: torch.nn.Module, inputs: list[str], loss: LossFn):
        self.model, self.inputs, self.loss_fn = model, list(inputs), loss

    def named_params(self) -> dict[str, torch.nn.Parameter]:
        return {n: p for n, p in self.model.named_parameters() if p.requires_grad}

    def outputs(self, params: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = functional_call(self.model, params, (), {k: batch[k] for k in self.inputs}, strict=False)
        if isinstance(out, torch.Tensor):
            raise RuntimeError("the model returns one unnamed tensor; the runner needs named outputs")
        return {k: (v.float() if v.is_floating_point() else v) for k, v in out.items()}

    def loss(self, params: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.loss_fn(self.outputs(params, batch), batch)[0]


def _stack(params: dict[str, torch.Tensor], eps: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {n: p.detach().unsqueeze(0) + eps[n] for n, p in params.items()}


def batched(fn: Callable[[dict], Any], stacked: dict[str, torch.Tensor], k: int) -> Any:
    """``fn`` at each of the K stacked parameter sets: one torch.func.vmap call; a model vmap cannot
    trace (in-place buffer updates, data-dependent control flow) falls back to a loop, logged once."""
    try:
        return vmap(fn)(stacked)
    except (RuntimeError, ValueError, NotImplementedError) as e:
        if not getattr(batched, "_warned", False):
            log.warning("superposition: vmap over the particles failed (%s: %s); evaluating them one by one",
                        type(e).__name__, str(e).splitlines()[0] if str(e) else "")
            batched._warned = True  # type: ignore[attr-defined]
        outs = [fn({n: v[i] for n, v in stacked.items()}) for i in range(k)]
        if isinstance(outs[0], dict):
            return {key: torch.stack([o[key] for o in outs]) for key in outs[0]}
        return torch.stack(outs)


def particle_weights(losses: torch.Tensor, temperature: float) -> torch.Tensor:
    """P_k = softmax(−λ S_k) with PI²'s normalised cost S_k ∈ [0, 1]. A non-finite loss gets weight 0;
    if every particle's loss is non-finite the weights are NaN (the step is refused by the caller)."""
    finite = torch.isfinite(losses)
    if not bool(finite.any()):
        return torch.full_like(losses, float("nan"))
    lo = losses[finite].min()
    span = (losses[finite].max() - lo).clamp_min(1e-12)
    s = torch.where(finite, (losses - lo) / span, torch.full_like(losses, math.inf))
    return torch.softmax(-temperature * s, dim=0)


class _Superposed:
    """Mixin: the PI² particle cloud around the current weights (used by PI² and distillation)."""

    functional_step = True

    @property
    def needs_backward(self) -> bool:
        """Pure PI² (every learning rate 0) is zeroth-order: the runner skips the backward pass."""
        return any(g["lr"] > 0 for g in self.param_groups)  # type: ignore[attr-defined]

    def _init_cloud(self, particles: int, sigma: float, temperature: float, seed: int) -> None:
        self.particles, self.sigma, self.temperature = particles, sigma, temperature
        self.gen = torch.Generator().manual_seed(seed)
        self.last_weights: torch.Tensor | None = None

    def _noise(self, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = {}
        for n, p in params.items():
            e = torch.randn((self.particles, *p.shape), generator=self.gen, dtype=torch.float32)
            out[n] = (self.sigma * e).to(device=p.device, dtype=p.dtype)
        return out

    def step(self, closure=None):  # noqa: D401 - refusing the plain call
        if getattr(self, "_inside", False):
            return super().step(closure)  # type: ignore[misc]
        raise RuntimeError(f"{type(self).__name__} needs the model and the batch: call step_with(fm, batch) "
                           "(bkdsl's runner does)")

    def _base_step(self) -> None:
        self._inside = True
        try:
            super().step()  # type: ignore[misc]
        finally:
            self._inside = False

    def _own_params(self, fm: FunctionalModel) -> dict[str, torch.nn.Parameter]:
        mine = {id(p) for g in self.param_groups for p in g["params"]}  # type: ignore[attr-defined]
        return {n: p for n, p in fm.named_params().items() if id(p) in mine}


class _PI2(_Superposed):
    """PI² over the base optimizer that follows this mixin in the bases (see the module docstring):
    the base step (skipped when every learning rate is 0), then the particle average."""

    def __init__(self, params, lr: float, particles: int = 8, sigma: float = 1e-2, temperature: float = 10.0,
                 seed: int = 0, **base: Any):
        super().__init__(params, lr=lr, **base)
        self._init_cloud(particles, sigma, temperature, seed)

    @torch.no_grad()
    def step_with(self, fm: FunctionalModel, batch: dict[str, torch.Tensor]) -> None:
        if any(g["lr"] > 0 for g in self.param_groups):  # type: ignore[attr-defined]
            self._base_step()
        pi2_average(self, fm, batch)


class PI2SGD(_PI2, torch.optim.SGD):
    """PI² over an SGD base step."""


class PI2Adam(_PI2, torch.optim.Adam):
    """PI² over an Adam base step."""


def pi2_average(opt: _Superposed, fm: FunctionalModel, batch: dict[str, torch.Tensor]) -> None:
    """W ← Σ_k P_k (W + ε_k): the K particle losses in one vmapped call, then the weighted mean."""
    params = opt._own_params(fm)
    eps = opt._noise(params)
    stacked = _stack(params, eps)
    others = {n: p.detach() for n, p in fm.named_params().items() if n not in params}
    losses = batched(lambda p: fm.loss({**others, **p}, batch), stacked, opt.particles).detach().float()
    w = particle_weights(losses, opt.temperature)
    opt.last_weights = w
    if not bool(torch.isfinite(w).all()):
        raise FloatingPointError("PI²: every particle's loss is non-finite; the step is refused")
    for n, p in params.items():
        p.add_(torch.einsum("k,k...->...", w.to(p.dtype), eps[n]))


class NaturalGradient(torch.optim.SGD):
    """W ← W − η (F + δI)⁻¹ g, F the empirical Fisher (Woodbury solve), or F = I (``fisher="identity"``):
    the preconditioned direction is written into ``p.grad`` and SGD (with its momentum) applies it."""

    functional_step = True
    needs_backward = True

    def __init__(self, params, lr: float, damping: float = 1e-3, fisher: str = "empirical",
                 momentum: float = 0.0, max_samples: int = 64):
        super().__init__(params, lr=lr, momentum=momentum)
        if fisher not in ("empirical", "identity"):
            raise ValueError(f"fisher must be empirical or identity, got {fisher!r}")
        self.damping, self.fisher, self.max_samples = damping, fisher, max_samples
        self._inside = False

    def step(self, closure=None):
        if self._inside:
            return super().step(closure)
        raise RuntimeError("NaturalGradient needs the model and the batch: call step_with(fm, batch)")

    def step_with(self, fm: FunctionalModel, batch: dict[str, torch.Tensor]) -> None:
        mine = {id(p) for g in self.param_groups for p in g["params"]}
        params = {n: p for n, p in fm.named_params().items() if id(p) in mine}
        if self.fisher == "empirical":
            self._precondition(fm, params, batch)
        self._inside = True
        try:
            super().step()
        finally:
            self._inside = False

    @torch.no_grad()
    def _precondition(self, fm: FunctionalModel, params: dict[str, torch.nn.Parameter], batch: dict) -> None:
        names = [n for n, p in params.items() if p.grad is not None]
        if not names:
            return
        b = next(iter(batch.values())).shape[0]
        m = min(b, self.max_samples)
        sub = {k: v[:m] for k, v in batch.items()}
        detached = {n: p.detach() for n, p in fm.named_params().items()}

        def one(p: dict, sample: dict) -> torch.Tensor:
            return fm.loss({**detached, **p}, {k: v.unsqueeze(0) for k, v in sample.items()})

        with torch.enable_grad():
            per = vmap(grad(one), in_dims=(None, 0))({n: detached[n] for n in names}, sub)
        u = torch.cat([per[n].reshape(m, -1) for n in names], dim=1).double() / math.sqrt(m)   # [m, P]
        g = torch.cat([params[n].grad.reshape(-1) for n in names]).double()                    # [P]
        delta = natural_direction(u, g, self.damping)
        if not bool(torch.isfinite(delta).all()):
            raise FloatingPointError("natural gradient: the preconditioned direction is not finite")
        off = 0
        for n in names:
            p = params[n]
            k = p.numel()
            p.grad.copy_(delta[off:off + k].view_as(p).to(p.dtype))
            off += k


def natural_direction(u: torch.Tensor, g: torch.Tensor, damping: float) -> torch.Tensor:
    """(δI + UᵀU)⁻¹ g by Woodbury, U [m, P]: (g − Uᵀ (δI_m + UUᵀ)⁻¹ U g) / δ."""
    if not damping > 0:
        raise ValueError("the empirical-Fisher solve needs damping > 0")
    m = u.shape[0]
    small = damping * torch.eye(m, dtype=u.dtype, device=u.device) + u @ u.T
    return (g - u.T @ torch.linalg.solve(small, u @ g)) / damping


class EnsembleDistill(_Superposed, torch.optim.Adam):
    """The student (the model's weights) takes an Adam step on L_task + β·D(student ‖ Σ P_k teacher_k),
    teachers the PI² particles W + ε_k weighted by P_k = softmax(−λ S_k) (module docstring)."""

    needs_backward = True   # the task gradient (class attribute over the mixin's property)

    def __init__(self, params, lr: float, particles: int = 8, sigma: float = 1e-2, temperature: float = 10.0,
                 beta: float = 1.0, outputs: str = "gaussian", seed: int = 0, **base: Any):
        super().__init__(params, lr=lr, **base)
        if outputs not in ("gaussian", "categorical"):
            raise ValueError(f"outputs must be gaussian or categorical, got {outputs!r}")
        self._init_cloud(particles, sigma, temperature, seed)
        self.beta, self.kind = beta, outputs

    def step_with(self, fm: FunctionalModel, batch: dict[str, torch.Tensor]) -> None:
        params = self._own_params(fm)
        with torch.no_grad():
            eps = self._noise(params)
            stacked = _stack(params, eps)
            others = {n: p.detach() for n, p in fm.named_params().items() if n not in params}

            def both(p: dict) -> dict:
                out = fm.outputs({**others, **p}, batch)
                return {"__loss": fm.loss_fn(out, batch)[0], **out}

            res = batched(both, stacked, self.particles)
            w = particle_weights(res.pop("__loss").detach().float(), self.temperature)
            if not bool(torch.isfinite(w).all()):
                raise FloatingPointError("distillation: every teacher's loss is non-finite; the step is refused")
            self.last_weights = w
            target = {k: teacher_mixture(v, w, self.kind) for k, v in res.items() if v.is_floating_point()}
        if self.beta > 0 and target:
            with torch.enable_grad():
                student = fm.outputs(dict(fm.named_params()), batch)
                d = sum(distill_term(student[k], t, self.kind) for k, t in target.items())
                gs = torch.autograd.grad(self.beta * d, list(params.values()), allow_unused=True)
            for p, g_ in zip(params.values(), gs):
                if g_ is not None:
                    p.grad = g_ if p.grad is None else p.grad + g_
        self._base_step()


def teacher_mixture(t: torch.Tensor, w: torch.Tensor, kind: str) -> torch.Tensor:
    """Σ_k P_k of the teachers' predictive distributions: probabilities (categorical) or means (gaussian)."""
    shape = (-1,) + (1,) * (t.ndim - 1)
    if kind == "categorical":
        return (w.to(t.dtype).view(shape) * torch.softmax(t, dim=-1)).sum(0)
    return (w.to(t.dtype).view(shape) * t).sum(0)


def distill_term(s: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """KL(target ‖ softmax(s)) up to the target's entropy (categorical), or ½‖s − target‖² (gaussian),
    averaged over every axis but the last."""
    if kind == "categorical":
        return -(target * torch.log_softmax(s, dim=-1)).sum(-1).mean()
    return 0.5 * (s - target).pow(2).sum(-1).mean()
