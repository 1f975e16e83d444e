"""Claims decided by an analytic rule backed by a numerical probe of the built implementation.

Every claim a spec makes on a binding, a circulant layer or an integrator (``binding b = phasor_bind()
: unitary``) is decided by the component's ``prove``: an analytic rule first (why it holds, or why no
rule applies), then a probe (:mod:`bkdsl.verify.probes`, float64, fixed seed) that can fail. These
three functions turn the two into a :class:`~bkdsl.registry.Proof`:

* ``proven`` — a rule holds and the probe agrees: ``how = "analytic+probe"``; a rule whose probe fails
  is a bug in the implementation and is reported as refuted;
* ``refuted`` — the probe refutes the claim: ``how = "probe"`` (the properties pass reports E0302 with
  the numbers);
* ``unestablished`` — no rule, and a probe that did not refute proves nothing: ``how = "analytic"``
  (E0301).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bkdsl.registry import Proof

if TYPE_CHECKING:
    from bkdsl.verify import probes


def refuted(name: str, prop: str, r: probes.ProbeResult, why: str = "") -> Proof:
    return Proof(False, "probe", f"`{name}` is not {prop}: {r.detail}" + (f" ({why})" if why else ""))


def proven(rule: str, r: probes.ProbeResult) -> Proof:
    if not r.ok:  # the analytic rule and the implementation disagree: a bug, and said so
        return Proof(False, "probe", f"{rule}, but the implementation fails the probe: {r.detail}")
    return Proof(True, "analytic+probe", f"{rule}; {r.detail}")


def unestablished(name: str, prop: str, r: probes.ProbeResult) -> Proof:
    """No analytic rule, the probe did not refute: a probe alone proves nothing."""
    return Proof(False, "analytic", f"no rule makes `{name}` {prop}; the probe saw {r.detail}, "
                                    "but a probe alone proves nothing")
