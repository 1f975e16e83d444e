"""A content-addressed on-disk cache for generated datasets.

Solving a few thousand Skyrme problems takes minutes; a second run with the same source, parameters
and code must not solve them again. The key is

    sha256( canonical JSON of {source name, parameters, code version} )

where the *code version* is bkdsl's version plus a hash of the generator's source files, so editing the
generator invalidates old entries on its own. An entry is one safetensors file
``ROOT/<key[:2]>/<key>.safetensors`` whose header metadata holds the field declarations and the
parameters (readable with any safetensors tool, never unpickled). Entries are written to a temporary
file in the same directory and renamed into place, so a killed generator leaves no half entry; an entry
that fails to parse is regenerated.

ROOT is ``$BKDSL_CACHE`` if set, else ``.bkdsl-cache/`` under the working directory.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from bkdsl.train.data import Dataset, FieldInfo

log = logging.getLogger(__name__)


def cache_root() -> Path:
    return Path(os.environ.get("BKDSL_CACHE") or ".bkdsl-cache")


def code_version(*objs: Any) -> str:
    """bkdsl's version + sha256 of the source files that define ``objs`` (functions, classes, modules)."""
    import bkdsl

    h = hashlib.sha256(bkdsl.__version__.encode())
    h.update(f"py{sys.version_info.major}.{sys.version_info.minor}".encode())
    seen = set()
    for o in objs:
        try:
            f = inspect.getsourcefile(o)
        except TypeError:
            f = None
        if f and f not in seen:
            seen.add(f)
            h.update(Path(f).read_bytes())
    return h.hexdigest()[:16]


def _canon(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _canon(x) for k, x in sorted(v.items(), key=lambda kv: str(kv[0]))}
    if isinstance(v, (list, tuple)):
        return [_canon(x) for x in v]
    if isinstance(v, (bool, int, str)) or v is None:
        return v
    if isinstance(v, float):
        return repr(v)  # exact: 0.1 and 0.1000000001 are different keys
    from bkdsl.semantics.values import to_json

    return _canon(to_json(v))


def cache_key(source: str, params: dict[str, Any], version: str) -> str:
    text = json.dumps({"source": source, "params": _canon(params), "code": version}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class DatasetCache:
    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else cache_root()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.safetensors"

    def load(self, key: str) -> Dataset | None:
        p = self.path(key)
        if not p.exists():
            return None
        try:
            from safetensors import safe_open

            with safe_open(str(p), framework="pt") as f:
                meta = f.metadata() or {}
            tensors = load_file(str(p))
            info = {n: FieldInfo(**{**d, "shape": tuple(d["shape"]) if d["shape"] is not None else None,
                                    "axes": tuple(d["axes"]) if d.get("axes") else None,
                                    "odd_under": tuple(d.get("odd_under", ()))})
                    for n, d in json.loads(meta["fields"]).items()}
            groups = tensors.pop("__groups__", None)
            extra = json.loads(meta.get("meta", "{}"))
        except (SafetensorError, OSError, KeyError, ValueError, TypeError) as e:
            log.warning("dataset cache entry %s is unreadable (%s); regenerating", p, e)
            return None
        return Dataset(tensors, info, groups, extra)

    def store(self, key: str, ds: Dataset, params: dict[str, Any]) -> Path:
        p = self.path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.contiguous() for k, v in ds.fields.items()}
        if ds.groups is not None:
            tensors["__groups__"] = ds.groups.contiguous()
        meta = {"fields": json.dumps({n: i.to_json() for n, i in ds.info.items()}),
                "params": json.dumps(_canon(params)), "meta": json.dumps(ds.meta, default=str)}
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".tmp-", suffix=".safetensors")
        os.close(fd)
        try:
            save_file(tensors, tmp, metadata=meta)
            os.replace(tmp, p)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return p

    def get_or_create(self, source: str, params: dict[str, Any], version: str,
                      generate: Callable[[], Dataset]) -> tuple[Dataset, bool]:
        """The cached dataset for (source, params, version), generating it on a miss.

        Returns (dataset, hit)."""
        key = cache_key(source, params, version)
        ds = self.load(key)
        if ds is not None:
            log.info("dataset cache hit: %s (%s)", source, key[:12])
            return ds, True
        log.info("dataset cache miss: generating %s (%s)", source, key[:12])
        ds = generate()
        self.store(key, ds, params)
        return ds, False


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """A hash of named tensors' bytes (names, dtypes, shapes and values), independent of file layout."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        t = tensors[k].detach().cpu().contiguous()
        h.update(k.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
