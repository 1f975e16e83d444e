"""A model's dataflow graph for drawing (``bkdsl graph``): a networkx DiGraph built from the elaborated
block, written as Graphviz DOT by networkx's own pydot writer (``networkx.drawing.nx_pydot``).

Nodes are the block's values (inputs, component applications, nested blocks, parameters) and one node
per output; an edge a → b means b reads a. Each node carries its DOT attributes (``label``: the name, the
op and the inferred type; ``shape``: by op) and the graph its defaults, so the DOT text is only
``to_pydot(g).to_string()`` — quoting and escaping are pydot's.
"""

from __future__ import annotations

import networkx as nx

from bkdsl.semantics import ir as I
from bkdsl.semantics.types import show_type

# Graphviz node shapes by op (every other op is a box)
SHAPES = {"input": "invhouse", "output": "house", "param": "cylinder", "block": "box3d"}




def dataflow_graph(block: I.BlockIR) -> nx.DiGraph:
    """The dataflow graph of an elaborated block (``Compiled.model_ir``)."""
    g = nx.DiGraph(name=block.name)
    g.graph["graph"] = {"rankdir": "TB"}
    g.graph["node"] = {"fontname": "Helvetica", "shape": "box"}
    for n in block.nodes:
        head = f"{n.label or n.name}\n{n.op}"
        if n.op == "component":
            head = f"{n.label or n.name} = {n.target.name}"
        elif n.op == "block":
            head = f"{n.label or n.name} = {n.target.qualname}"
        g.add_node(n.name, label=f"{head}\n{show_type(n.type)}", op=n.op, shape=SHAPES.get(n.op, "box"))
        for a in n.args:
            if isinstance(a, I.NodeRef):
                g.add_edge(a.name, n.name)
    for k, v in block.outputs.items():
        g.add_node(f"output_{k}", label=f"output {k}", op="output", shape=SHAPES["output"])
        g.add_edge(v, f"output_{k}")
    return g


def to_dot(g: nx.DiGraph) -> str:
    """DOT text of ``g`` through networkx's pydot writer (node attributes other than DOT's are dropped).
    A label's line breaks become DOT's ``\\n`` escapes."""
    h = nx.DiGraph(name=g.graph.get("name", ""))
    h.graph.update({k: v for k, v in g.graph.items() if k in ("graph", "node", "edge")})
    for n, d in g.nodes(data=True):
        h.add_node(n, **{k: (v.replace("\n", "\\n") if k == "label" else v) for k, v in d.items() if k != "op"})
    h.add_edges_from(g.edges())
    return nx.nx_pydot.to_pydot(h).to_string()
