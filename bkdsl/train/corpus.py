"""The byte corpus behind ``text_bytes``: every ``.py`` file of the Python standard library (or of a
given root), read once into one cached byte array, cut into windows file by file.

Corpus.  All ``*.py`` under ``root`` (default ``sysconfig.get_paths()["stdlib"]``, about 1 800 files and
30 MB on CPython 3.12) except ``site-packages``/``dist-packages``/``__pycache__`` (third-party code that
differs between machines), in sorted relative-path order. Nothing is downloaded.

Cache.  The concatenated bytes and the file offsets are written once to
``<cache root>/corpus/<key>.safetensors`` (cache root: ``$BKDSL_CACHE`` or ``.bkdsl-cache``), the file
names in its JSON metadata; the key is sha256 of the root and every file's (relative path, size,
mtime), so an edited or added file rebuilds it. Written to a temporary file and renamed into place;
an entry that fails to parse is rebuilt. Never unpickled.

Windows.  Files are taken in an order seeded by ``seed`` (a permutation of the sorted list) until
``max_bytes`` is reached (the last file taken is truncated), so a small run reads a random sample of
files rather than the alphabetical head of the library. Each file is cut into ⌊len/(N+1)⌋
non-overlapping windows of N + 1 bytes (tokens = the first N, targets = the last N); the tail shorter
than a window is dropped. Every window carries its file's index as its *group*, and the data split
(:func:`bkdsl.train.data.split_indices`) sends whole groups to one split: no test file's bytes are
seen in training.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from bkdsl.diagnostics import BkError
from bkdsl.train.cache import cache_root

log = logging.getLogger(__name__)

_SKIP = frozenset({"site-packages", "dist-packages", "__pycache__"})


def corpus_files(root: str | Path | None = None) -> list[Path]:
    """The ``.py`` files under ``root`` (default: the standard library) in sorted relative-path order,
    without site-packages/dist-packages/__pycache__."""
    base = Path(root or sysconfig.get_paths()["stdlib"])
    files = [f for f in base.rglob("*.py") if f.is_file() and not (_SKIP & set(f.relative_to(base).parts))]
    return sorted(files, key=lambda f: f.relative_to(base).as_posix())


@dataclass(frozen=True)
class ByteCorpus:
    """Bytes of F files: ``data`` uint8 [total], file k is ``data[offsets[k]:offsets[k+1]]``."""

    data: torch.Tensor
    offsets: torch.Tensor
    names: tuple[str, ...]

    def file_bytes(self, k: int) -> torch.Tensor:
        return self.data[int(self.offsets[k]):int(self.offsets[k + 1])]

    @property
    def nbytes(self) -> int:
        return int(self.offsets[-1])


def _key(base: Path, files: list[Path]) -> str:
    h = hashlib.sha256(str(base.resolve()).encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(base).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _read(base: Path, files: list[Path]) -> ByteCorpus:
    chunks, names, offsets = [], [], [0]
    for f in files:
        try:
            b = f.read_bytes()
        except OSError as e:  # an unreadable file is left out, and said so
            log.warning("text corpus: skipping %s (%s)", f, e)
            continue
        chunks.append(np.frombuffer(b, dtype=np.uint8))
        names.append(f.relative_to(base).as_posix())
        offsets.append(offsets[-1] + len(b))
    data = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.uint8)
    return ByteCorpus(torch.from_numpy(data.copy()), torch.tensor(offsets, dtype=torch.int64), tuple(names))


def load_corpus(root: str | Path | None = None, *, cache: bool = True) -> ByteCorpus:
    """All files of :func:`corpus_files` (root) as one :class:`ByteCorpus`, from the cache when valid."""
    base = Path(root or sysconfig.get_paths()["stdlib"])
    files = corpus_files(base)
    if not files:
        raise BkError("E0605", f"text_bytes: no .py files under {base}", help="point `root` at a directory of .py files")
    if not cache:
        return _read(base, files)
    path = cache_root() / "corpus" / f"{_key(base, files)}.safetensors"
    if path.is_file():
        try:
            t = load_file(str(path))
            with safe_open(str(path), framework="pt") as fh:
                names = tuple(json.loads(fh.metadata()["names"]))
            if len(names) + 1 == t["offsets"].numel() and int(t["offsets"][-1]) == t["data"].numel():
                return ByteCorpus(t["data"], t["offsets"], names)
            log.warning("text corpus cache %s is inconsistent; rebuilding", path)
        except (SafetensorError, OSError, ValueError, KeyError) as e:
            log.warning("text corpus cache %s unreadable (%s); rebuilding", path, e)
    corpus = _read(base, files)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        save_file({"data": corpus.data, "offsets": corpus.offsets}, tmp,
                  metadata={"names": json.dumps(list(corpus.names)), "root": str(base)})
        os.replace(tmp, path)
    except OSError as e:  # a read-only or full cache directory costs a re-read next time, nothing more
        log.warning("text corpus: could not write the cache %s (%s)", path, e)
    return corpus


def byte_windows(corpus: ByteCorpus, seq_len: int, max_bytes: int, seed: int
                 ) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """(windows int64 [M, seq_len + 1], groups int64 [M], file names used) — module docstring.

    Files in a seeded order until ``max_bytes``; each cut into whole windows; group = the file's
    position in the names returned.
    """
    w = seq_len + 1
    order = torch.randperm(len(corpus.names), generator=torch.Generator().manual_seed(int(seed)))
    wins, groups, used, total = [], [], [], 0
    for k in order.tolist():
        if max_bytes - total < w:
            break
        b = corpus.file_bytes(k)[: max_bytes - total]
        n = b.numel() // w
        if n == 0:
            continue
        total += n * w
        wins.append(b[: n * w].view(n, w))
        groups.append(torch.full((n,), len(used), dtype=torch.int64))
        used.append(corpus.names[k])
    if not wins:
        raise BkError("E0605", f"text_bytes: no file holds a whole window of {w} bytes within max_bytes = {max_bytes}",
                      help="lower seq_len or raise max_bytes")
    return torch.cat(wins).to(torch.int64), torch.cat(groups), tuple(used)
