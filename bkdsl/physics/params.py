"""The validated parameters of the ``nuclear_densities(...)`` data source.

:class:`NuclearDensitiesParams` is the pydantic (v2) schema of every keyword that
:func:`bkdsl.physics.dataset.generate_nuclear_densities` takes from a spec. Unknown keywords are
refused (``extra="forbid"``); each value is checked before any solve starts, so a bad value is a
diagnostic E0201 at the call's span (the registry turns the ``ValidationError`` into it) instead of a
NaN field, a torch error or an hour of wasted generation:

* ``nucleus`` must name a nucleus (:func:`~bkdsl.physics.nuclei.get_nucleus`), ``functional`` a
  registered Skyrme set, ``potential`` one of ``sho``, ``rnd``, ``random_ho`` (or an alias);
* counts (``samples``, ``batch``, ``chunk``, ``max_iter``, ``hist_bins``) are positive integers,
  ``hist_cap`` positive or absent;
* ``grid`` is ``[n_r, n_z, step_fm]`` with n_r, n_z positive integers, n_z even, step > 0; ``solve_box``
  is ``[n_r, n_z]`` or ``"auto"`` / absent;
* ``k_cut`` (fm^-1), ``tol_res``, ``tol_de`` (MeV) are finite and > 0; ``com_C`` (MeV fm^-2) finite, >= 0;
* ``v0`` (MeV fm^3/2, random_ho only) is one positive finite amplitude or a non-empty list of them;
* ``excitation_window`` (MeV) and ``q20_window`` (b) are ``[lo, hi]`` with finite lo <= hi;
* ``potential_kwargs`` only holds keywords the chosen potential accepts, with finite values;
* ``solver`` is ``etf`` or ``hf-bcs``; with ``hf-bcs`` (the thesis' ch. 3 Kohn-Sham data) the potential
  is ``sho`` or ``rnd``, Coulomb is off, the ETF-only keywords are refused, ``stencil`` is 2/4/6/8,
  ``omega_max2`` odd and positive, ``tol_e``, ``tol_rho`` finite and > 0; those keywords with ``etf``
  are refused too.

The same checks run whether the data source is written in a spec or the generator is called from
Python through :func:`validate_generator_kwargs`.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bkdsl.diagnostics import BkError

from .filters import THESIS_BINS, THESIS_EXCITATION_WINDOW
from .nuclei import get_nucleus
from .potentials import potential_kind
from .skyrme import get_functional

#: density solvers of the data source
SOLVERS = ("etf", "hf-bcs")
#: keywords only the Kohn-Sham generator takes (``solver = "hf-bcs"``), and the families it draws
HF_ONLY_KEYS = frozenset({"stencil", "omega_max2", "cuts", "tol_e", "tol_rho"})
HF_POTENTIALS = ("sho", "rnd")
#: keywords only the orbital-free ETF generator uses
ETF_ONLY_KEYS = frozenset({"solve_box", "k_cut", "excitation_window", "q20_window", "q20_relative", "flatten",
                           "hist_bins", "hist_cap", "tol_res", "tol_de", "hessian", "chunk", "compile", "v0"})

#: keywords each potential family accepts in ``potential_kwargs`` (see :mod:`bkdsl.physics.potentials`)
POTENTIAL_KEYWORDS: dict[str, frozenset[str]] = {
    "sho": frozenset({"k_max", "z0_max"}),
    "rnd": frozenset({"v_min", "v_max", "mu2_min", "mu2_max", "r0"}),
    "random_ho": frozenset({"v0", "t_max", "n_shell", "q", "b_z", "b_perp"}),
}


def _finite(x: float, what: str) -> float:
    if not math.isfinite(float(x)):
        raise ValueError(f"{what} must be finite, got {x}")
    return float(x)


def _window(v: Any, what: str, unit: str) -> tuple[float, float] | None:
    if v is None:
        return None
    if not isinstance(v, (list, tuple)) or len(v) != 2:
        raise ValueError(f"{what} must be [lo, hi] in {unit}")
    lo, hi = (_finite(x, what) for x in v)
    if lo > hi:
        raise ValueError(f"{what} = [{lo}, {hi}] has lo > hi")
    return (lo, hi)


class NuclearDensitiesParams(BaseModel):
    """Keywords of ``nuclear_densities(...)`` (units: MeV, fm, b); see the module docstring."""

    model_config = ConfigDict(extra="forbid")

    nucleus: str = Field("U236", description="nucleus, e.g. U236, Mg24")
    functional: str = Field("sly4", description="Skyrme parameter set")
    potential: str = Field("random_ho", description="external-field family: sho, rnd, random_ho")
    samples: int = Field(1000, gt=0, description="potentials drawn")
    grid: list[float] | None = Field(None, description="[n_r, n_z, step_fm]")
    device: str | None = Field(None, description="cpu or cuda")
    batch: int = Field(128, gt=0)
    v0: float | list[float] | None = Field(None, description="random_ho amplitude(s), MeV fm^3/2")
    solve_box: list[int] | str | None = Field("auto", description="[n_r, n_z] or auto")
    k_cut: float = Field(2.5, gt=0, description="band limit, fm^-1")
    com_C: float | None = Field(None, ge=0, description="c.m. constraint, MeV fm^-2")
    coulomb: bool = True
    excitation_window: list[float] | None = Field(list(THESIS_EXCITATION_WINDOW), description="[lo, hi] MeV above E_gs")
    q20_window: list[float] | None = Field([-6.5, 6.5], description="[lo, hi] b")
    q20_relative: bool = True
    flatten: bool = True
    hist_bins: int = Field(THESIS_BINS, gt=0)
    hist_cap: int | None = Field(None, gt=0)
    max_iter: int = Field(150, gt=0)
    tol_res: float = Field(1e-3, gt=0, description="MeV")
    tol_de: float = Field(1e-3, gt=0, description="MeV")
    hessian: bool = True
    chunk: int = Field(2048, gt=0)
    compile: bool | str = "auto"
    potential_kwargs: dict[str, float] | None = None
    # -- solver = "hf-bcs": the Kohn-Sham data of thesis ch. 3 (bkdsl.physics.hf_dataset) --
    solver: str = Field("etf", description="etf (orbital-free) or hf-bcs (axial Kohn-Sham HF+BCS)")
    stencil: int = Field(8, description="hf-bcs: finite-difference order 2, 4, 6 or 8")
    omega_max2: int | None = Field(None, gt=0, description="hf-bcs: 2 Omega_max (odd)")
    cuts: bool = Field(True, description="hf-bcs: the energy cuts of thesis table 3.1")
    tol_e: float = Field(1e-6, gt=0, description="hf-bcs: |dE| convergence, MeV")
    tol_rho: float = Field(1e-6, gt=0, description="hf-bcs: max|rho_out - rho_in| convergence, fm^-3")

    @field_validator("nucleus")
    @classmethod
    def _nucleus(cls, v: str) -> str:
        try:
            get_nucleus(v)
        except BkError as e:
            raise ValueError(e.diagnostic.message) from None
        return v

    @field_validator("functional")
    @classmethod
    def _functional(cls, v: str) -> str:
        try:
            get_functional(v)
        except BkError as e:
            raise ValueError(f"{e.diagnostic.message} ({e.diagnostic.help})") from None
        return v

    @field_validator("potential")
    @classmethod
    def _potential(cls, v: str) -> str:
        try:
            potential_kind(v)
        except BkError as e:
            raise ValueError(f"{e.diagnostic.message}; known: sho, rnd, random_ho") from None
        return v

    @field_validator("k_cut", "tol_res", "tol_de", "com_C", "tol_e", "tol_rho")
    @classmethod
    def _finite_float(cls, v, info):
        return None if v is None else _finite(v, info.field_name)

    @field_validator("grid")
    @classmethod
    def _grid(cls, v):
        if v is None:
            return None
        if len(v) != 3:
            raise ValueError("grid must be [n_r, n_z, step_fm]")
        nr, nz, step = v
        if nr != int(nr) or nz != int(nz) or nr < 1 or nz < 2 or int(nz) % 2:
            raise ValueError(f"grid cells must be positive integers with n_z even, got {nr} x {nz}")
        if not (math.isfinite(step) and step > 0):
            raise ValueError(f"grid step must be a positive finite length in fm, got {step}")
        return [int(nr), int(nz), float(step)]

    @field_validator("solve_box")
    @classmethod
    def _solve_box(cls, v):
        if v is None or v == "auto":
            return v
        if isinstance(v, str):
            raise ValueError(f"solve_box must be [n_r, n_z] or \"auto\", got {v!r}")
        if len(v) != 2 or min(v) < 1:
            raise ValueError("solve_box must be [n_r, n_z] with positive cell counts")
        return v

    @field_validator("v0")
    @classmethod
    def _v0(cls, v):
        if v is None:
            return None
        vals = v if isinstance(v, list) else [v]
        if not vals:
            raise ValueError("v0 must hold at least one amplitude")
        for x in vals:
            if not (math.isfinite(x) and x > 0):
                raise ValueError(f"v0 amplitudes must be positive and finite (MeV fm^3/2), got {x}")
        return v

    @field_validator("excitation_window")
    @classmethod
    def _excitation(cls, v):
        return None if v is None else list(_window(v, "excitation_window", "MeV"))

    @field_validator("q20_window")
    @classmethod
    def _q20(cls, v):
        return None if v is None else list(_window(v, "q20_window", "b"))

    @field_validator("solver")
    @classmethod
    def _solver(cls, v):
        if v not in SOLVERS:
            raise ValueError(f"unknown density solver {v!r}; use one of {', '.join(SOLVERS)}")
        return v

    @field_validator("stencil")
    @classmethod
    def _stencil(cls, v):
        if v not in (2, 4, 6, 8):
            raise ValueError(f"stencil must be 2, 4, 6 or 8 (finite-difference order), got {v}")
        return v

    @field_validator("omega_max2")
    @classmethod
    def _omega(cls, v):
        if v is not None and v % 2 == 0:
            raise ValueError(f"omega_max2 is 2 Omega_max, an odd integer (9 for Omega <= 9/2), got {v}")
        return v

    @field_validator("compile")
    @classmethod
    def _compile(cls, v):
        if isinstance(v, str) and v != "auto":
            raise ValueError(f"compile must be true, false or \"auto\", got {v!r}")
        return v

    @field_validator("device")
    @classmethod
    def _device(cls, v):
        if v is not None and v.split(":")[0] not in ("cpu", "cuda"):
            raise ValueError(f"device must be cpu or cuda[:N], got {v!r}")
        return v

    @model_validator(mode="after")
    def _cross(self):
        kind = potential_kind(self.potential)
        given = self.model_fields_set
        if self.solver == "hf-bcs":
            if kind not in HF_POTENTIALS:
                raise ValueError(f"solver hf-bcs draws the thesis' ch. 3 fields sho or rnd, not `{self.potential}`")
            etf_only = sorted(given & ETF_ONLY_KEYS)
            if etf_only:
                raise ValueError(f"{', '.join(etf_only)} belong(s) to the ETF solver; solver hf-bcs takes "
                                 f"{', '.join(sorted(HF_ONLY_KEYS))} instead")
            if "coulomb" in given and self.coulomb:
                raise ValueError("solver hf-bcs has no Coulomb term (the thesis' ch. 3 set-up): set coulomb = false")
        else:
            hf_only = sorted(given & HF_ONLY_KEYS)
            if hf_only:
                raise ValueError(f"{', '.join(hf_only)} belong(s) to solver = \"hf-bcs\"; add it or remove them")
        if self.v0 is not None and kind != "random_ho":
            raise ValueError(f"v0 is the random_ho amplitude; potential `{self.potential}` does not use it "
                             f"(its keywords go in potential_kwargs: {', '.join(sorted(POTENTIAL_KEYWORDS[kind]))})")
        for k, x in (self.potential_kwargs or {}).items():
            if k not in POTENTIAL_KEYWORDS[kind]:
                raise ValueError(f"potential_kwargs: `{k}` is not a keyword of `{kind}` "
                                 f"(it takes {', '.join(sorted(POTENTIAL_KEYWORDS[kind]))})")
            _finite(x, f"potential_kwargs.{k}")
        pk = self.potential_kwargs or {}
        for lo, hi in (("v_min", "v_max"), ("mu2_min", "mu2_max")):
            if lo in pk and hi in pk and pk[lo] > pk[hi]:
                raise ValueError(f"potential_kwargs: {lo} = {pk[lo]} > {hi} = {pk[hi]}")
        for k in ("mu2_min", "r0", "k_max", "b_z", "b_perp", "q"):
            if k in pk and pk[k] <= 0:
                raise ValueError(f"potential_kwargs: {k} must be > 0, got {pk[k]}")
        if "n_shell" in pk and (pk["n_shell"] != int(pk["n_shell"]) or pk["n_shell"] < 0):
            raise ValueError(f"potential_kwargs: n_shell must be a non-negative integer, got {pk['n_shell']}")
        return self

    def generator_kwargs(self, *, only_set: bool = True) -> dict[str, Any]:
        """The keywords for :func:`generate_nuclear_densities`: by default only those the user wrote (so
        cache keys of existing specs do not change), with lists turned into the tuples it expects."""
        d = self.model_dump(exclude_unset=only_set)
        d = {k: v for k, v in d.items() if k in NuclearDensitiesParams.model_fields}
        for k in ("grid", "solve_box", "excitation_window", "q20_window"):
            if isinstance(d.get(k), list):
                d[k] = tuple(d[k])
        if isinstance(d.get("v0"), list):
            d["v0"] = tuple(d["v0"])
        if "potential_kwargs" in d and d["potential_kwargs"] is not None and "n_shell" in d["potential_kwargs"]:
            d["potential_kwargs"] = {**d["potential_kwargs"], "n_shell": int(d["potential_kwargs"]["n_shell"])}
        return d


def validate_generator_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Check keywords meant for :func:`generate_nuclear_densities`; BkError E0201 on the first bad one."""
    try:
        p = NuclearDensitiesParams(**kwargs)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err.get("loc", ())) or "(arguments)"
        if err.get("type") == "extra_forbidden":
            raise BkError("E0201", f"`nuclear_densities` has no parameter `{loc}`",
                          help=f"parameters: {', '.join(NuclearDensitiesParams.model_fields)}") from None
        raise BkError("E0201", f"bad value for `nuclear_densities.{loc}`: {err.get('msg', 'invalid value')}",
                      help="see docs/physics.md, 'Data-source parameters'") from None
    return p.generator_kwargs()
