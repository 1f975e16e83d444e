import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """The physics tests are timed for 1 thread (oversubscribed OpenMP on a shared 2-core box is
    several times slower than one thread)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
