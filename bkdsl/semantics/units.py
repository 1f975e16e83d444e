"""Physical units through pint, at the boundary only.

Specs write quantities (``0.4 fm``, ``1e-3 fm^-3``, ``[0.6, 1.2] MeV*fm^1.5``); component schemas
declare the unit they want with :func:`quantity`, and receive a plain float *in that unit* — hot loops
never see pint. One :data:`ureg` serves the whole process (pint quantities from different registries
do not mix).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import pint
from pydantic import BeforeValidator

from bkdsl.cachedir import private_cache_dir
from bkdsl.diagnostics import BkError, Span


def unit_cache_folder() -> Path | None:
    """Where pint keeps its parsed unit definitions for the next start, or None (no cache).

    Parsing pint's definition files costs ~0.4 s at every start of ``bkdsl check``; with pint's own
    cache (``cache_folder``: the parsed definitions, keyed by a hash of the files) ~0.04 s. Its files are
    pickles pint writes and reads back, so the folder lies in bkdsl's private cache directory
    (:func:`bkdsl.cachedir.private_cache_dir`, the rule the Lark table cache follows);
    ``BKDSL_UNIT_CACHE=off`` parses the definitions every time."""
    if os.environ.get("BKDSL_UNIT_CACHE", "").strip().lower() in ("0", "off", "no", "false"):
        return None
    base = private_cache_dir()
    return None if base is None else base / f"pint-{pint.__version__}-{_install_key()}"


def _install_key() -> str:
    """A short hash of where pint is installed: pint's cached definitions hold the absolute paths of its
    definition files, so a cache written by another environment (a moved or re-created venv) is
    another folder, never a stale one read here."""
    return hashlib.sha256(str(Path(pint.__file__).resolve().parent).encode()).hexdigest()[:12]


def _unit_registry() -> pint.UnitRegistry:
    folder = unit_cache_folder()
    if folder is not None:
        try:
            return pint.UnitRegistry(autoconvert_offset_to_baseunit=True, cache_folder=folder)
        except Exception as e:  # noqa: BLE001 - e.g. a file another process is half-way writing: parse instead
            logging.getLogger(__name__).warning("unit cache %s unusable (%s: %s); parsing pint's definitions "
                                                "and clearing it", folder, type(e).__name__, e)
            shutil.rmtree(folder, ignore_errors=True)  # rebuilt by the next start, not read broken forever
    return pint.UnitRegistry(autoconvert_offset_to_baseunit=True)


ureg = _unit_registry()
ureg.define("barn_ = 100 * fm**2 = b")  # nuclear quadrupole moments are quoted in barn (1 b = 100 fm²)
Q_ = ureg.Quantity
DIMENSIONLESS = ureg.dimensionless


def parse_unit(text: str, span: Span | None = None) -> pint.Unit:
    """Parse a unit expression as written in a spec (``fm^-3``, ``MeV*fm^1.5``); E0202 if unknown."""
    try:
        u = ureg.parse_units(text.replace("^", "**"))
    except Exception as e:  # pint raises several exception types for bad unit text
        raise BkError("E0202", f"unknown unit `{text}`", span=span,
                      help=f"pint could not parse it ({type(e).__name__}); units are written like "
                           "`fm`, `MeV`, `fm^-3`, `MeV*fm^1.5`; for a product of a number and a name "
                           "write `2 * d`") from None
    return u


@pint.register_unit_format("bk")
def _bk_format(unit: Any, registry: Any, **options: Any) -> str:
    """pint's formatter in the spec's own style: symbols (the ``~`` flag gives them) joined by ``*``,
    powers with ``^``, positive powers first (``MeV*fm^-3``); ``1`` for a dimensionless unit."""
    items = sorted(unit.items(), key=lambda kv: (kv[1] < 0, kv[0]))
    return pint.formatter(items, [], as_ratio=False, product_fmt="*", power_fmt="{}^{}") or "1"


UNIT_FORMAT = "~bk"  # f"{u:~bk}" for a unit, f"{q:~bk}" for a quantity (``2.5 MeV*fm^-3``)


def unit_str(u: Any) -> str:
    """Spec-style text of a unit (``fm^-3``, ``MeV*fm^1.5``), parseable by :func:`parse_unit`; the one
    place units become text (pint's formatter registry, format ``~bk``)."""
    if isinstance(u, pint.Quantity):
        u = u.units
    if not isinstance(u, pint.Unit):
        try:
            u = ureg.Unit(u)
        except Exception:  # a dimensionality container, not a unit: show it as pint does
            return str(u)
    return format(u, UNIT_FORMAT)


def _converter(unit: str):
    target = ureg.parse_units(unit.replace("^", "**"))

    def conv(v: Any) -> Any:
        if isinstance(v, pint.Quantity):
            if not v.check(target) and not (v.dimensionless and target == DIMENSIONLESS):
                raise ValueError(f"expected a quantity in {unit_str(target)}, got {unit_str(v.units)}")
            m = v.to(target).magnitude
            return [float(x) for x in m] if isinstance(m, (list, tuple)) or hasattr(m, "__len__") else m
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, bool):
            raise ValueError("expected a number")
        if isinstance(v, (int, float)):
            if target == DIMENSIONLESS:
                return v
            raise ValueError(f"expected a quantity in {unit_str(target)} (a number with a unit, e.g. "
                             f"`{v} {unit_str(target)}`)")
        return v

    return conv


@dataclass(frozen=True)
class QuantityUnit:
    """Field metadata naming the unit a :func:`quantity` field is delivered in (read by the component
    catalogue, :mod:`bkdsl.catalog`; pydantic ignores metadata it does not know)."""

    unit: str


def quantity(unit: str, base: Any = float) -> Any:
    """A pydantic field type: a quantity convertible to ``unit``, delivered as a float in ``unit``."""
    return Annotated[base, BeforeValidator(_converter(unit)), QuantityUnit(unit)]
