"""Composition rules: which properties survive when maps are combined.

``compose(kind, parts)`` takes the established properties of each part (a list of sets, in the
order the data flows) and returns the properties of the whole. Kinds:

* ``sequential`` (also ``repeat``): f_n ∘ … ∘ f_1.
  - unitary ∘ unitary = unitary (U₂U₁ is invertible with inverse U₁*U₂*);
  - isometric ∘ isometric = isometric (‖U₂U₁x‖ = ‖U₁x‖ = ‖x‖);
  - contractive ∘ contractive = contractive, and an isometry counts as a contraction, so a contraction
    after an isometry (or before one) is a contraction;
  - symplectic ∘ symplectic = symplectic (chain rule: (J₂J₁)ᵀΩ(J₂J₁) = J₁ᵀ(J₂ᵀΩJ₂)J₁ = J₁ᵀΩJ₁ = Ω);
  - reversible ∘ reversible = reversible (invert in the opposite order);
  - hyperbolic: the whole stays on the manifold if every part does;
  - commutative is a property of a binary op, not of a map, and never survives composition.
* ``parallel``: parts act on disjoint blocks of the state (a direct sum). Every property above
  except ``commutative`` holds for the whole if it holds for every part (Ω, norms and inverses split
  blockwise).
* ``residual``: x + f(x). Nothing survives in general (x + Ux is not norm-preserving, and
  q ↦ q + f(q) need not be invertible); the result is the empty set.

Implications are closed first: unitary ⇒ isometric ⇒ contractive; unitary ⇒ reversible.
"""

from __future__ import annotations

from collections.abc import Iterable

IMPLIES: dict[str, frozenset[str]] = {
    "unitary": frozenset({"isometric", "contractive", "reversible"}),
    "isometric": frozenset({"contractive"}),
}

COMPOSABLE = frozenset({"unitary", "isometric", "contractive", "symplectic", "reversible", "hyperbolic"})

KINDS = ("sequential", "repeat", "parallel", "residual")


def closure(props: Iterable[str]) -> set[str]:
    """The properties together with everything they imply."""
    out = set(props)
    changed = True
    while changed:
        changed = False
        for p in list(out):
            new = IMPLIES.get(p, frozenset()) - out
            if new:
                out |= new
                changed = True
    return out


def compose(kind: str, parts: list[set[str]]) -> set[str]:
    """Properties of the composite of ``parts`` (see the module docstring for the rules)."""
    if kind not in KINDS:
        raise ValueError(f"unknown composition kind {kind!r}; one of {KINDS}")
    if not parts:
        # the empty composition is the identity: unitary, symplectic, reversible, ...
        return closure(COMPOSABLE)
    if kind == "residual":
        return set()
    closed = [closure(p) & COMPOSABLE for p in parts]
    common = set.intersection(*closed)
    return closure(common)


def why_not(kind: str, parts: list[set[str]], prop: str, names: list[str] | None = None) -> str | None:
    """None when ``prop`` follows from the composition; otherwise the reason, naming the parts that
    lack it (the text of an E0301 refusal)."""
    if prop in compose(kind, parts):
        return None
    if prop == "commutative":
        return "commutativity is a property of one binding op and does not survive composition"
    if kind == "residual":
        return f"a residual connection x + f(x) does not preserve `{prop}`"
    names = names or [f"part {i + 1}" for i in range(len(parts))]
    missing = [n for n, p in zip(names, parts) if prop not in closure(p)]
    return (f"`{prop}` needs every part to be {prop}; not established for "
            + ", ".join(f"`{m}`" for m in missing))
