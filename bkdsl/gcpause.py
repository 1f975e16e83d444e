"""``paused_gc()``: the cyclic garbage collector paused while the front end builds its trees.

Parsing and elaborating allocate hundreds of thousands of small container objects (parse-tree
nodes, tokens, AST dataclasses, IR nodes) and free almost none of them until the stage ends. Every
700 allocations CPython (3.11) runs a young-generation collection, and as the survivors pile up it
runs full collections that traverse the whole, growing heap — quadratic in the size of the input.
Measured on the 10 000-line spec of bench/check_scale.py: the Lark parse 3.3–4.8 s with the collector
on, 1.45 s with it paused; the tree → AST step 1.1–1.6 s vs 0.25 s. Nothing is lost: reference
counting still frees every acyclic object at once, and the few cycles made meanwhile are collected
when the collector resumes. The previous state is restored on exit (nested pauses compose).
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def skip_exit_collection() -> None:
    """Leave the objects alive now out of the collection the interpreter runs as it exits.

    For a process about to end (the ``bkdsl`` program after its command): CPython's shutdown runs a
    full collection that traverses every object still tracked — on the 10 000-line spec of
    bench/check_scale.py the front end's trees and IR, 0.35 s of CPU for nothing, since the memory is
    returned to the system anyway. ``gc.freeze()`` moves them to the permanent generation, which no
    collection visits; reference counting still frees them as usual. Not for library use: in a
    long-lived process the cyclic garbage alive at the call would never be collected.

    Not after a command that loaded Triton (train, compile with kernels): its nanobind extension
    checks at exit that every object it handed out was freed, and frozen cycles never are, so it
    would print pages of "leaked function" warnings. Those commands are long anyway."""
    if "triton" in sys.modules:
        return
    gc.freeze()

