"""``file(path, name = field(key, unit = U, shape = [..], dtype = float), ...)``: samples read from a file.

Reads ``.npz`` (numpy, never with pickles), ``.h5`` / ``.hdf5`` (h5py; ``key`` may be a path
``group/dataset``) and ``.safetensors``. A file may record each field's unit — h5 attribute ``unit``;
in an npz a JSON object ``__units__`` (a 0-d string array); in safetensors the header metadata
``units`` (JSON) — and then a declared unit must have the same dimension (E0604) and the values are
converted to the declared unit (a file in keV read as MeV is scaled by 1e-3). ``check`` reads the
headers only (:func:`read_header`): an npz member's ``.npy`` header, h5 dataset metadata, the
safetensors JSON header.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pint
from pydantic import ConfigDict, Field

from bkdsl.components.data_sources import DataParams, DataSource
from bkdsl.components.fields import FieldInfo
from bkdsl.diagnostics import BkError, Span
from bkdsl.lazy import lazy_module
from bkdsl.registry import component
from bkdsl.semantics.units import UNIT_FORMAT, parse_unit, unit_str, ureg
from bkdsl.semantics.values import CallValue, Ref

if TYPE_CHECKING:
    from bkdsl.train.data import Dataset

torch = lazy_module("torch")  # reading samples only; `check` reads headers (bkdsl/lazy.py)
_data = lazy_module("bkdsl.train.data")

FILE_SUFFIXES = (".npz", ".h5", ".hdf5", ".safetensors")


# -- field declarations ------------------------------------------------------------------------
def unit_text(u: Any, span: Span | None = None) -> str | None:
    """A declared unit as text: from a string, a pint unit, or a quantity such as ``1 fm^-3``."""
    if u is None:
        return None
    if isinstance(u, str):
        return unit_str(parse_unit(u, span))
    if isinstance(u, pint.Quantity):
        if u.magnitude != 1:
            raise BkError("E0202", f"a field unit must be a unit, not the quantity {u:{UNIT_FORMAT}}", span=span,
                          help="write e.g. `unit = MeV`")
        return unit_str(u.units)
    if isinstance(u, pint.Unit):
        return unit_str(u)
    if isinstance(u, Ref):
        return unit_text(u.path, span)
    raise BkError("E0202", f"cannot read a unit from {u!r}", span=span, help="write e.g. `unit = MeV`")


def field_decl(name: str, v: Any, span: Span | None) -> FieldInfo:
    """``rho = field("density", unit = fm^-3, shape = [48, 128])`` → FieldInfo.

    Also accepted: ``rho = "density"`` (key only) and ``rho = field(unit = ...)`` (key = name)."""
    if isinstance(v, str):
        return FieldInfo(name, key=v, span=span)
    if isinstance(v, CallValue) and v.name == "field":
        sp = v.span or span
        key = v.args[0] if v.args else v.kwargs.get("key", name)
        if not isinstance(key, str):
            raise BkError("E0609", f"field `{name}`: the key in the file must be a string", span=sp,
                          help=f'write `{name} = field("name_in_file", unit = ...)`')
        unit = v.unit or v.kwargs.get("unit")
        shape = v.kwargs.get("shape")
        if shape is not None:
            if not isinstance(shape, (list, tuple)) or not all(isinstance(d, int) and d > 0 for d in shape):
                raise BkError("E0609", f"field `{name}`: shape must be a list of positive integers", span=sp,
                              help="e.g. `shape = [48, 128]` (per sample, without the sample dimension)")
            shape = tuple(shape)
        dtype = v.kwargs.get("dtype", "float")
        dtype = dtype.path if isinstance(dtype, Ref) else dtype
        if dtype not in ("float", "int"):
            raise BkError("E0609", f"field `{name}`: dtype must be float or int", span=sp)
        axes = v.kwargs.get("axes")
        axes = tuple(a.path if isinstance(a, Ref) else str(a) for a in axes) if axes else None
        odd = tuple(a.path if isinstance(a, Ref) else str(a) for a in v.kwargs.get("odd_under", ()))
        return FieldInfo(name, key=key, shape=shape, dtype=dtype, unit=unit_text(unit, sp), axes=axes,
                         odd_under=odd, span=sp)
    raise BkError("E0609", f"data field `{name}` must be declared with field(...) or a key string",
                  span=span, help=f'write `{name} = field("name_in_file", unit = MeV)`')


# -- file(...) ---------------------------------------------------------------------------------
def _unreadable(path: Path, why: str, span: Span | None) -> BkError:
    return BkError("E0605", f"cannot read data file `{path}`: {why}", span=span,
                   help=f"a data file is one of {', '.join(FILE_SUFFIXES)}; generate it with the spec's "
                        "script or check the path (relative paths are taken from the spec's directory)")


def _read_raw(path: Path, keys: list[str], span: Span | None) -> tuple[dict[str, np.ndarray], dict[str, str], list[str]]:
    """(arrays for the keys present, units recorded in the file, every key in the file)."""
    suffix = path.suffix.lower()
    if not path.exists():
        raise _unreadable(path, "no such file", span)
    if suffix not in FILE_SUFFIXES:
        raise _unreadable(path, f"unsupported format `{suffix or '(none)'}`", span)
    arrays: dict[str, np.ndarray] = {}
    units: dict[str, str] = {}
    try:
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                avail = [k for k in z.files if k != "__units__"]
                if "__units__" in z.files:
                    units = json.loads(str(z["__units__"]))
                for k in keys:
                    if k in z.files:
                        arrays[k] = z[k]
        elif suffix in (".h5", ".hdf5"):
            import h5py

            with h5py.File(path, "r") as f:
                avail = []
                f.visititems(lambda n, o: avail.append(n) if isinstance(o, h5py.Dataset) else None)
                for k in keys:
                    if k in f and isinstance(f[k], h5py.Dataset):
                        arrays[k] = f[k][()]
                        u = f[k].attrs.get("unit", f[k].attrs.get("units"))
                        if u is not None:
                            units[k] = u.decode() if isinstance(u, bytes) else str(u)
        else:
            from safetensors import safe_open

            with safe_open(str(path), framework="np") as f:
                avail = list(f.keys())
                meta = f.metadata() or {}
                if "units" in meta:
                    units = json.loads(meta["units"])
                for k in keys:
                    if k in avail:
                        arrays[k] = f.get_tensor(k)
    except BkError:
        raise
    except Exception as e:  # h5py/numpy/safetensors each raise their own types for a damaged file
        raise _unreadable(path, f"{type(e).__name__}: {e}", span) from None
    return arrays, units, avail


def _to_tensor(a: np.ndarray, inf: FieldInfo, path: Path) -> torch.Tensor:
    if a.dtype.kind in "fc":
        t = torch.from_numpy(np.ascontiguousarray(a))
        return t.to(torch.complex64 if a.dtype.kind == "c" else torch.float32)
    if a.dtype.kind in "iub":
        return torch.from_numpy(np.ascontiguousarray(a).astype(np.int64))
    raise BkError("E0605", f"field `{inf.name}` (`{inf.key}` in `{path}`) has unsupported dtype {a.dtype}",
                  span=inf.span, help="store numbers (float or integer arrays)")


def _resolve(path: str | Path, decls: dict[str, FieldInfo], span: Span | None,
             base_dir: str | Path | None) -> Path:
    """The file a ``file(...)`` source reads: ``path``, or relative to the spec's directory when it is
    relative and not found as given; E0609 when it declares no field (shared by read and header)."""
    p = Path(path)
    if not p.is_absolute() and base_dir is not None and not p.exists():
        p = Path(base_dir) / p
    if not decls:
        raise BkError("E0609", f"file(\"{path}\") declares no fields", span=span,
                      help='declare the fields to read: `file("d.h5", E = field("energy", unit = MeV))`')
    return p


def _require_key(name: str, key: str, held, p: Path, span: Span | None) -> None:
    """E0601 when the file holds no ``key`` (the stored name of declared field ``name``)."""
    if key not in held:
        raise BkError("E0601", f"field `{name}`: `{key}` is not in `{p}`", span=span,
                      label=f"`{name}` declared here",
                      help=f"the file holds: {', '.join(sorted(held)) or 'nothing'}")


def read_file(path: str | Path, decls: dict[str, FieldInfo], span: Span | None = None,
              base_dir: str | Path | None = None) -> Dataset:
    """Read the declared fields of an npz/h5/safetensors file into a validated-shape Dataset."""
    p = _resolve(path, decls, span, base_dir)
    arrays, units, avail = _read_raw(p, [d.key or d.name for d in decls.values()], span)
    fields: dict[str, torch.Tensor] = {}
    info: dict[str, FieldInfo] = {}
    for name, d in decls.items():
        key = d.key or name
        _require_key(name, key, avail, p, d.span or span)
        a = arrays[key]
        scale = 1.0
        if key in units:
            try:
                file_u = ureg.parse_units(units[key].replace("^", "**"))
            except Exception:
                raise BkError("E0604", f"field `{name}`: the file records an unreadable unit `{units[key]}`",
                              span=d.span or span, help="fix the unit attribute in the file") from None
            if d.unit is None:
                d = FieldInfo(**{**d.__dict__, "unit": unit_str(file_u)})
            else:
                want = ureg.parse_units(d.unit.replace("^", "**"))
                if ureg.Quantity(1.0, file_u).dimensionality != ureg.Quantity(1.0, want).dimensionality:
                    raise BkError("E0604",
                                  f"field `{name}` is declared in {d.unit} but `{key}` in `{p}` is in "
                                  f"{unit_str(file_u)}", span=d.span or span, label=f"`{name}` declared here",
                                  help=f"declare `unit = {unit_str(file_u)}` (or a unit of the same "
                                       "dimension; values are converted)")
                scale = float(ureg.Quantity(1.0, file_u).to(want).magnitude)
        if getattr(a, "dtype", None) is not None and a.dtype.kind == "c" and d.dtype != "complex":
            raise BkError("E0605", f"field `{name}`: `{key}` in `{p}` is complex-valued ({a.dtype}); fields are "
                                   "real", span=d.span or span, label=f"`{name}` declared here",
                          help=f"store the real and imaginary parts as two float datasets (e.g. `{key}_re`, "
                               f"`{key}_im`) and declare a field for each")
        t = _to_tensor(a, d, p)
        if d.dtype == "float" and not (t.is_floating_point() or t.is_complex()):
            t = t.float()
        if scale != 1.0:
            t = t * scale
        fields[name], info[name] = t, d
    return _data.Dataset(fields, info, meta={"source": "file", "path": str(p)})


def _header_raw(path: Path, span: Span | None) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """(shape of every array, units recorded in the file) from the file's headers alone: the npz
    members' ``.npy`` headers, h5 dataset metadata, the safetensors JSON header — no array is read."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise _unreadable(path, "no such file", span)
    if suffix not in FILE_SUFFIXES:
        raise _unreadable(path, f"unsupported format `{suffix or '(none)'}`", span)
    shapes: dict[str, tuple[int, ...]] = {}
    units: dict[str, str] = {}
    try:
        if suffix == ".npz":
            with zipfile.ZipFile(path) as zf:
                for name in zf.namelist():
                    key = name[:-4] if name.endswith(".npy") else name
                    with zf.open(name) as f:
                        major, _ = np.lib.format.read_magic(f)
                        read = (np.lib.format.read_array_header_1_0 if major == 1
                                else np.lib.format.read_array_header_2_0)
                        shape, _, _ = read(f)  # the .npy header only
                    if key == "__units__":
                        with np.load(path, allow_pickle=False) as z:
                            units = json.loads(str(z["__units__"]))
                    else:
                        shapes[key] = tuple(shape)
        elif suffix in (".h5", ".hdf5"):
            import h5py

            with h5py.File(path, "r") as f:
                def visit(n, o):
                    if isinstance(o, h5py.Dataset):
                        shapes[n] = tuple(o.shape)
                        u = o.attrs.get("unit", o.attrs.get("units"))
                        if u is not None:
                            units[n] = u.decode() if isinstance(u, bytes) else str(u)
                f.visititems(visit)
        else:
            from safetensors import safe_open

            with safe_open(str(path), framework="np") as f:
                for k in f.keys():
                    shapes[k] = tuple(f.get_slice(k).get_shape())
                meta = f.metadata() or {}
                if "units" in meta:
                    units = json.loads(meta["units"])
    except BkError:
        raise
    except Exception as e:  # each format raises its own types for a damaged file
        raise _unreadable(path, f"{type(e).__name__}: {e}", span) from None
    return shapes, units


