"""What each integration method is, as facts the compiler decides claims from (no torch): its order,
whether it is symplectic, whether it has an exact inverse, whether it needs a separable
H = T(p) + V(q) to be explicit. The steps themselves are in :mod:`bkdsl.nn.integrators` (table there);
the declarations in :mod:`bkdsl.components.integrators` read these at ``bkdsl check`` time."""

METHODS = ("euler", "rk4", "symplectic_euler", "leapfrog", "yoshida4", "implicit_midpoint")
SYMPLECTIC = frozenset({"symplectic_euler", "leapfrog", "yoshida4", "implicit_midpoint"})
INVERTIBLE = frozenset({"symplectic_euler", "leapfrog", "yoshida4", "implicit_midpoint"})
NEEDS_SEPARABLE = frozenset({"symplectic_euler", "leapfrog", "yoshida4"})
ORDER = {"euler": 1, "rk4": 4, "symplectic_euler": 1, "leapfrog": 2, "yoshida4": 4, "implicit_midpoint": 2}
