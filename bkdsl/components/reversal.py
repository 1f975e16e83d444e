"""Time reversal of training data: what a data source's fields mean under t → −t (source 000 §4.3).

Reversal is not a property of a tensor but of what it holds, so a source *declares* its structure and
the ``time_reverse`` augmentation (and a loss's ``reverse(...)``) refuse data that declares none:

* :class:`PhaseSpacePair` — fields ``state`` = x_t and ``next`` = x_{t+Δt} of a Hamiltonian system
  with H(q, −p) = H(q, p), each laid out as ``[q | p]`` (the first ``dof`` entries are positions,
  the next ``dof`` momenta). The state reversal is R(q, p) = (q, −p), and the reversed *pair* is
  (x, x′) → (R x′, R x): running the reversed flow for Δt from R x′ ends at R x, since
  Φ_{Δt}⁻¹ = R Φ_{Δt} R for a time-reversible system. The pendulum pair
  ((0.320, −1.678), x′) becomes ((q′, −p′), (0.320, 1.678)).
* :class:`TokenPair` — next-token data, ``inputs`` = w[0:N] and ``targets`` = w[1:N+1] of a window
  w. Reversing the window gives inputs′ = rev(w)[0:N] = rev(targets) and targets′ = rev(inputs);
  flipping each field on its own (the old behaviour) would ask the model to predict a token it has
  already been shown.
* :class:`SequenceFields` — fields whose per-sample axis ``axis`` is time and that hold no momenta
  (a reversed recording is again a recording): each is flipped along that axis.

Built-in sources declare their layout in :data:`LAYOUTS` (keyed by the registered source name); a
user's source declares it with a class attribute ``time_reversal = PhaseSpacePair(...)`` (which also
overrides the table). :func:`reversal_layout` is what the verify pass (``bkdsl check``) and the runner
ask; None means the source cannot be reversed and ``time_reverse`` is refused with E0612;
:func:`bind_layout` is the whole check of a ``time_reverse`` against its source.

A layout is a declaration (this module imports no torch, so ``bkdsl check`` reads it without torch);
its ``reverse_*`` methods act on the tensors they are given. ``bkdsl.train.reversal`` re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

from bkdsl.diagnostics import BkError, Span

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class PhaseSpacePair:
    """(x_t, x_{t+Δt}) pairs of a time-reversible Hamiltonian system; each state is ``[q | p]``."""

    state: str
    next: str
    dof: int

    @property
    def fields(self) -> tuple[str, ...]:
        return (self.state, self.next)

    def reverse_state(self, x: torch.Tensor) -> torch.Tensor:
        """R(q, p) = (q, −p) on the last axis of ``x`` ([..., 2·dof])."""
        if x.shape[-1] != 2 * self.dof:
            raise BkError("E0612", f"a phase-space state here has {2 * self.dof} entries [q | p], got a tensor "
                                   f"whose last axis is {x.shape[-1]}",
                          help="reverse(...) applies to states laid out like the data's `"
                               f"{self.state}`")
        sign = x.new_ones(2 * self.dof)  # (1, …, 1, −1, …, −1): R as a product, exact in floating point
        sign[self.dof:] = -1
        return x * sign

    def reverse_pair(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = dict(batch)
        out[self.state] = self.reverse_state(batch[self.next])
        out[self.next] = self.reverse_state(batch[self.state])
        return out


@dataclass(frozen=True)
class TokenPair:
    """Next-token windows: ``targets[t] = inputs[t + 1]`` along per-sample axis 0."""

    inputs: str
    targets: str

    @property
    def fields(self) -> tuple[str, ...]:
        return (self.inputs, self.targets)

    def reverse_state(self, x: torch.Tensor) -> torch.Tensor:
        """A token sequence [B, N, ...] in reversed order."""
        return x.flip(1)

    def reverse_pair(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = dict(batch)
        out[self.inputs] = batch[self.targets].flip(1)
        out[self.targets] = batch[self.inputs].flip(1)
        return out


@dataclass(frozen=True)
class SequenceFields:
    """Fields whose per-sample axis ``axis`` is time, without momenta: reversal flips that axis."""

    names: tuple[str, ...]
    axis: int = 0

    @property
    def fields(self) -> tuple[str, ...]:
        return self.names

    def reverse_state(self, x: torch.Tensor) -> torch.Tensor:
        return x.flip(self.axis + 1)

    def reverse_pair(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = dict(batch)
        for n in self.names:
            out[n] = batch[n].flip(self.axis + 1)
        return out


Layout = Union[PhaseSpacePair, TokenPair, SequenceFields]

#: the built-in sources' declarations (a source class's own ``time_reversal`` attribute wins)
LAYOUTS: dict[str, Layout] = {
    "hamiltonian_trajectories": PhaseSpacePair("x", "x_next", dof=1),
    "text_bytes": TokenPair("tokens", "targets"),
}


def reversal_layout(source: Any) -> Layout | None:
    """The time-reversal structure a data source component declares, or None."""
    own = getattr(source, "time_reversal", None)
    if own is not None:
        return own
    return LAYOUTS.get(getattr(source, "name", None) or "")


def refuse(source_name: str, span: Span | None, what: str = "time_reverse") -> BkError:
    """E0612 for a source without a declared reversal structure."""
    known = ", ".join(sorted(LAYOUTS))
    return BkError("E0612", f"{what}: data source `{source_name}` declares no time-reversal structure, so its "
                            "fields cannot be reversed correctly", span=span,
                   label="not reversible",
                   help=f"sources that declare one: {known}; a source of your own declares "
                        "`time_reversal = PhaseSpacePair(state, next, dof)` (or TokenPair, SequenceFields, "
                        "bkdsl.train.reversal)")


def bind_layout(source: Any, fields: tuple[str, ...] | None, span: Span | None) -> tuple[Layout, str]:
    """(layout, source name) of a ``time_reverse(fields = ...)`` against its data source: E0612 when the
    source declares no structure or when ``fields`` names other fields than the structure's."""
    name = getattr(source, "name", None) or type(source).__name__
    layout = reversal_layout(source)
    if layout is None:
        raise refuse(name, span)
    if fields is not None and set(fields) != set(layout.fields):
        raise BkError("E0612", f"time_reverse: `{name}` reverses {', '.join(layout.fields)} together; "
                               f"fields = {list(fields)} would reverse part of it", span=span,
                      help="drop `fields`: the source's structure says which fields reverse, and how")
    return layout, name


def check_fields(layout: Layout, fields: dict[str, Any] | None, source_name: str, span: Span | None) -> None:
    """The layout's fields must be among the source's (E0612 otherwise)."""
    if fields is None:
        return
    missing = [f for f in layout.fields if f not in fields]
    if missing:
        raise BkError("E0612", f"data source `{source_name}` declares time reversal of "
                               f"{', '.join(f'`{m}`' for m in missing)}, which it does not produce", span=span,
                      help=f"fields: {', '.join(fields)}")


__all__ = ["PhaseSpacePair", "TokenPair", "SequenceFields", "Layout", "LAYOUTS", "reversal_layout", "refuse",
           "bind_layout", "check_fields"]
