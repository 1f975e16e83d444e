"""``branching_tree(depth, branching, dim, noise, copies)``: data with a known hierarchy, made by the spec.

A branching diffusion (Mathieu et al. 2019 §5.1; :func:`bkdsl.nn.gmvae.branching_tree`): the root sits
at 0 ∈ ℝ^dim, each child is its parent plus N(0, (noise/ℓ)² I) at level ℓ, down to ``depth`` levels,
so the tree has (branching^(depth+1) − 1)/(branching − 1) nodes; each node is observed ``copies``
times with N(0, (noise/10)² I) jitter. Fields per sample:

* ``x`` [dim] — the features (float, dimensionless);
* ``depth`` [] — the node's level ℓ (int, 0 at the root: what the latent disc is coloured by);
* ``node`` [] — the node's index in breadth-first order (int), from which the tree distances are
  recomputed by :func:`bkdsl.nn.gmvae.tree_distances` on the parent array that
  :func:`bkdsl.nn.gmvae.branching_tree` returns for the same parameters.

The tree is a function of (depth, branching, dim, noise, copies, seed) alone: the same arguments give
the same samples bit for bit. A tree of more than ``MAX_SAMPLES`` samples is refused when the spec is
checked (E0201, with the count), before anything is generated.
"""

from __future__ import annotations

from pydantic import Field

from bkdsl.components.data_sources import DataParams, DataSource
from bkdsl.diagnostics import BkError
from bkdsl.nn.gmvae import branching_tree
from bkdsl.registry import component
from bkdsl.train.data import Dataset, FieldInfo

# A bound on the generated samples: the tree grows as branching^depth, and a typo (depth = 60) would
# otherwise allocate without end. 2·10⁶ samples × dim 32 × 4 bytes is 256 MB.
MAX_SAMPLES = 2_000_000


def tree_nodes(depth: int, branching: int) -> int:
    """Nodes of a complete tree: Σ_{ℓ=0..depth} branching^ℓ."""
    return sum(branching ** lv for lv in range(depth + 1))


class BranchingTreeParams(DataParams):
    depth: int = Field(6, ge=1, le=30, description="levels below the root")
    branching: int = Field(2, ge=2, description="children per node")
    dim: int = Field(32, ge=1, description="feature dimension of x")
    noise: float = Field(1.0, gt=0, description="σ of a level-1 step; level ℓ steps have σ = noise/ℓ, "
                                                "copies jitter by noise/10")
    copies: int = Field(4, ge=1, description="noisy observations of each node")


@component("branching_tree", kind="data")
class BranchingTree(DataSource):
    """A branching diffusion tree (Mathieu et al. 2019): features ``x`` [dim], ``depth`` and ``node`` ids."""

    Params = BranchingTreeParams
    unnormalized_fields = ("depth", "node")

    @classmethod
    def from_args(cls, kwargs, span=None, decl_name=None, arg_spans=None):
        comp = super().from_args(kwargs, span, decl_name, arg_spans)
        p = comp.params
        n = tree_nodes(p.depth, p.branching) * p.copies
        if n > MAX_SAMPLES:
            raise BkError("E0201", f"`branching_tree`: depth {p.depth}, branching {p.branching} and {p.copies} "
                                   f"copies make {n:,} samples, more than {MAX_SAMPLES:,}",
                          span=span, help="lower `depth` or `branching` (the tree has Σ branching^ℓ nodes)")
        return comp

    @classmethod
    def declared_fields(cls, call):
        return {"x": "1", "depth": "1", "node": "1"}

    def fields(self):
        return {"x": FieldInfo("x", shape=(self.params.dim,)),
                "depth": FieldInfo("depth", shape=(), dtype="int"),
                "node": FieldInfo("node", shape=(), dtype="int")}

    def load(self, *, seed: int, base_dir: str | None = None):
        p = self.params
        t = branching_tree(p.depth, p.branching, p.dim, p.noise, p.copies, seed if p.seed is None else p.seed)
        return Dataset({"x": t["x"].float(), "depth": t["depth"], "node": t["node"]}, self.fields(),
                       meta={"source": "branching_tree", "nodes": len(t["parent"])})
