import collections

import pytest
import torch

from tests.testing_utils import tiny_pipeline, write_image_folder


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


@pytest.fixture(scope="module")
def pipe():
    """The tiny pipeline of `testing_utils.tiny_pipeline()` (16x16 images, 4x4 tokens of 29 codes, 3 classes), one per
    test module."""
    return tiny_pipeline()


@pytest.fixture(scope="session")
def pipeline_dir(tmp_path_factory):
    """The tiny pipeline of `testing_utils.tiny_pipeline()`, saved in a folder (read-only: tests do not change it)."""
    folder = tmp_path_factory.mktemp("pipeline")
    tiny_pipeline().save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory):
    """16 random images of 40x36 in two class folders, `cat` and `dog`, and one corrupt file in `cat` (read-only)."""
    sizes = [(40, 36)] * 8
    return write_image_folder(tmp_path_factory.mktemp("images"), {"cat": sizes, "dog": sizes}, corrupt=True)
