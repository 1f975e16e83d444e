"""The text_bytes corpus: every file, cached, cut per file, split by file, capped by max_bytes."""

import torch

from bkdsl.train.corpus import byte_windows, corpus_files, load_corpus
from bkdsl.train.data import split_indices
from bkdsl.components.data_sources import text_bytes_dataset


def _tree(root, n=12, size=300):
    (root / "pkg").mkdir()
    (root / "site-packages").mkdir()
    (root / "site-packages" / "third.py").write_text("x = 'not stdlib'\n" * 50)
    for i in range(n):
        where = root / "pkg" if i % 2 else root
        # each file's bytes are all one letter: a window's file is readable from its content
        (where / f"m{i:02d}.py").write_bytes(bytes([65 + i]) * (size + 7 * i))


def test_files_sorted_and_third_party_left_out(tmp_path):
    _tree(tmp_path)
    names = [f.relative_to(tmp_path).as_posix() for f in corpus_files(tmp_path)]
    assert names == sorted(names) and len(names) == 12
    assert not any("site-packages" in n for n in names)


def test_cache_roundtrip_and_rebuild_on_change(tmp_path, monkeypatch):
    monkeypatch.setenv("BKDSL_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "src"
    root.mkdir()
    _tree(root)
    a = load_corpus(root)
    entries = list((tmp_path / "cache" / "corpus").glob("*.safetensors"))
    assert len(entries) == 1
    b = load_corpus(root)
    assert torch.equal(a.data, b.data) and torch.equal(a.offsets, b.offsets) and a.names == b.names
    assert a.nbytes == sum(f.stat().st_size for f in corpus_files(root))
    (root / "m00.py").write_bytes(b"Z" * 999)  # an edited file changes the key
    c = load_corpus(root)
    assert bytes(c.file_bytes(c.names.index("m00.py")).tolist()) == b"Z" * 999
    newest = max((tmp_path / "cache" / "corpus").glob("*.safetensors"), key=lambda p: p.stat().st_mtime_ns)
    newest.write_bytes(b"garbage")  # a corrupt entry is rebuilt, not trusted
    d = load_corpus(root)
    assert torch.equal(d.data, c.data) and d.names == c.names
    assert load_corpus(root).nbytes == c.nbytes  # and the rebuilt entry reads back


def test_windows_are_whole_files_and_splits_never_share_a_file(tmp_path, monkeypatch):
    monkeypatch.setenv("BKDSL_CACHE", str(tmp_path / "cache"))
    _tree(tmp_path, n=12, size=200)
    ds = text_bytes_dataset(15, 10**9, str(tmp_path), seed=3)
    tok, groups = ds.fields["tokens"], ds.groups
    # one letter per window, one letter per group: windows never straddle two files
    assert (tok == tok[:, :1]).all()
    letters = {int(g): set(tok[groups == g, 0].tolist()) for g in groups.unique()}
    assert all(len(v) == 1 for v in letters.values()) and len(letters) == 12
    assert torch.equal(ds.fields["tokens"][:, 1:], ds.fields["targets"][:, :-1])
    parts = split_indices(len(tok), [0.5, 0.25, 0.25], seed=1, groups=groups)
    seen = [set(tok[idx, 0].tolist()) for idx in parts.values()]
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])


def test_max_bytes_caps_and_the_file_order_is_seeded(tmp_path, monkeypatch):
    monkeypatch.setenv("BKDSL_CACHE", str(tmp_path / "cache"))
    _tree(tmp_path, n=12, size=200)
    corpus = load_corpus(tmp_path)
    w1, g1, used1 = byte_windows(corpus, 15, 1000, seed=0)
    w2, _, used2 = byte_windows(corpus, 15, 1000, seed=0)
    w3, _, used3 = byte_windows(corpus, 15, 1000, seed=7)
    assert w1.numel() <= 1000 and torch.equal(w1, w2) and used1 == used2
    assert used1 != used3  # another seed samples other files
    full = byte_windows(corpus, 15, 10**9, seed=0)[2]
    assert len(full) == 12 and len(used1) < 12


def test_the_whole_standard_library_is_the_default(tmp_path, monkeypatch):
    monkeypatch.setenv("BKDSL_CACHE", str(tmp_path))
    corpus = load_corpus()
    assert len(corpus.names) > 500 and corpus.nbytes > 5_000_000, (len(corpus.names), corpus.nbytes)
    assert all(n.endswith(".py") for n in corpus.names)
