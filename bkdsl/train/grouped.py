"""The grouped form of R runs of one architecture: one module whose every layer holds all R runs.

Layout. A per-run tensor ``x_r`` of shape ``[B, d₁, d₂, …]`` (a batch of run r's own samples) is held
with the runs folded into its first non-batch axis, run-major::

    G[b, r·d₁ + i, …] = x_r[b, i, …]          G = cat(x_0, …, x_{R−1}, dim = 1)  : [B, R·d₁, d₂, …]

so an image batch ``[B, C, H, W]`` becomes ``[B, R·C, H, W]`` and a feature batch ``[B, F]`` becomes
``[B, R·F]``. Every layer of the spec's model is replaced by the layer that maps this layout to itself:

* ``ConvNd(C → O, groups g)`` → ``ConvNd(R·C → R·O, groups R·g)`` with ``W = cat(W_0, …, W_{R−1})``
  (``[R·O, C/g, k…]``): group ``r·g + j`` reads only run r's channels with run r's filters, so the R
  convolutions are one cuDNN call — one kernel per layer instead of R;
* ``BatchNormNd(C)`` → ``BatchNormNd(R·C)``: batch norm is per channel, ``μ_c = mean_{b,h,w} x[b, c, h, w]``,
  so channel ``r·C + i`` sees exactly run r's statistics (running statistics stacked the same way);
  ``GroupNorm(G, C)`` → ``GroupNorm(R·G, R·C)`` likewise;
* ``Linear(I → O)`` → :class:`GroupedLinear`: ``y_r = x_r W_rᵀ + b_r`` as one batched matmul
  (``baddbmm`` over the run axis) on ``[R, B, I]``;
* pointwise functions (ReLU, tanh, …, ``+``, ``·`` between two tensors of the same layout or with a
  number), spatial ones (nearest/bilinear upsampling, the mean over H, W, flatten from axis 1) act on the
  grouped tensor unchanged, and ``reshape([B, F] → [B, C, H, W])`` becomes ``[B, R·F] → [B, R·C, H, W]``
  (valid because the runs are the slowest-varying part of axis 1).

Anything else — an op that mixes the feature axis (softmax, LayerNorm, a sum over channels), a tensor
constant, a random op (dropout: a run trained alone draws other numbers), a module whose forward is not
a bkdsl fx graph — is refused (:class:`GroupingRefused` names it), and the sweep falls back to vmap or to
one run at a time. The transformation is exact: every output element of run r is computed from run r's
inputs and weights only; the grouped and per-run results differ by floating-point summation order.

Parameters. The grouped module's parameter ``G`` of a per-run parameter of shape ``[n, …]`` is
``cat(θ_0, …, θ_{R−1})`` of shape ``[R·n, …]``; run r's slice is ``G.unflatten(0, (R, n))[r]``, a view.
:class:`GroupedModels` gives each run's own module ``nn.Parameter`` aliases of those views (as
:class:`bkdsl.train.batched.StackedModels` does for vmap), so per-run optimizers, ``state_dict``,
evaluation and checkpoint loading read and write the grouped storage. Scalar buffers (BatchNorm's
``num_batches_tracked``, the same for all runs stepped together) are one tensor shared by the runs.
"""

from __future__ import annotations

import copy
import operator

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from bkdsl.nn import ops


class GroupingRefused(Exception):
    """The model holds a layer or an op the grouped form cannot express exactly (the message says which)."""


