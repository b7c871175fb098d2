import collections
import os
import shutil
import subprocess

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


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 2 MiB tmpfs to fill up (root only; skipped where it cannot be mounted)."""
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=True)


def fill_disk(folder):
    """Fill the file system of `folder` with a file until no byte is left; returns the file."""
    filler = folder / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(descriptor, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(descriptor)
    return filler
