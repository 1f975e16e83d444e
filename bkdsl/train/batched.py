"""Batched multi-model training: R runs of one architecture as ONE optimisation step per batch.

Runs of a sweep that share an architecture (same parameter and buffer names, shapes and dtypes) and a
step plan (batch size, training-split size, epochs/steps, precision, device) are trained together
(model ensembling in the sense of ``torch.func``):

* **one forward/backward for all runs**, in one of two forms. *Grouped* (:mod:`bkdsl.train.grouped`,
  chosen whenever the model has the form): every layer of the spec's model is rebuilt to hold all R runs
  — a convolution ``C → O`` becomes one grouped convolution ``R·C → R·O`` with ``groups = R``, a batch
  norm one over ``R·C`` channels, a linear layer one ``baddbmm`` over the run axis — and activations
  travel as ``[B, R·C, H, W]``, so R runs are one kernel per layer with no vmap and no per-layer copies.
  *vmap* (any other model): the R models' parameters are stacked along a new leading run axis,
  ``P[name] = stack(θ_1[name], …, θ_R[name])`` (:func:`torch.func.stack_module_state`), and the
  template module runs under ``vmap(functional_call(template, (P, B), x))`` over that axis. Each run
  reads its own mini-batch (its own data order from its own seed, its own augmentation draws), so the
  step is R independent training steps, executed as one. The loss is computed per run from its slice of
  the outputs (runs may differ in loss weights, e.g. the thesis' α) and the runs' losses are summed:
  ``∂(Σ_r L_r)/∂θ_r = ∂L_r/∂θ_r`` because θ_r enters only L_r. BatchNorm running statistics are
  per-run slices updated in place. Under vmap ``randomness="error"``: a model that draws random numbers
  in its forward (dropout) cannot be batched exactly and is refused (the grouped form refuses dropout
  too); the sweep then trains it sequentially.

* **per-run optimizers, unchanged.** Each run's model keeps parameters that are *aliases* of its slice
  of the stack — ``nn.Parameter(P[name].detach()[r])`` shares storage with ``P[name]`` — and each run has
  its own optimizer (``build_optimizer``: Adam, AdamW, SGD, the Riemannian ones) over those aliases.
  After the backward, ``θ_r.grad = P[name].grad[r]`` (a view) and each run's optimizer steps in place,
  which writes straight into the stack. So a per-run learning rate, schedule (``reduce_on_plateau``
  observes each run's own validation loss), gradient clipping, weight decay and optimizer state are
  exactly those of the run trained alone. Adam over a stacked parameter with a per-run learning-rate
  tensor ``lr[r]`` is the same computation — its update ``lr[r]·m̂_r/(√v̂_r + ε)`` is elementwise, and the
  moments of slice r see only slice r's gradient — which ``tests/train/test_sweep_batched.py`` shows
  against R separate ``torch.optim.Adam``s; here the per-run optimizers are kept because their state is
  then byte-for-byte the checkpoint format of a single run (a batched run resumes sequentially and
  vice versa).

* **runs stay separate on disk.** Each run has its own :class:`~bkdsl.train.loop.Trainer` (data split,
  normalisation, evaluation, checkpoints, ``metrics.jsonl``, ``final.json``, plots) in its own run
  directory; evaluation runs each run's own module (the aliases), so it is the single-run code.

* **a stopped run is masked out.** A run whose loss turns non-finite stops with E0607 exactly as alone
  (its last good checkpoint kept, ``final.json`` says why); it stays in the stack, its loss is left out
  of the sum and its optimizer no longer steps, and the others go on. A run that reaches its
  ``time_limit`` is finished the same way.

Different d_z (the thesis' grid): in the grouped form, runs that differ only in the sizes of linear
layers (d_z sizes the encoder's last layer and the decoders' first) share ONE module, those layers padded
to the largest size under a fixed 0/1 mask (:class:`bkdsl.train.grouped.GroupedLinear`): run r's padded
outputs are exactly 0, its padded inputs are multiplied by 0, the padded weights get zero gradients and
stay 0 under any elementwise optimizer, and its real weights are copied from its own ``nn.Linear`` — so
its function, initialisation and updates are those of the run alone; outputs of padded layers (the
latent z) are cut to each run's size. The sweep merges shapes this way while the padding costs at most
10 % of the parameters (:func:`padding_overhead`; 0.2 % for the thesis' grid); otherwise, and under
vmap, runs are grouped by shape — one batched group per parameter-shape signature, trained one after
another. Before anything is trained, the grouped forward is compared with each run's own module on the
first samples (:meth:`bkdsl.train.grouped.GroupedModels.calibrate`; fails closed, E0621).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.func import functional_call, vmap

from bkdsl.diagnostics import BkError
from bkdsl.train import distributed as D
from bkdsl.train.augment import apply_all
from bkdsl.train.data import batches_per_epoch, epoch_order
from bkdsl.train.grouped import GroupedModels, GroupingRefused, graph_codes, group_modules
from bkdsl.train.loop import MAX_SEED, Trainer, TrainPlan, _Progress, resolve_device
from bkdsl.train.optim import build_optimizer
from bkdsl.train.reports import data_dependent_init
from bkdsl.train.schedules import LRSchedule

log = logging.getLogger("bkdsl.train.batched")


# -- which runs can share a step ----------------------------------------------------------------------
@dataclass(frozen=True)
class Signature:
    """What must be equal for runs to share one batched step (the group key)."""

    params: tuple
    buffers: tuple
    inputs: tuple
    batch: int
    n_samples: int
    split: tuple
    epochs: int | None
    steps: int | None
    precision: str
    device: str
    graphs: int = 0        # hash of the fx graphs' code: runs must also compute the same function of their weights


def unbatchable_reason(plan: TrainPlan, model: torch.nn.Module) -> str | None:
    """Why this run cannot be trained in a batched group at all (None when it can)."""
    if D.env_world() > 1:
        return "batched training runs in one process (no torchrun)"
    named = list(model.named_parameters(remove_duplicate=False))
    if len(named) != len(list(model.named_parameters())):
        return "the model shares (ties) parameters between modules"
    odd = [n for n, p in named if type(p) is not torch.nn.Parameter]
    if odd:
        return f"parameter `{odd[0]}` is a {type(named[[n for n, _ in named].index(odd[0])][1]).__name__}, not a plain " \
               "nn.Parameter (manifold parameters keep their manifold only in the single-run path)"
    if plan.config.assert_manifolds:
        return "assert_manifolds hooks the single-run module"
    if plan.config.compile:
        return "train.compile applies to the single-run forward"
    return None


def has_convolution(model: torch.nn.Module) -> bool:
    """Whether the model holds a convolution (``auto`` sweeps train those one run at a time on CUDA:
    under vmap a convolution becomes a grouped convolution over the runs, which measured slower than the
    runs one after another on an H200 — bench/results/2026-12-03-sweep_batched.json)."""
    return any(isinstance(m, torch.nn.modules.conv._ConvNd) for m in model.modules())


STRATEGIES = ("grouped", "vmap")


def grouping_refusal(model: torch.nn.Module) -> str | None:
    """Why the model has no grouped form (:mod:`bkdsl.train.grouped`), None when it has one: the
    structural transformation tried on two copies of it (no forward run)."""
    try:
        group_modules([model, model])
    except GroupingRefused as e:
        return str(e)
    return None


# `auto` puts convolutional models with a grouped form into the grouped form on CUDA only when this is
# True. Off: on the H200 (bench/results/2026-12-03-issue20.json, sweep part) the thesis' 9-run u236 grid
# as one grouped, padded, CUDA-graphed module ran 11 044 samples/s in aggregate against 14 043 for one
# run alone (CUDA graphs) — 0.79x: the model is compute-bound (12.37 GFLOP per sample), so running the
# runs one after another is faster. `--sweep-mode grouped` still forces the grouped form.
AUTO_GROUP_CONV = False


def auto_strategy(model: torch.nn.Module, device) -> dict:
    """What ``--sweep-mode auto`` does with a group of runs of this model on ``device``:
    ``{"strategy": "grouped" | "vmap" | "sequential", "reason": …}``. On CUDA: the grouped form when the
    model has one (one grouped kernel per layer), else vmap for models without convolutions, else
    sequential (vmap's convolutions measured 0.35x one run alone on an H200,
    bench/results/2026-12-03-sweep_batched.json); off CUDA: sequential."""
    dev = torch.device(device) if not isinstance(device, torch.device) else device
    if dev.type != "cuda":
        return {"strategy": "sequential", "reason": f"auto batches on CUDA only, this run is on {dev.type}"}
    why = grouping_refusal(model)
    if why is None and (AUTO_GROUP_CONV or not has_convolution(model)):
        return {"strategy": "grouped", "reason": "every layer has an exact grouped form"}
    if why is None:
        return {"strategy": "sequential", "reason": "AUTO_GROUP_CONV is off: convolutional models train one at a time"}
    if has_convolution(model):
        return {"strategy": "sequential", "reason": f"no grouped form ({why}) and vmap's grouped convolutions are "
                                                     "slower than one run at a time"}
    return {"strategy": "vmap", "reason": f"no grouped form ({why}); no convolution"}


def _linear_params(model: torch.nn.Module) -> set[str]:
    return {f"{m_name}.{p}" if m_name else p for m_name, m in model.named_modules() if isinstance(m, torch.nn.Linear)
            for p in ("weight", "bias")}


def signature(plan: TrainPlan, model: torch.nn.Module, pad_linear: bool = False) -> Signature:
    """The group key. ``pad_linear``: the sizes of linear layers left out — runs that differ only there
    (the thesis' d_z) share one grouped module, their linear layers padded under a mask
    (:class:`bkdsl.train.grouped.GroupedLinear`)."""
    cfg = plan.config
    lin = _linear_params(model) if pad_linear else set()
    return Signature(
        tuple((n, None if n in lin else tuple(p.shape), p.dtype, p.requires_grad) for n, p in model.named_parameters()),
        tuple((n, tuple(b.shape), b.dtype) for n, b in model.named_buffers()),
        tuple(plan.inputs), cfg.batch, len(plan.data.dataset), tuple(plan.data.split),
        cfg.epochs, cfg.steps, cfg.precision, str(resolve_device(cfg.device)), hash(graph_codes(model)))


def linear_sizes(model: torch.nn.Module) -> tuple[dict[str, tuple[int, int]], int]:
    """``({linear layer: (in, out)}, number of parameters)``: what :func:`padding_overhead` needs of a run."""
    return ({n: (m.in_features, m.out_features) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)},
            sum(p.numel() for p in model.parameters()))


PAD_OVERHEAD_MAX = 0.10


def padding_overhead(runs: list[tuple[dict[str, tuple[int, int]], int]]) -> float:
    """The padded linear layers' extra elements over the runs' parameters (:func:`linear_sizes` of each
    run), Σ_layers (R·max O·(max I + 1) − Σ_r O_r (I_r + 1)) / Σ_r |θ_r| — 0 when the runs' layers have equal
    sizes; runs of different d_z are grouped into one padded module only while this is ≤ 10 %."""
    extra = 0
    for name in runs[0][0]:
        sizes = [r[0][name] for r in runs]
        I, O = max(i for i, _ in sizes), max(o for _, o in sizes)
        extra += len(sizes) * O * (I + 1) - sum(o * (i + 1) for i, o in sizes)
    return extra / max(1, sum(n for _, n in runs))


def probe_model(plan: TrainPlan) -> torch.nn.Module:
    """The run's model as its run builds it (under its seed), for the signature; not trained."""
    torch.manual_seed(plan.config.seed)
    return plan.build_model()


# -- the stacked models ----------------------------------------------------------------------------------
def _float_input(module: torch.nn.Module, args: tuple) -> tuple:
    """Forward pre-hook: a half-precision first input cast to float32 (see :class:`StackedModels`)."""
    x = args[0]
    if isinstance(x, torch.Tensor) and x.dtype in (torch.bfloat16, torch.float16):
        return (x.float(), *args[1:])
    return args


class StackedModels:
    """R modules of one architecture as one vmapped module over a leading run axis.

    ``P[name]`` (leaf, ``[R, *shape]``) and ``B[name]`` hold the stacked parameters and buffers; module r
    keeps ``nn.Parameter`` aliases of ``P[name][r]`` and views ``B[name][r]``, so its optimizer, its
    ``state_dict()``, its evaluation and ``load_state_dict`` read and write the stack. Calling the
    object runs ``vmap(functional_call(models[0], (P, B), inputs))``; after a backward,
    :meth:`grads_to_models` hands each run its slice of the stacked gradients.

    ``channels_last``: every 4-D parameter (a convolution's ``[O, C, kh, kw]``) is stored per run as
    NHWC, i.e. the stack ``[R, O, C, kh, kw]`` lies in memory as ``[R, O, kh, kw, C]``. vmap's convolution
    rule folds the run axis into the channels (``[B, R·C, H, W]``, ``groups = R``) by a view when the input
    lies as ``[B, H, W, R, C]`` (:func:`stack_inputs`), so cuDNN sees channels-last tensors throughout (its
    tensor-core kernels are NHWC; NCHW costs a transpose per convolution). Values do not depend on it."""

    def __init__(self, models: list[torch.nn.Module], channels_last: bool = False):
        self.models = models
        self.channels_last = channels_last
        self.pnames = [n for n, _ in models[0].named_parameters()]
        self.bnames = [n for n, _ in models[0].named_buffers()]
        params = [dict(m.named_parameters()) for m in models]
        bufs = [dict(m.named_buffers()) for m in models]

        def stacked(ts: list[torch.Tensor]) -> torch.Tensor:
            st = torch.stack(ts)
            if channels_last and st.ndim == 5:
                st = st.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
            return st

        self.P = {n: stacked([p[n].detach() for p in params]).requires_grad_(params[0][n].requires_grad)
                  for n in self.pnames}
        self.B = {n: torch.stack([b[n] for b in bufs]) for n in self.bnames}
        for r, m in enumerate(models):
            for n in self.pnames:
                mod, leaf = _owner(m, n)
                mod._parameters[leaf] = torch.nn.Parameter(self.P[n].detach()[r],
                                                           requires_grad=mod._parameters[leaf].requires_grad)
            for n in self.bnames:
                mod, leaf = _owner(m, n)
                mod._buffers[leaf] = self.B[n][r]
        # A private copy runs under vmap (functional_call swaps in the stacked tensors, so its own weights
        # are never read): its batch norms take float32 input. Under bf16 autocast on CUDA, vmap's batch-norm
        # rule refuses a bf16 input with float32 running statistics ("Expected running_mean to have type
        # BFloat16 but got Float", H200, torch 2.11); batch norm computes in float32 in any case, and the
        # next layer is cast back by autocast. The runs' own modules stay untouched.
        template = copy.deepcopy(models[0])
        for mod in template.modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                mod.register_forward_pre_hook(_float_input)

        def forward(params, buffers, inputs):
            return functional_call(template, (params, buffers), args=(), kwargs=inputs)

        self._vmapped = vmap(forward, in_dims=(0, 0, 0), randomness="error")

    def __call__(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``inputs[k]``: ``[R, B, ...]`` (run r's batch in row r) → outputs ``[R, B, ...]``."""
        return self._vmapped(self.P, self.B, inputs)

    def stack_inputs(self, per_run: list[torch.Tensor]) -> torch.Tensor:
        """Run r's batch in row r; 4-D image batches ``[B, C, H, W]`` laid out as ``[B, H, W, R, C]`` in
        memory when ``channels_last`` (see the class docstring)."""
        if self.channels_last and per_run[0].ndim == 4:
            B, C, H, W = per_run[0].shape
            x = torch.empty((B, H, W, len(per_run), C), dtype=per_run[0].dtype, device=per_run[0].device)
            x = x.permute(3, 0, 4, 1, 2)
            for r, t in enumerate(per_run):
                x[r].copy_(t)
            return x
        return torch.stack(per_run)

    def run_output(self, out: dict[str, torch.Tensor], name: str, r: int) -> torch.Tensor:
        """Run r's output ``name`` (row r)."""
        return out[name][r]

    def grads_to_models(self, runs: list[int] | None = None) -> None:
        """``θ_r.grad = P.grad[r]`` for the given runs (all by default); the stacked gradients are released."""
        runs = range(len(self.models)) if runs is None else runs
        for n in self.pnames:
            g = self.P[n].grad
            for r in runs:
                _param(self.models[r], n).grad = None if g is None else g[r]
            self.P[n].grad = None


# -- per-run log files --------------------------------------------------------------------------------
class _RunFilter(logging.Filter):
    """A run's train.log takes the group's messages and its own, not its neighbours'."""

    current: int | None = None

    def __init__(self, index: int):
        super().__init__()
        self.index = index

    def filter(self, record: logging.LogRecord) -> bool:
        return _RunFilter.current is None or _RunFilter.current == self.index


@contextmanager
def _as_run(r: int):
    old, _RunFilter.current = _RunFilter.current, r
    try:
        yield
    finally:
        _RunFilter.current = old


# -- the group ----------------------------------------------------------------------------------------
class BatchedGroup:
    """R runs trained as one vmapped step per batch. :meth:`run` returns each run's ``final.json``
    record (a stopped run's record says ``stopped: …``; its error is in :attr:`errors`)."""

    def __init__(self, plans: list[TrainPlan], rundirs: list[str | Path], *, resume: list[bool] | bool = False,
                 quiet: bool = False, strategy: str | None = None):
        if not plans:
            raise ValueError("a batched group needs at least one run")
        if strategy not in (None, *STRATEGIES):
            raise ValueError(f"unknown batching strategy {strategy!r}")
        self.strategy = strategy          # None: grouped when the model has a grouped form, else vmap
        self.plans = plans
        self.R = len(plans)
        self.resume = list(resume) if isinstance(resume, (list, tuple)) else [bool(resume)] * self.R
        self.quiet = quiet
        self.trainers = [Trainer(p, d, resume=res, quiet=True) for p, d, res in zip(plans, rundirs, self.resume)]
        self.errors: dict[int, BkError] = {}
        self.finals: dict[int, dict] = {}
        self.aggregate_samples_per_s = 0.0

    # -- set-up, as Trainer._run does it for one run ---------------------------------------------------
    def _setup_run(self, r: int) -> None:
        t, cfg = self.trainers[r], self.trainers[r].cfg
        if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int) or not 0 <= cfg.seed <= MAX_SEED:
            raise BkError("E0609", f"`seed` must be an integer in [0, {MAX_SEED}], got {str(cfg.seed)[:30]}",
                          span=cfg.spans.get("seed", cfg.span), help="seeds are 32-bit: e.g. `seed = 0`")
        if cfg.epochs is None and cfg.steps is None:
            raise BkError("E0609", "the train block needs `epochs` or `steps`", span=cfg.span,
                          help="add `epochs = 10` (or `steps = 1000`)")
        t.device = resolve_device(cfg.device, cfg.spans.get("device", cfg.span))
        t.dist = D.setup(t.device)
        t.t0, t.elapsed_before = time.perf_counter(), 0.0
        t._prepare_data()
        torch.manual_seed(cfg.seed)
        t.raw_model = t.plan.build_model().to(t.device)
        t.raw_model.train()
        t.channels_last = False
        if not t.resume:
            first = t.norm.apply(t._to_device({k: v[:cfg.batch] for k, v in t.splits["train"].items()}))
            n_init = data_dependent_init(t.raw_model, lambda m: t._forward(m, first))
            if n_init:
                log.info("data-dependent initialisation of %d modules on one training batch", n_init)

    def _make_stack(self, dev: torch.device):
        """The batched form of the runs' modules: :class:`GroupedModels` (channels-last on CUDA when the
        train block asks for it) or :class:`StackedModels` (vmap)."""
        T = self.trainers
        models = [t.raw_model for t in T]
        if self.strategy in (None, "grouped"):
            try:
                stack = GroupedModels(models, channels_last=bool(T[0].cfg.channels_last) and dev.type == "cuda")
                self.strategy = "grouped"
                return stack
            except GroupingRefused as e:
                if self.strategy == "grouped":
                    raise BkError("E0625", f"the model of `{T[0].plan.name}` has no grouped form: {e}",
                                  span=T[0].cfg.spans.get("model", T[0].cfg.span),
                                  help="use --sweep-mode vmap or sequential (auto and batched pick them)") from None
                log.info("no grouped form (%s): vmap", e)
        self.strategy = "vmap"
        # NCHW stacks only: the channels-last stack's convolution backward under vmap fails on CUDA ("NYI:
        # querying is_contiguous inside of vmap for memory_format other than torch.contiguous_format", H200,
        # torch 2.11, bench/results/2026-12-03-sweep_batched-run1.json), so `channels_last` applies to
        # single runs only.
        return StackedModels(models, channels_last=False)

    def _probe(self) -> None:
        """One vmapped training-mode forward on each run's first samples, before anything is trained or
        written: a model that cannot run under vmap (random numbers in the forward, an op without a
        batching rule) is refused here with E0621. The buffers it touches (BatchNorm statistics) are
        put back, so the probe leaves no trace."""
        saved = {n: b.clone() for n, b in self.stack.B.items()}
        T = self.trainers
        try:
            per_run = [T[r].norm.apply(T[r]._to_device({n: v[:2] for n, v in T[r].splits["train"].items()}))
                       for r in range(self.R)]
            if isinstance(self.stack, GroupedModels):   # output sizes per run, and the grouped form checked
                self.stack.calibrate([{k: x[k] for k in T[0].plan.inputs} for x in per_run])
            x = {k: self.stack.stack_inputs([per_run[r][k] for r in range(self.R)]) for k in T[0].plan.inputs}
            with torch.no_grad(), T[0]._autocast():
                self.stack(x)
        except BkError:
            raise
        except Exception as e:
            raise BkError("E0621", f"the model of `{T[0].plan.name}` cannot run as one batched step: "
                                   f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}",
                          span=T[0].cfg.spans.get("model", T[0].cfg.span),
                          help="train the sweep with --sweep-mode sequential (or auto, which falls back to it)") from None
        finally:
            for n, b in self.stack.B.items():
                b.copy_(saved[n])

    # -- the run ---------------------------------------------------------------------------------------
    def run(self) -> list[dict]:
        handlers = []
        try:
            for r, t in enumerate(self.trainers):
                t.dist = D.setup(resolve_device(t.cfg.device, t.cfg.spans.get("device", t.cfg.span)))
                h = t._setup_logging()
                if h is not None:
                    h.addFilter(_RunFilter(r))
                    handlers.append(h)
            return self._run()
        finally:
            for h in handlers:
                logging.getLogger("bkdsl").removeHandler(h)
                h.close()

    def _run(self) -> list[dict]:
        T = self.trainers
        for r in range(self.R):
            with _as_run(r):
                self._setup_run(r)
        dev = T[0].device
        if T[0].cfg.precision not in ("fp32", "bf16"):
            raise BkError("E0609", f"unknown precision `{T[0].cfg.precision}`", help="use fp32 or bf16")
        if dev.type == "cpu":
            torch.use_deterministic_algorithms(True, warn_only=True)
        sigs = [signature(t.plan, t.raw_model) for t in T]
        if (any(s != sigs[0] for s in sigs) and self.strategy in (None, "grouped")
                and grouping_refusal(T[0].raw_model) is None):
            # runs that differ only in linear-layer sizes (d_z): one grouped module, padded under a mask
            sigs = [signature(t.plan, t.raw_model, pad_linear=True) for t in T]
            if all(s == sigs[0] for s in sigs):
                self.strategy = "grouped"
        if any(s != sigs[0] for s in sigs):
            bad = next(r for r, s in enumerate(sigs) if s != sigs[0])
            what = [f.name for f in dataclasses.fields(Signature) if getattr(sigs[bad], f.name) != getattr(sigs[0], f.name)]
            raise BkError("E0621", f"runs `{T[0].rundir.name}` and `{T[bad].rundir.name}` differ in {', '.join(what)}: "
                                   "one batched step needs one architecture and one step plan",
                          span=T[bad].cfg.spans.get("model", T[bad].cfg.span),
                          help="group runs by shape (bkdsl train --sweep does) or train them sequentially")
        for r, t in enumerate(T):
            why = unbatchable_reason(t.plan, t.raw_model)
            if why is not None:
                raise BkError("E0621", f"run `{t.rundir.name}` cannot be trained in a batched group: {why}",
                              span=t.cfg.spans.get("model", t.cfg.span), help="train it sequentially")
        self.stack = self._make_stack(dev)
        self._probe()
        for r, t in enumerate(T):
            with _as_run(r):
                t.opt = build_optimizer(t.cfg.optimizer, t.cfg.optimizer_params, t.raw_model,
                                        span=t.cfg.spans.get("optimizer", t.cfg.span))
                t.base_lrs = [g["lr"] for g in t.opt.param_groups]
                t.global_step, t.best = 0, None
                t.model = t.raw_model
        cfg0 = T[0].cfg
        nb = batches_per_epoch(T[0].n_train, cfg0.batch)
        total_steps = cfg0.steps if cfg0.steps is not None else cfg0.epochs * nb
        epochs = math.ceil(total_steps / nb)
        accs = [{"sum": 0.0, "n": 0.0, "samples": 0} for _ in T]
        positions = []
        for r, t in enumerate(T):
            t.sched = LRSchedule.bind(t.cfg.schedule, t.opt, steps_per_epoch=nb, total_steps=total_steps)
            with _as_run(r):
                if t.resume:
                    st = t._load()
                    positions.append((st["epoch"], st["batch"], t.global_step))
                    accs[r] = dict(st["train_acc"])
                    t._truncate_records(t.global_step)
                else:
                    positions.append((0, 0, 0))
                    (t.rundir / "metrics.jsonl").write_text("")
        if len(set(positions)) != 1:
            raise BkError("E0621", "the runs of a batched group were checkpointed at different steps: "
                                   + ", ".join(f"{t.rundir.name} at step {p[2]}" for t, p in zip(T, positions)),
                          help="resume them with --sweep-mode sequential (each continues from its own checkpoint)")
        start_epoch, start_batch, _ = positions[0]
        log.info("batched group of %d runs (%s): %d samples (train %d), %d steps/epoch, %d epochs, device %s",
                 self.R, self.strategy, len(T[0].plan.data.dataset), T[0].n_train, nb, epochs, dev)
        active = [r for r in range(self.R) if T[r].global_step < total_steps]
        inputs = T[0].plan.inputs
        progress = _Progress(not self.quiet, total_steps, T[0].global_step)
        self.run_seen = [0] * self.R
        seen, t_steps, first_step, warmup, warm = 0, 0.0, None, 0.0, set()
        try:
            for epoch in range(start_epoch, epochs):
                if not active:
                    break
                orders = [epoch_order(t.n_train, t.cfg.seed, epoch) for t in T]
                first = start_batch if epoch == start_epoch else 0
                if first == 0:
                    for r in active:
                        accs[r] = {"sum": 0.0, "n": 0.0, "samples": 0}
                for b in range(first, nb):
                    if T[active[0]].global_step >= total_steps:
                        break
                    ts = time.perf_counter()
                    batches = []
                    for r, t in enumerate(T):  # every run gets its batch (a stopped one is masked below)
                        idx = orders[r][b * t.cfg.batch:(b + 1) * t.cfg.batch]
                        if t.cfg.resident and dev.type == "cuda":
                            idx = idx.to(dev, non_blocking=True)
                        raw = {k: v[idx] for k, v in t.splits["train"].items()}
                        raw = apply_all(t.plan.data.augment, raw, t.plan.data.dataset.info, t.plan.data.seed * 7,
                                        epoch, b)
                        batches.append(t.norm.apply(t._to_device(raw)))
                    x = {k: self.stack.stack_inputs([bt[k] for bt in batches]) for k in inputs}
                    with T[0]._autocast():
                        out = self.stack(x)
                        if isinstance(out, torch.Tensor):
                            raise BkError("E0609", "the model returns one unnamed tensor; the runner needs named "
                                                   "outputs", span=cfg0.span)
                        losses, terms = {}, {}
                        for r in active:
                            o = {k: self.stack.run_output(out, k, r) for k in out}
                            o = {k: (v.float() if v.is_floating_point() else v) for k, v in o.items()}
                            losses[r], terms[r] = T[r].plan.loss(o, batches[r])
                    vals = torch.stack([losses[r].detach().float().reshape(()) for r in active]).cpu().tolist()
                    for r, v in zip(list(active), vals):
                        if not math.isfinite(v):
                            self._stop(r, epoch, b, v, terms[r], accs[r])
                            active.remove(r)
                    if not active:
                        break
                    total = sum(losses[r].reshape(()) for r in active)
                    total.backward()
                    self.stack.grads_to_models(active)
                    nloc = len(batches[active[0]][inputs[0]])
                    timed = nloc in warm
                    for r, v in zip(list(losses), vals):
                        if r not in active:
                            continue
                        t = T[r]
                        if timed:
                            self.run_seen[r] += nloc
                        if t.cfg.grad_clip:
                            torch.nn.utils.clip_grad_norm_(t.raw_model.parameters(), t.cfg.grad_clip)
                        t.opt.step()
                        t.sched.after_step()
                        t.opt.zero_grad(set_to_none=True)
                        t.global_step += 1
                        accs[r]["sum"] += v * nloc
                        accs[r]["n"] += nloc
                        accs[r]["samples"] += nloc
                        if t.cfg.checkpoint_every and t.global_step % t.cfg.checkpoint_every == 0 and b + 1 < nb:
                            with _as_run(r):
                                t._save("last", epoch, b + 1, accs[r])
                    dt_step = time.perf_counter() - ts
                    if not timed:
                        warm.add(nloc)
                        warmup += dt_step
                        first_step = dt_step if first_step is None else first_step
                    else:
                        seen += nloc * len(active)
                        t_steps += dt_step
                    progress.update(epoch, epochs, sum(vals) / len(vals), seen / max(t_steps, 1e-9))
                for r in list(active):
                    t = T[r]
                    with _as_run(r):
                        t._end_of_epoch(epoch, accs[r])
                        last = epoch + 1 >= epochs or t.global_step >= total_steps
                        if t.cfg.time_limit is not None and t.elapsed() >= t.cfg.time_limit and not last:
                            log.info("time limit %.0f s reached after epoch %d", t.cfg.time_limit, epoch + 1)
                            t.stopped_by_time = epoch + 1
                            last = True
                        if t._checkpoint_due(last):
                            t._save("last", epoch + 1, 0, accs[r])
                    if last:
                        active.remove(r)
                        self._done(r, t_steps, first_step, warmup)
        finally:
            progress.close()
        for r in range(self.R):
            if r not in self.finals:
                self._done(r, t_steps, first_step, warmup)
        self.aggregate_samples_per_s = seen / max(t_steps, 1e-9)
        return [self.finals[r] for r in range(self.R)]

    def _stop(self, r: int, epoch: int, b: int, value: float, terms: dict, acc: dict) -> None:
        t = self.trainers[r]
        shown = ", ".join(f"{k} = {float(v.detach()):.4g}" for k, v in terms.items())
        err = BkError("E0607", f"the loss is {value:g} at epoch {epoch + 1}, batch {b + 1} (global step "
                               f"{t.global_step + 1}); training stopped" + (f" — terms: {shown}" if shown else ""),
                      span=t.cfg.spans.get("loss", t.cfg.span),
                      help=f"the last good checkpoint is kept in {t.rundir / 'checkpoints'}; lower the learning "
                           "rate, clip gradients (`grad_clip`), or check the data and the normalisation")
        self.errors[r] = err
        with _as_run(r):
            log.warning("run %s stopped (masked out of the batched step): %s", t.rundir.name, err.diagnostic.message)
            t.samples_per_s = 0.0
            t.first_step_s, t.warmup_s = None, 0.0
            self.finals[r] = t._finish(err)

    def _done(self, r: int, t_steps: float, first_step, warmup: float) -> None:
        """Finish run r: its share of the group's throughput (its samples over the group's timed steps;
        the shares add up to the aggregate), its test evaluation, final.json, plots."""
        if r in self.finals:
            return
        t = self.trainers[r]
        t.samples_per_s = self.run_seen[r] / max(t_steps, 1e-9)
        t.first_step_s, t.warmup_s = first_step, warmup
        with _as_run(r):
            self.finals[r] = t._finish(None)


def _owner(model: torch.nn.Module, name: str) -> tuple[torch.nn.Module, str]:
    mod_name, _, leaf = name.rpartition(".")
    return (model.get_submodule(mod_name) if mod_name else model), leaf


def _param(model: torch.nn.Module, name: str) -> torch.nn.Parameter:
    mod, leaf = _owner(model, name)
    return mod._parameters[leaf]


def run_group(plans: list[TrainPlan], rundirs: list[str | Path], *, resume=False, quiet: bool = False,
              strategy: str | None = None) -> tuple[list[dict], dict[int, BkError], float]:
    """Train ``plans`` as one batched group; (finals, errors by run index, aggregate samples/s)."""
    g = BatchedGroup(plans, rundirs, resume=resume, quiet=quiet, strategy=strategy)
    finals = g.run()
    return finals, g.errors, g.aggregate_samples_per_s


__all__ = ["BatchedGroup", "STRATEGIES", "Signature", "StackedModels", "auto_strategy", "grouping_refusal",
           "linear_sizes", "padding_overhead", "run_group",
           "signature", "unbatchable_reason", "probe_model"]
