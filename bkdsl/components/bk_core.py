"""BK-Core components, the blocks of the ``phase8`` spec: the Green-function propagator,
scattering-aware attention and the routerless hyperbolic mixture of experts (source 000 §1–§2).

Their references live in bkdsl/nn (resolvent.py, scattering_attention.py, hyperbolic_moe.py) and
dispatch to the fused Triton kernels on CUDA (bkdsl/kernels). Modules that carry statistics worth
logging during training expose ``training_report() -> dict[str, float]``; the runner records them.
"""

from __future__ import annotations

import operator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bkdsl.registry import Component, InferCtx, Proof, component
from bkdsl.diagnostics import BkError
from bkdsl.lazy import lazy_module
from bkdsl.semantics.types import ValueType
from bkdsl.semantics.values import show_value

# The modules (torch) load when a model is built or lowered; `check` reads the declarations below.
L = lazy_module("bkdsl.nn.bk_layers")
R = lazy_module("bkdsl.nn.resolvent")


def _hidden(ins: list[ValueType], ctx: InferCtx, name: str) -> tuple[Any, Any, int]:
    t = ins[0]
    if t.rank != 3 or t.dtype != "float":
        raise BkError("E0401", f"`{name}` expects a float hidden state [B, N, d], got {t.show()}", span=ctx.span)
    d = ctx.uni.find(t.shape[2])
    if not isinstance(d, int):
        raise BkError("E0404", f"`{name}` needs the hidden size known at compile time, got {t.show()}", span=ctx.span)
    return t.shape[0], t.shape[1], d


# ------------------------------------------------------------------------------ the propagator
class _BkP(BaseModel):
    model_config = ConfigDict(extra="forbid")
    z: complex = Field(0.1j, description="spectral parameter z with Im z > 0 (e.g. 0.1i)")
    hopping: float = Field(1.0, description="bare hopping t₀ of the tridiagonal Hamiltonian")
    causal: bool = Field(False, description="true: the retarded Green function of the leading blocks, "
                                           "G_ii reads h_{≤i} (language models); false: the two-sided "
                                           "resolvent diagonal, G_ii reads the whole sequence (encoders)")

    @field_validator("z", mode="before")
    @classmethod
    def _z(cls, v):
        if isinstance(v, bool) or not isinstance(v, (int, float, complex)):
            raise ValueError("z must be a complex number such as 0.1i")
        return complex(v)


@component("bk_resolvent", kind="propagator", inputs=("h",))
class BkResolvent(Component):
    """The BK-Core propagator: G_ii = diag((H − zI)⁻¹) of a tridiagonal H built from the hidden state,
    computed in O(N) by the continued-fraction (ratio) recursion; complex [B, N].

    ``causal = true``: G⁽ⁱ⁾_ii = [(H_{≤i} − zI)⁻¹]_ii of the leading principal block, one left scan
    G⁽ⁱ⁾_ii = 1/(a_i − z − b_{i−1}² G⁽ⁱ⁻¹⁾_{i−1,i−1}); it depends on h_{≤i} only. Default false (the
    two-sided resolvent, whose G_ii reads every token): a language model must ask for the causal one.
    """

    Params = _BkP
    # G_ii depends on h at every site through (H − z)⁻¹: both neighbours, then theirs (two-sided)
    sequence = "bidirectional"
    # a flip P of the sites maps H(h) to P H(h) P (symmetric hopping), so G_ii(Ph) = (P G(h) P)_ii
    flip_equivariant = True

    def output_bound(self):
        """|G_ii| ≤ ‖(H − z)⁻¹‖₂ = 1 / dist(z, spec H) ≤ 1 / Im z for a real symmetric H."""
        im = complex(self.params.z).imag
        return 1.0 / im, f"|G_ii| ≤ ‖(H − z)⁻¹‖ ≤ 1/Im z = {1.0 / im:g} (H real symmetric)"

    def sequence_pattern(self) -> str:
        """Dependence along the sequence axis (for the `causal` claim): the two-sided G_ii reads h at
        every site through (H − z)⁻¹; the retarded one reads h_{≤i}."""
        return "causal" if self.params.causal else "bidirectional"

    def flip_symmetric(self) -> bool:
        """A flip P of the sites maps H(h) to P H(h) P, so the two-sided G is flip-equivariant; the
        retarded one (leading blocks) is not."""
        return not self.params.causal

    @classmethod
    def from_args(cls, kwargs, span=None, decl_name=None, arg_spans=None):
        z = kwargs.get("z")
        if isinstance(z, (int, float, complex)) and not isinstance(z, bool) and not complex(z).imag > 0:
            raise BkError("E0304", f"`bk_resolvent` needs Im z > 0 (the retarded resolvent), got z = {show_value(complex(z))}",
                          span=(arg_spans or {}).get("z", span), help="use a small positive imaginary part, e.g. `z = 0.1i`")
        return super().from_args(kwargs, span, decl_name, arg_spans)

    def infer(self, ins, ctx):
        self.check_manifolds(ins, ctx)
        b, n, self.d = _hidden(ins, ctx, self.name)
        return ValueType((b, n), "complex", None, None)

    def build(self):
        return L.GreenFunction(self.d, self.params.z, self.params.hopping)

    def lower(self, emit, args):
        """Two graph nodes: the Hamiltonian's projections (a submodule) and the resolvent diagonal
        (a call of the kernel dispatcher; `bkdsl.lower.fusion` swaps in torch.ops.bkdsl.resolvent_diag)."""
        ab = emit.call_module(L.TridiagonalHamiltonian(self.d, self.params.hopping), args, "hamiltonian")
        a = emit.call_function(operator.getitem, (ab, 0), suffix="potential")
        b = emit.call_function(operator.getitem, (ab, 1), suffix="hopping")
        return emit.graph.create_node("call_function", R.resolvent_diag, (a, b),
                                      {"z": self.params.z, "causal": self.params.causal}, name=emit.base)


