"""The branching_tree data source: its fields and their types, determinism, the node count, and the
coded refusals of bad parameters (E0201 with the span of the data declaration)."""

from __future__ import annotations

import pytest
import torch

import bkdsl
from bkdsl.components.tree_data import MAX_SAMPLES, BranchingTree, tree_nodes
from bkdsl.diagnostics import BkError
from bkdsl.nn.gmvae import branching_tree, tree_distances
from tests.conftest import ROOT


def _load(run_seed=0, **kw):
    return BranchingTree.from_args(kw).load(seed=run_seed)


def test_fields_shapes_and_dtypes():
    ds = _load(depth=3, branching=3, dim=5, copies=2)
    n = tree_nodes(3, 3) * 2
    assert tree_nodes(3, 3) == 1 + 3 + 9 + 27
    assert ds.fields["x"].shape == (n, 5) and ds.fields["x"].dtype == torch.float32
    assert ds.fields["depth"].shape == (n,) and ds.fields["depth"].dtype == torch.int64
    assert ds.fields["node"].shape == (n,) and ds.fields["node"].dtype == torch.int64
    assert sorted(ds.fields["depth"].unique().tolist()) == [0, 1, 2, 3]
    assert set(ds.info) == {"x", "depth", "node"} == set(BranchingTree.from_args({}).fields())
    assert ds.meta["nodes"] == 40
    # every node appears `copies` times and its copies share the depth
    counts = torch.bincount(ds.fields["node"])
    assert counts.tolist() == [2] * 40
    depth_of = {int(k): int(d) for k, d in zip(ds.fields["node"], ds.fields["depth"])}
    assert depth_of[0] == 0 and all(depth_of[i] == 1 for i in (1, 2, 3))


def test_deterministic_in_its_seed():
    a, b, c = _load(0, depth=3), _load(0, depth=3), _load(1, depth=3)
    assert torch.equal(a.fields["x"], b.fields["x"])
    assert not torch.equal(a.fields["x"], c.fields["x"])
    # the declared seed wins over the run's
    d, e = _load(0, depth=3, seed=7), _load(5, depth=3, seed=7)
    assert torch.equal(d.fields["x"], e.fields["x"])


def test_hierarchy_is_in_the_features():
    """Children sit nearer their parent than the root's children sit to each other's subtrees: the mean
    feature distance between nodes grows with their tree distance (what the VAE is asked to keep)."""
    t = branching_tree(depth=4, branching=2, dim=16, noise=1.0, copies=1, seed=0)
    d_tree = tree_distances(t["parent"])
    d_feat = torch.cdist(t["x"], t["x"])
    means = [float(d_feat[d_tree == h].mean()) for h in (1, 2, 4, 8)]
    assert means == sorted(means), means


def test_tree_distances_small_tree():
    # root 0; children 1, 2; grandchildren 3, 4 (of 1), 5, 6 (of 2)
    d = tree_distances(torch.tensor([-1, 0, 0, 1, 1, 2, 2]))
    assert d[3, 4] == 2 and d[3, 5] == 4 and d[0, 6] == 2 and d[1, 2] == 2 and torch.equal(d, d.T)


SPEC = ROOT / "specs" / "hyperbolic_vae.bk"
DATA_LINE = next(i for i, line in enumerate(SPEC.read_text().splitlines(), 1) if line.startswith("data tree"))


@pytest.mark.parametrize("key, value, needle", [
    ("data.depth", "0", "depth"),
    ("data.branching", "1", "branching"),
    ("data.noise", "0.0", "noise"),
    ("data.copies", "0", "copies"),
    ("data.dept", "3", "dept"),
])
def test_bad_parameters_are_coded(key, value, needle):
    errs = [d for d in bkdsl.check_file(SPEC, overrides={key: value}) if d.is_error]
    assert [d.code for d in errs] == ["E0201"], errs
    assert needle in errs[0].message and errs[0].span.line == DATA_LINE


def test_a_tree_too_large_is_refused_before_generating():
    with pytest.raises(BkError) as e:
        BranchingTree.from_args({"depth": 24, "branching": 2, "copies": 1})
    d = e.value.diagnostic
    assert d.code == "E0201" and f"{MAX_SAMPLES:,}" in d.message and "33,554,431" in d.message
    assert "depth" in d.help
    errs = [x for x in bkdsl.check_file(SPEC, overrides={"data.depth": "24"}) if x.is_error]
    assert [x.code for x in errs] == ["E0201"] and "134,217,724 samples" in errs[0].message
