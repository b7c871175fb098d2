"""Uploads are decoded within the app's pixel budget: a small file that decodes huge is refused from its header, a
large JPEG decodes at a reduced scale, and neither takes the server's memory."""

import subprocess
import sys
import textwrap

import PIL.Image
import pytest
from vim_app.errors import RequestError
from vim_app.tokenizer_view import open_image
from vim_app.uploads import MAX_UPLOAD_PIXELS, open_upload

from vit_vqgan_hf import VitVqganConfig

from .conftest import APP_DIR


@pytest.fixture(scope="module")
def huge_uploads(tmp_path_factory):
    """A 13000x13000 greyscale PNG (a few hundred KB on disk, 169 MP decoded) and a JPEG of the same size."""
    folder = tmp_path_factory.mktemp("uploads")
    image = PIL.Image.new("L", (13000, 13000), 128)
    image.save(folder / "huge.png")
    image.save(folder / "huge.jpg", quality=50)
    return folder


def test_an_image_beyond_the_pixel_budget_is_refused_before_decoding(huge_uploads):
    assert (huge_uploads / "huge.png").stat().st_size < 1_000_000
    config = VitVqganConfig.from_preset("tiny")
    with pytest.raises(RequestError, match=r"'huge.png' is 13000x13000 pixels, more than this app decodes"):
        open_image(huge_uploads / "huge.png", config)


def test_a_large_jpeg_decodes_at_the_smallest_scale_the_tokenizer_needs(huge_uploads, tmp_path):
    image = open_upload(huge_uploads / "huge.jpg", needed_side=256)
    assert image.size == (1625, 1625)  # 1/8 scale: the shorter side stays above 256
    assert image.width * image.height <= MAX_UPLOAD_PIXELS
    # One within the budget is decoded as it is.
    PIL.Image.new("RGB", (300, 200)).save(tmp_path / "small.jpg")
    assert open_upload(tmp_path / "small.jpg", needed_side=256).size == (300, 200)


MEMORY_SCRIPT = textwrap.dedent(
    """
    import resource, sys
    sys.path.insert(0, sys.argv[1])
    from vim_app.errors import RequestError
    from vim_app.uploads import open_upload

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        open_upload(sys.argv[2] + "/huge.png", 256)
    except RequestError:
        pass
    image = open_upload(sys.argv[2] + "/huge.jpg", 256).convert("RGB")
    del image
    print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)
    """
)


def test_huge_uploads_cost_the_server_little_memory(huge_uploads):
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, str(APP_DIR), str(huge_uploads)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    # Decoded whole, the PNG alone would take 169 MB (and Gradio's copies, RGB, RGBA, several times that).
    assert int(result.stdout) < 100 * 2**20
