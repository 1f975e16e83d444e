import os

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _train_env(tmp_path_factory):
    """One thread (small models on a shared 2-core machine run ~1000x slower when OpenMP threads
    oversubscribe the cores) and a private dataset cache for every runner test."""
    old = {k: os.environ.get(k) for k in ("BKDSL_CACHE", "OMP_NUM_THREADS")}
    os.environ["BKDSL_CACHE"] = str(tmp_path_factory.mktemp("bkdsl-cache"))
    os.environ["OMP_NUM_THREADS"] = "1"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