# -- the grouped layers ----------------------------------------------------------------------------
class GroupedLinear(nn.Module):
    """R linear maps ``y_r = x_r W_rᵀ + b_r`` on the grouped layout ``[B, R·I] → [B, R·O]``.

    ``weight``: ``[R·O, I]`` (run r's rows ``r·O … r·O + O − 1``), ``bias``: ``[R·O]``; computed as
    ``baddbmm(b[R, 1, O], x[R, B, I], Wᵀ[R, I, O])``.

    Runs whose layer sizes differ (``I_r``, ``O_r``: the thesis' d_z sizes the encoder's last layer and the
    decoders' first) are padded to ``I = max I_r``, ``O = max O_r`` under a fixed 0/1 ``mask``: the layer
    computes with ``W ⊙ M`` and ``b ⊙ m``, so run r's padded outputs are exactly 0, its padded inputs are
    multiplied by 0 (whatever they hold), and the padded weights get a zero gradient, ∂L/∂W = (∂L/∂(W ⊙ M)) ⊙ M
    — they start at 0 and no elementwise optimizer (Adam, SGD, weight decay) moves them. Run r's function,
    initialisation and gradients are those of its own ``Linear(I_r, O_r)``."""

    def __init__(self, runs: int, in_features: int, out_features: int, bias: bool = True,
                 sizes: list[tuple[int, int]] | None = None):
        super().__init__()
        self.runs, self.in_features, self.out_features = runs, in_features, out_features
        self.weight = nn.Parameter(torch.zeros(runs * out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(runs * out_features)) if bias else None
        self.sizes = sizes if sizes and any(sz != (in_features, out_features) for sz in sizes) else None
        if self.sizes is not None:
            mask = torch.zeros(runs, out_features, in_features)
            for r, (i, o) in enumerate(self.sizes):
                mask[r, :o, :i] = 1
            self.register_buffer("mask", mask.reshape(runs * out_features, in_features), persistent=False)
            self.register_buffer("row_mask", mask.amax(2).reshape(runs * out_features), persistent=False)

    @classmethod
    def from_runs(cls, layers: list[nn.Linear]) -> "GroupedLinear":
        sizes = [(lin.in_features, lin.out_features) for lin in layers]
        I, O = max(i for i, _ in sizes), max(o for _, o in sizes)
        m = cls(len(layers), I, O, layers[0].bias is not None, sizes)
        m.to(device=layers[0].weight.device, dtype=layers[0].weight.dtype)
        with torch.no_grad():
            w = m.weight.view(len(layers), O, I)
            for r, lin in enumerate(layers):
                w[r, :lin.out_features, :lin.in_features].copy_(lin.weight)
                if m.bias is not None:
                    m.bias.view(len(layers), O)[r, :lin.out_features].copy_(lin.bias)
        m.weight.requires_grad_(layers[0].weight.requires_grad)
        return m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        R, I, O = self.runs, self.in_features, self.out_features
        if x.ndim != 2 or x.shape[1] != R * I:
            raise GroupingRefused(f"a linear layer on a {x.ndim}-D input of shape {tuple(x.shape)} (the grouped "
                                  f"form takes [B, {R}·{I}])")
        weight, bias = self.weight, self.bias
        if self.sizes is not None:
            weight = weight * self.mask
            bias = None if bias is None else bias * self.row_mask
        B = x.shape[0]
        xr = x.view(B, R, I).transpose(0, 1)                     # [R, B, I]
        w = weight.view(R, O, I).transpose(1, 2)                 # [R, I, O]
        y = torch.bmm(xr, w) if bias is None else torch.baddbmm(bias.view(R, 1, O), xr, w)
        return y.transpose(0, 1).reshape(B, R * O)

    def run_slices(self, name: str, r: int) -> tuple[slice, ...] | None:
        """Run r's part of ``weight``/``bias`` inside its ``[O, I]``/``[O]`` block (None: the whole block)."""
        if self.sizes is None:
            return None
        i, o = self.sizes[r]
        return (slice(0, o), slice(0, i)) if name == "weight" else (slice(0, o),)

    def extra_repr(self) -> str:
        return f"runs={self.runs}, in_features={self.in_features}, out_features={self.out_features}, " \
               f"bias={self.bias is not None}" + (f", sizes={self.sizes}" if self.sizes else "")


def _grouped_conv(layers: list[nn.modules.conv._ConvNd]) -> nn.Module:
    c0, R = layers[0], len(layers)
    if c0.transposed:
        raise GroupingRefused(f"{type(c0).__name__} (a transposed convolution)")
    cls = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[len(c0.kernel_size)]
    m = cls(R * c0.in_channels, R * c0.out_channels, c0.kernel_size, c0.stride, c0.padding, c0.dilation,
            R * c0.groups, c0.bias is not None, c0.padding_mode,
            device=c0.weight.device, dtype=c0.weight.dtype)
    with torch.no_grad():
        m.weight.copy_(torch.cat([c.weight for c in layers]))
        if m.bias is not None:
            m.bias.copy_(torch.cat([c.bias for c in layers]))
    return m


def _grouped_batchnorm(layers: list[nn.modules.batchnorm._BatchNorm]) -> nn.Module:
    b0, R = layers[0], len(layers)
    ref = b0.weight if b0.affine else b0.running_mean
    m = type(b0)(R * b0.num_features, b0.eps, b0.momentum, b0.affine, b0.track_running_stats,
                 device=ref.device if ref is not None else None, dtype=ref.dtype if ref is not None else None)
    with torch.no_grad():
        if b0.affine:
            m.weight.copy_(torch.cat([b.weight for b in layers]))
            m.bias.copy_(torch.cat([b.bias for b in layers]))
        if b0.track_running_stats:
            m.running_mean.copy_(torch.cat([b.running_mean for b in layers]))
            m.running_var.copy_(torch.cat([b.running_var for b in layers]))
            m.num_batches_tracked.copy_(b0.num_batches_tracked)
    return m


def _grouped_groupnorm(layers: list[nn.GroupNorm]) -> nn.Module:
    g0, R = layers[0], len(layers)
    m = nn.GroupNorm(R * g0.num_groups, R * g0.num_channels, g0.eps, g0.affine)
    if g0.affine:
        m.to(device=g0.weight.device, dtype=g0.weight.dtype)
        with torch.no_grad():
            m.weight.copy_(torch.cat([g.weight for g in layers]))
            m.bias.copy_(torch.cat([g.bias for g in layers]))
    return m


# modules that act on each element, or on the spatial axes only, keep their form
_POINTWISE_MODULES = (nn.ReLU, nn.GELU, nn.SiLU, nn.ELU, nn.Tanh, nn.Sigmoid, nn.Softplus, nn.LeakyReLU, nn.Identity,
                      nn.Upsample, nn.Hardtanh, nn.Mish)


def _shapes(m: nn.Module) -> tuple:
    return tuple((n, tuple(t.shape)) for n, t in list(m.named_parameters()) + list(m.named_buffers()))


def _group_leaf(layers: list[nn.Module], where: str) -> nn.Module:
    m = layers[0]
    if any(type(x) is not type(m) for x in layers):
        raise GroupingRefused(f"module `{where}` is a {type(m).__name__} in one run and a "
                              f"{next(type(x).__name__ for x in layers if type(x) is not type(m))} in another")
    if isinstance(m, nn.Linear):
        if len({x.bias is None for x in layers}) > 1 or len({x.weight.dtype for x in layers}) > 1:
            raise GroupingRefused(f"linear layer `{where}` has a bias (or a dtype) in one run and not in another")
        return GroupedLinear.from_runs(layers)
    if any(_shapes(x) != _shapes(m) for x in layers):
        raise GroupingRefused(f"module `{where}` ({type(m).__name__}) has different shapes in different runs "
                              "(only linear layers may differ: they are padded under a mask)")
    if isinstance(m, nn.modules.conv._ConvNd):
        return _grouped_conv(layers)
    if isinstance(m, nn.modules.batchnorm._BatchNorm) and not isinstance(m, nn.SyncBatchNorm):
        return _grouped_batchnorm(layers)
    if isinstance(m, nn.GroupNorm):
        return _grouped_groupnorm(layers)
    if isinstance(m, _POINTWISE_MODULES):
        return copy.deepcopy(m)
    if isinstance(m, nn.Flatten) and m.start_dim >= 1 and m.end_dim == -1:
        return copy.deepcopy(m)
    raise GroupingRefused(f"module `{where}` ({type(m).__name__}) has no grouped form")


# -- the grouped functions -------------------------------------------------------------------------
def grouped_reshape(x: torch.Tensor, shape: tuple[int, ...], runs: int) -> torch.Tensor:
    """``reshape([B, F] → [B, *shape])`` per run, on the grouped layout: ``[B, R·F] → [B, R·shape₀, …]``."""
    return x.reshape(x.shape[0], runs * shape[0], *shape[1:])


def grouped_global_mean(x: torch.Tensor) -> torch.Tensor:
    """The mean over the two spatial axes (``[B, R·C, H, W] → [B, R·C]``); refused on a 2-D input, where
    the per-run op would average the features (the run axis)."""
    if x.ndim < 4:
        raise GroupingRefused(f"global_mean of a {x.ndim}-D tensor (it averages the feature axis)")
    return ops.global_mean(x)


def grouped_flatten(x: torch.Tensor, start: int = 1) -> torch.Tensor:
    if (start if start >= 0 else start + x.ndim) < 1:
        raise GroupingRefused("flatten from the batch axis")
    return ops.flatten(x, start)


_POINTWISE_FUNCS = {ops.relu, ops.gelu, ops.silu, ops.elu, ops.tanh, ops.sigmoid, ops.softplus, ops.magnitude,
                    F.relu, F.gelu, F.silu, F.elu, torch.relu, torch.tanh, torch.sigmoid, torch.abs,
                    operator.add, operator.sub, operator.mul, operator.truediv, operator.neg,
                    torch.add, torch.sub, torch.mul}
_SPATIAL_FUNCS = {ops.upsample, F.interpolate}


def _rewrite_graph(gm: fx.GraphModule, runs: int, where: str) -> None:
    """Rewrite one fx graph's function calls to their grouped forms, in place (modules are swapped by
    :func:`group_modules`)."""
    for node in gm.graph.nodes:
        label = f"{where or 'the model'}: `{node.name}`"
        if node.op in ("placeholder", "output", "call_module"):
            continue
        if node.op != "call_function":
            raise GroupingRefused(f"{label} is a {node.op} node")
        consts = [a for a in list(node.args) + list(node.kwargs.values()) if isinstance(a, torch.Tensor)]
        if consts:
            raise GroupingRefused(f"{label} takes a tensor constant")
        t = node.target
        if t in _POINTWISE_FUNCS or t in _SPATIAL_FUNCS:
            continue
        if t is ops.global_mean:
            node.target = grouped_global_mean
        elif t is ops.flatten:
            node.target = grouped_flatten
        elif t is ops.reshape:
            node.target = grouped_reshape
            node.kwargs = {**node.kwargs, "runs": runs}
            if "shape" not in node.kwargs and len(node.args) < 2:
                raise GroupingRefused(f"{label}: reshape without a shape")
        else:
            raise GroupingRefused(f"{label} calls `{getattr(t, '__name__', t)}`, which has no grouped form")
    gm.recompile()


def group_modules(models: list[nn.Module]) -> nn.Module:
    """One module computing all ``models`` (one architecture) on the grouped layout; raises
    :class:`GroupingRefused` when some layer or op has no exact grouped form."""
    if not models:
        raise ValueError("no models to group")
    R = len(models)
    top = models[0]
    if not isinstance(top, fx.GraphModule):
        raise GroupingRefused(f"the model is a {type(top).__name__}, not a compiled spec (an fx graph)")
    codes = [graph_codes(m) for m in models]
    if any(c != codes[0] for c in codes):
        raise GroupingRefused("the runs' models differ in their graphs (not only in layer sizes)")
    g = copy.deepcopy(top)
    for name, m in list(g.named_modules()):
        if isinstance(m, fx.GraphModule):
            _rewrite_graph(m, R, name)
        elif not list(m.children()):
            grouped = _group_leaf([r.get_submodule(name) for r in models], name)
            parent, _, leaf = name.rpartition(".")
            setattr(g.get_submodule(parent) if parent else g, leaf, grouped)
        elif not isinstance(m, (nn.Sequential, nn.ModuleList, nn.ModuleDict)):
            raise GroupingRefused(f"module `{name}` ({type(m).__name__}) has a forward that is not an fx graph")
    return g


def graph_codes(model: nn.Module) -> tuple:
    """The generated code of every fx graph in ``model`` (what its forward does, apart from its modules'
    sizes): equal for runs that may share one grouped or vmapped module."""
    return tuple((n, m.code) for n, m in model.named_modules() if isinstance(m, fx.GraphModule))


# -- the runs' view of the grouped module ----------------------------------------------------------
def _owner(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    mod_name, _, leaf = name.rpartition(".")
    return (model.get_submodule(mod_name) if mod_name else model), leaf


class GroupedModels:
    """R modules of one architecture as one grouped module (:func:`group_modules`), with the interface of
    :class:`bkdsl.train.batched.StackedModels`: inputs stacked by :meth:`stack_inputs`, outputs returned
    as ``[R, B, …]`` (run r's in row r, a view), gradients handed to the runs by :meth:`grads_to_models`.

    ``P[name]``/``B[name]`` are the grouped parameters/buffers (``[R·n, …]``) under the runs' names; run
    r's module holds ``nn.Parameter`` aliases of ``P[name].unflatten(0, (R, n))[r]``. ``channels_last``:
    the module's 4-D weights and image inputs in NHWC (cuDNN's tensor-core layout); values do not depend
    on it."""

    def __init__(self, models: list[nn.Module], channels_last: bool = False):
        self.models = models
        self.R = len(models)
        self.channels_last = channels_last
        self.module = group_modules(models)
        if channels_last:
            self.module = self.module.to(memory_format=torch.channels_last)
        self.pnames = [n for n, _ in models[0].named_parameters()]
        self.bnames = [n for n, _ in models[0].named_buffers()]
        gp, gb = dict(self.module.named_parameters()), dict(self.module.named_buffers())
        missing = [n for n in self.pnames + self.bnames if n not in gp and n not in gb]
        if missing:
            raise GroupingRefused(f"`{missing[0]}` has no counterpart in the grouped module")
        self.P = {n: gp[n] for n in self.pnames}
        self.B = {n: gb[n] for n in self.bnames}
        # ragged linear layers: run r's part of a padded [O, I] block
        self._slices: dict[str, list] = {}
        for n in self.pnames:
            owner, leaf = _owner(self.module, n)
            if isinstance(owner, GroupedLinear) and owner.sizes is not None:
                self._slices[n] = [owner.run_slices(leaf, r) for r in range(self.R)]
        for n in self.pnames:
            shapes = [tuple(dict(m.named_parameters())[n].shape) for m in models]
            if any(len(sh) == 0 for sh in shapes) or any(tuple(self.run_view(self.P[n], r, n).shape) != sh
                                                          for r, sh in enumerate(shapes)):
                raise GroupingRefused(f"parameter `{n}` of shape {shapes[0]} has no run-major grouped form")
        for r, m in enumerate(models):
            for n in self.pnames:
                mod, leaf = _owner(m, n)
                mod._parameters[leaf] = nn.Parameter(self.run_view(self.P[n].detach(), r, n),
                                                     requires_grad=mod._parameters[leaf].requires_grad)
            for n in self.bnames:
                mod, leaf = _owner(m, n)
                b = self.B[n]
                mod._buffers[leaf] = b if b.ndim == 0 else self.run_view(b, r)
        self.out_sizes: dict[str, list[int]] = {}    # ragged outputs: run r's size of axis 1 (calibrate)

    def run_view(self, t: torch.Tensor, r: int, name: str | None = None) -> torch.Tensor:
        """Run r's slice ``t.unflatten(0, (R, n))[r]`` of a grouped tensor (a view), cut to run r's own
        sizes for a padded linear layer's ``name``."""
        v = t.unflatten(0, (self.R, t.shape[0] // self.R))[r]
        sl = self._slices.get(name) if name is not None else None
        return v if sl is None else v[sl[r]]

    @property
    def ragged(self) -> bool:
        return bool(self._slices)

    def calibrate(self, per_run: list[dict[str, torch.Tensor]], check: bool = True) -> None:
        """Record each run's output sizes (an output of a padded layer, e.g. the latent z, is cut to run
        r's size) and, with ``check``, verify the grouped forward against each run's own module on these
        inputs in eval mode, TF32 off (‖grouped − alone‖ ≤ 1e-3·‖alone‖ per run and output; GroupingRefused
        otherwise, a NaN included). No state changes."""
        was = self.module.training
        tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False   # fp32 to ~1e-6
        self.module.eval()
        for m in self.models:
            m.eval()
        try:
            with torch.no_grad():
                alone = [m(**x) for m, x in zip(self.models, per_run)]
                alone = [a if isinstance(a, dict) else {"": a} for a in alone]
                names = list(alone[0])
                self.out_sizes = {k: [a[k].shape[1] if a[k].ndim > 1 else 1 for a in alone] for k in names}
                self.out_sizes = {k: v for k, v in self.out_sizes.items() if len(set(v)) > 1}
                if not check:
                    return
                inputs = {k: self.stack_inputs([x[k] for x in per_run]) for k in per_run[0]}
                out = self(inputs)
                out = out if isinstance(out, dict) else {"": out}
                for k in names:
                    for r, a in enumerate(alone):
                        got, ref = self.run_output(out, k, r).float(), a[k].float()
                        if got.shape != ref.shape:
                            raise GroupingRefused(f"output `{k}` of run {r} has shape {tuple(got.shape)} in the "
                                                  f"grouped form and {tuple(ref.shape)} alone")
                        err = float((got - ref).norm() / ref.norm().clamp_min(1e-30))
                        if not err <= 1e-3:      # NaN fails too
                            raise GroupingRefused(f"output `{k}` of run {r} differs from the run alone "
                                                  f"(relative error {err:.2g})")
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
            self.module.train(was)
            for m in self.models:
                m.train(was)

    def run_output(self, out: dict[str, torch.Tensor], name: str, r: int) -> torch.Tensor:
        """Run r's output ``name`` from :meth:`__call__`'s ``[R, B, …]`` (cut to run r's size when ragged)."""
        v = out[name][r]
        sizes = self.out_sizes.get(name)
        return v if sizes is None else v[:, :sizes[r]]

    def ungroup(self, t: torch.Tensor) -> torch.Tensor:
        """``[B, R·d₁, …]`` → ``[R, B, d₁, …]`` (a view)."""
        if t.ndim < 2:
            raise GroupingRefused(f"an output of shape {tuple(t.shape)} (no feature axis to hold the runs)")
        return t.unflatten(1, (self.R, t.shape[1] // self.R)).movedim(1, 0)

    def __call__(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | torch.Tensor:
        """``inputs[k]``: grouped (:meth:`stack_inputs`) → outputs ``[R, B, …]``."""
        out = self.module(**inputs)
        if isinstance(out, torch.Tensor):
            return self.ungroup(out)
        return {k: self.ungroup(v) for k, v in out.items()}

    def stack_inputs(self, per_run: list[torch.Tensor]) -> torch.Tensor:
        """``cat(x_0, …, x_{R−1}, dim = 1)``: ``[B, d₁, …]`` each → ``[B, R·d₁, …]`` (NHWC for 4-D inputs when
        ``channels_last``)."""
        if per_run[0].ndim < 2:
            raise GroupingRefused(f"an input of shape {tuple(per_run[0].shape)} (no feature axis to hold the runs)")
        x = torch.cat(per_run, dim=1)
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def grads_to_models(self, runs: list[int] | None = None) -> None:
        """``θ_r.grad = run_view(P.grad, r)`` for the given runs (all by default); the grouped gradients are
        released."""
        runs = range(self.R) if runs is None else runs
        for n in self.pnames:
            g = self.P[n].grad
            for r in runs:
                mod, leaf = _owner(self.models[r], n)
                mod._parameters[leaf].grad = None if g is None else self.run_view(g, r, n)
            self.P[n].grad = None

    def parameters(self):
        return self.module.parameters()


__all__ = ["GroupedLinear", "GroupedModels", "GroupingRefused", "graph_codes", "group_modules", "grouped_reshape",
           "grouped_global_mean", "grouped_flatten"]
