"""The DOT writer (bkdsl/lower/dot.py): the dataflow graph of a compiled model, written through
networkx's pydot writer, reads back as the same graph."""

from __future__ import annotations

import networkx as nx
import pydot

import bkdsl
from bkdsl.lower.dot import SHAPES, dataflow_graph, to_dot

SPEC = '''model m {
  input x : [B, 4]
  h = tanh(linear(x, 8))
  output y = linear(h, 2)
  output z = h
}
'''


def _read_back(text: str) -> nx.DiGraph:
    (p,) = pydot.graph_from_dot_data(text)
    g = nx.DiGraph()
    for n in p.get_nodes():
        if n.get_name() in ("node", "graph", "edge"):  # the default-attribute statements
            continue
        g.add_node(n.get_name().strip('"'), **{k: v.strip('"') for k, v in n.get_attributes().items()})
    g.add_edges_from((e.get_source().strip('"'), e.get_destination().strip('"')) for e in p.get_edges())
    return g


def test_dataflow_graph_of_a_compiled_model_round_trips_through_dot():
    c = bkdsl.compile_source(SPEC, "t.bk")
    g = dataflow_graph(c.model_ir(c.main_call))
    back = _read_back(to_dot(g))
    assert set(back.nodes) == set(g.nodes) and set(back.edges) == set(g.edges)
    assert {"output_y", "output_z"} <= set(g.nodes)
    assert nx.is_directed_acyclic_graph(g) and [n for n in g if g.in_degree(n) == 0] == ["x"]
    assert back.nodes["x"]["shape"] == SHAPES["input"] and back.nodes["output_y"]["shape"] == SHAPES["output"]
    assert "[B, 4]" in back.nodes["x"]["label"]


def test_labels_with_quotes_backslashes_and_line_breaks_are_escaped():
    g = nx.DiGraph(name="odd name")
    g.add_node("a.b", label='say "hi"\nline two', shape="box")
    g.add_node("c d", label="back\\slash", shape="box")
    g.add_edge("a.b", "c d")
    text = to_dot(g)
    back = _read_back(text)
    assert set(back.edges) == {("a.b", "c d")}
    assert back.nodes["a.b"]["label"] == 'say \\"hi\\"\\nline two'  # DOT escapes, as Graphviz reads them
    assert "\nline two" not in text  # a raw line break inside a label would end the statement
