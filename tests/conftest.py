import collections

import pytest
import torch


# The tiny test models are dominated by per-op overhead, which a second thread only adds to (about 10x on a
# 2-core machine); subprocess tests (accelerate launch) choose their own thread counts.
torch.set_num_threads(1)


# Tensor methods that read a value back to the host: on a GPU, each waits for the device (and breaks a compiled graph).
HOST_SYNC_METHODS = ("item", "tolist", "__bool__", "__int__", "__float__", "__index__")


@pytest.fixture
def host_syncs(monkeypatch) -> collections.Counter:
    """Counts the calls of `HOST_SYNC_METHODS` for the rest of the test, by method name; `clear()` it to start."""
    calls = collections.Counter()

    def counting(name):
        original = getattr(torch.Tensor, name)

        def method(self, *args, **kwargs):
            calls[name] += 1
            return original(self, *args, **kwargs)

        return method

    for name in HOST_SYNC_METHODS:
        monkeypatch.setattr(torch.Tensor, name, counting(name))
    return calls
