"""Attaching gradient teleportation (:mod:`bkdsl.nn.teleport`) to a built model, by block name.

``teleport = dyson_teleport(over = "dense", strength = 0.3)`` in a train block names the repeated block
whose copies form the stack: ``repeat(dense(w), 64)`` lowers to the submodules ``dense``, ``dense_1``,
…, ``dense_63`` of the GraphModule (one per copy, in forward order). A name that matches fewer than two
submodules is refused with E0609 (a one-layer "stack" has nothing to teleport between).
"""

from __future__ import annotations

import re
from typing import Any

import torch

from bkdsl.diagnostics import BkError, Span
from bkdsl.nn.teleport import GradientTeleport


def stack_modules(model: torch.nn.Module, over: str) -> list[torch.nn.Module]:
    """The direct submodules named ``over`` or ``over_<n>``, ordered by copy index (``over`` first)."""
    pat = re.compile(rf"{re.escape(over)}(?:_(\d+))?")
    found = []
    for name, m in model.named_children():
        mt = pat.fullmatch(name)
        if mt:
            found.append((int(mt.group(1)) if mt.group(1) else 0, m))
    return [m for _, m in sorted(found, key=lambda t: t[0])]


def attach_teleport(model: torch.nn.Module, comp: Any, span: Span | None = None) -> GradientTeleport:
    """Hooks of ``comp`` (a ``dyson_teleport`` component, its validated params) on ``model``'s stack."""
    p = comp.params
    over = p.over
    mods = stack_modules(model, over)
    if len(mods) < 2:
        names = sorted({re.sub(r"_\d+$", "", n) for n, _ in model.named_children()})
        raise BkError("E0609", f"teleport: the model has {len(mods)} layer(s) named `{over}`; a stack needs two or more",
                      span=span, help=f"name a block the model repeats with `repeat(block(...), n)`; "
                                      f"the model's submodules: {', '.join(names) or 'none'}")
    return GradientTeleport(p.strength, p.mass, p.adaptive).attach(mods)