def read_header(path: str | Path, decls: dict[str, FieldInfo], span: Span | None = None,
                base_dir: str | Path | None = None) -> dict[str, FieldInfo]:
    """What :func:`read_file` would produce, from the headers only: each declared field's per-sample
    shape and unit, with the same refusals (missing file or key E0605/E0601, unit of another dimension
    E0604, declared shape differing from the file's E0602). Used by ``bkdsl check``."""
    p = _resolve(path, decls, span, base_dir)
    shapes, units = _header_raw(p, span)
    out: dict[str, FieldInfo] = {}
    for name, d in decls.items():
        key = d.key or name
        _require_key(name, key, shapes, p, d.span or span)
        if not shapes[key]:
            raise BkError("E0602", f"field `{name}` (`{key}` in `{p}`) is a scalar, not one value per sample",
                          span=d.span or span, help="store the field with a leading sample dimension [N, ...]")
        per_sample = tuple(shapes[key][1:])
        if d.shape is not None and tuple(d.shape) != per_sample:
            raise BkError("E0602", f"field `{name}` has per-sample shape {list(per_sample)} in `{p}`, declared "
                                   f"{list(d.shape)}", span=d.span or span, label=f"`{name}` declared here",
                          help=f"fix the declaration `shape = {list(per_sample)}` or regenerate the file")
        unit = d.unit
        if key in units:
            try:
                file_u = ureg.parse_units(units[key].replace("^", "**"))
            except Exception:
                raise BkError("E0604", f"field `{name}`: the file records an unreadable unit `{units[key]}`",
                              span=d.span or span, help="fix the unit attribute in the file") from None
            if d.unit is None:
                unit = unit_str(file_u)
            elif (ureg.Quantity(1.0, file_u).dimensionality
                  != ureg.Quantity(1.0, ureg.parse_units(d.unit.replace("^", "**"))).dimensionality):
                raise BkError("E0604", f"field `{name}` is declared in {d.unit} but `{key}` in `{p}` is in "
                                       f"{unit_str(file_u)}", span=d.span or span, label=f"`{name}` declared here",
                              help=f"declare `unit = {unit_str(file_u)}` (or a unit of the same dimension; "
                                   "values are converted)")
        out[name] = FieldInfo(**{**d.__dict__, "shape": per_sample, "unit": unit})
    return out


# -- the registered source -----------------------------------------------------------------------
class FileParams(DataParams):
    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)
    path: str = Field(description="the data file (.npz, .h5/.hdf5, .safetensors)")


@component("file", kind="data", positional=("path",))
class FileSource(DataSource):
    """Fields read from a data file (.npz, .h5/.hdf5, .safetensors); each field declared with its shape and unit."""

    Params = FileParams

    def load(self, *, seed: int, base_dir: str | None = None):
        return read_file(self.params.path, self.fields(), span=self.span, base_dir=base_dir)

    def header(self, *, base_dir: str | None = None) -> dict:
        return read_header(self.params.path, self.fields(), span=self.span, base_dir=base_dir)

    def fields(self) -> dict:
        call = getattr(self, "call", None)
        extra = dict(self.params.model_extra or {})
        return {n: field_decl(n, v, (call.arg_spans.get(n) if call else None) or self.span)
                for n, v in extra.items()}