class _GfP(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dim: int = Field(gt=0, description="output feature size")


@component("green_features", kind="layer", inputs=("g",), positional=("g", "dim"))
class GreenFeaturesC(Component):
    """Linear features of the Green function: complex [B, N] → float [B, N, dim]."""

    Params = _GfP
    sequence = "pointwise"  # [Re G_ii, Im G_ii] → features, site by site
    mixes_last_axis = False  # G is [B, N]: its last axis is the sequence, read entry by entry

    def infer(self, ins, ctx):
        t = ins[0]
        if t.dtype != "complex" or t.rank != 2:
            raise BkError("E0401", f"`green_features` expects complex [B, N] (a propagator's output), got {t.show()}",
                          span=ctx.span)
        return ValueType(t.shape + (self.params.dim,), "float", None, None)

    def build(self):
        return L.GreenFeatures(self.params.dim)


# ------------------------------------------------------------------------------ attention
class _SaP(BaseModel):
    model_config = ConfigDict(extra="forbid")
    heads: int = Field(gt=0)
    tau: float = Field(gt=0, description="threshold on S_I·S_J; S_i = |G_ii| over its running mean "
                                        "(causal) or its sequence mean (two-sided)")
    block: int = Field(64, gt=0, description="block size of the block-sparse attention")
    causal: bool = Field(True, description="true: keys j ≤ i, S by its running mean, each block gated at "
                                          "its first token (output i reads h_{≤i}); false: bidirectional")


@component("scattering_attention", kind="layer", inputs=("h", "density"))
class ScatteringAttentionC(Component):
    """Attention pruned by the scattering score of G: a query block attends a key block only when
    σ_I·σ_J > τ (σ = block max of S); tokens with S_i·m_I ≤ τ take the identity path (output 0).
    Causal (default): S is normalised by its running mean and σ_I is read at block I's first token
    (:func:`bkdsl.nn.scattering_attention.block_leading_score`), so output i reads h_{≤i} and G_{≤i}."""

    Params = _SaP

    def sequence_pattern(self) -> str:
        """Causal when built with ``causal = true`` (key blocks J ≤ I only), else every position."""
        return "causal" if self.params.causal else "global"

    def infer(self, ins, ctx):
        self.check_manifolds(ins, ctx)
        b, n, self.d = _hidden(ins, ctx, self.name)
        g = ins[1]
        if g.dtype != "complex" or g.rank != 2:
            raise BkError("E0401", f"`scattering_attention`'s density must be the Green function, complex [B, N]; "
                                   f"got {g.show()}", span=ctx.span)
        ctx.uni.unify(g.shape[0], b, ctx.span, "`scattering_attention` (batch)")
        ctx.uni.unify(g.shape[1], n, ctx.span, "`scattering_attention` (sequence)")
        if self.d % self.params.heads:
            raise BkError("E0201", f"hidden size {self.d} is not divisible by heads = {self.params.heads}", span=ctx.span)
        return ins[0]

    def build(self):
        p = self.params
        return L.ScatteringAttentionLayer(self.d, p.heads, p.tau, p.block, p.causal)


# ------------------------------------------------------------------------------ hyperbolic MoE
class _MoEP(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    experts: int = Field(gt=0)
    top_k: int = Field(2, gt=0, description="experts per token; gates softmax(−d/T) over them (k ≥ 2)")
    hidden: int | None = Field(None, gt=0, description="width of each expert's MLP (default 2·d)")
    temperature: float = Field(1.0, gt=0, description="T of the gate exp(−d/T)")
    euclidean: bool = Field(False, description="ablation: route by ‖log₀x − μ‖ with Euclidean centroids")
    manifold: Any = Field(None, description="the ball (inferred from the input when omitted)")


@component("hyperbolic_moe", kind="layer", inputs=("x",))
class HyperbolicMoEC(Component):
    """Routerless experts: token x goes to the top_k experts whose centroids μ_e (geoopt
    ManifoldParameters, moved by Riemannian steps) are nearest in Poincaré distance, with gates
    exp(−d(x, μ_e)/T) renormalised over them (differentiable in μ); output on the same ball."""

    Params = _MoEP
    accepts = "any"
    sequence = "pointwise"  # each token is routed by its own distance to the centroids

    def infer(self, ins, ctx):
        t = ins[0]
        from bkdsl.components.manifolds import Poincare

        if t.manifold is None or not isinstance(ctx.manifolds.get(t.manifold), Poincare):
            raise BkError("E0402", "`hyperbolic_moe` routes points of a Poincaré ball; the input is "
                                   f"{'Euclidean' if t.manifold is None else 'on ' + t.manifold}", span=ctx.span,
                          help="map it with `expmap0(ball, x)` first")
        if self.params.top_k > self.params.experts:
            raise BkError("E0201", f"top_k = {self.params.top_k} exceeds experts = {self.params.experts}", span=ctx.span)
        self.c = ctx.manifolds[t.manifold].params.c
        self.d = ctx.uni.find(t.shape[-1])
        return t

    def build(self):
        p = self.params
        return L.HyperbolicMoELayer(self.d, p.experts, p.top_k, p.hidden, self.c, temperature=p.temperature,
                                    metric="euclidean" if p.euclidean else "poincare")

    def prove(self, prop: str) -> Proof | None:
        if prop == "hyperbolic":
            return Proof(True, "analytic", "the output is exp₀ of the mixed tangent vectors: a point of the ball")
        return super().prove(prop)
