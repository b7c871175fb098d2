"""One image preparation on every path: the tokenizer folder's image processor (what `AutoImageProcessor` gives
transformers users), `prepare_image` / `images_to_pixel_values`, the training transform, the evaluation image sets,
the pipeline's `image=` input and the app's Tokenizer tab give identical pixel values for every size and mode."""

import io
import sys
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from transformers import AutoImageProcessor

from tests.testing_utils import tiny_pipeline, tiny_tokenizer, tiny_transformer
from vit_vqgan_hf.evaluation import ImageFolderSet
from vit_vqgan_hf.models.vit_vqgan import create_image_processor, images_to_pixel_values, prepare_image
from vit_vqgan_hf.training.data import ImageTransform


APP_DIR = Path(__file__).resolve().parents[1] / "examples" / "app"
if str(APP_DIR) not in sys.path:
    sys.path.insert(0, str(APP_DIR))

from vim_app.loading import load_tokenizer  # noqa: E402
from vim_app.tokenizer_view import open_image, tokenize_image  # noqa: E402


# Square, odd margins, sizes whose resized longer side rounds and truncates differently (45 * 32 / 29 = 49.66),
# upscaled, and extreme aspect ratios; the shortest side is at least the app's minimum (8 for a 32-pixel tokenizer).
SIZES = [(32, 32), (33, 33), (45, 29), (29, 45), (17, 13), (8, 300), (401, 9), (257, 599)]
MODES = ["RGB", "RGBA", "LA", "P-transparency", "L", "I;16", "CMYK"]


def image_of(width: int, height: int, mode: str) -> PIL.Image.Image:
    """Smooth random colors (upsampled noise) in `mode`; transparent modes get an alpha ramp from 0 to 255."""
    rng = np.random.default_rng(width * 1000 + height)
    base = PIL.Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize((width, height))
    alpha = PIL.Image.fromarray(np.linspace(0, 255, width * height).reshape(height, width).astype(np.uint8))
    if mode == "RGBA":
        base.putalpha(alpha)
        return base
    if mode == "LA":
        grey = base.convert("L")
        grey.putalpha(alpha)
        return grey
    if mode == "P-transparency":
        palette = base.quantize(16)
        palette.info["transparency"] = 0
        return palette
    if mode == "I;16":
        # 16-bit values up to 1020: PIL's conversion, and so the processor's, keeps those up to 255 and clips the rest.
        return PIL.Image.fromarray(np.asarray(base.convert("L"), dtype=np.uint16) * 4)
    return base.convert(mode)


def saved(image: PIL.Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="TIFF" if image.mode == "CMYK" else "PNG")
    return buffer.getvalue()


class EncoderInputs:
    """The pixel values that reach a tokenizer's encoder, recorded by a forward pre-hook."""

    def __init__(self, tokenizer):
        self.inputs = []
        tokenizer.encoder.register_forward_pre_hook(lambda module, args: self.inputs.append(args[0].detach().clone()))

    def last(self) -> torch.Tensor:
        return self.inputs[-1]


@pytest.fixture(scope="module")
def tokenizer_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tokenizer")
    tokenizer = tiny_tokenizer()
    tokenizer.save_pretrained(folder)
    create_image_processor(tokenizer.config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def image_files(tmp_path_factory):
    """Every size in every mode, saved in a format that keeps the mode (`<mode>/<width>x<height>.png`)."""
    root = tmp_path_factory.mktemp("images")
    files = {}
    for mode in MODES:
        for width, height in SIZES:
            path = root / mode / f"{width:03d}x{height:03d}.{'tif' if mode == 'CMYK' else 'png'}"
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(saved(image_of(width, height, mode)))
            files[mode, width, height] = path
    return files


def test_every_path_prepares_every_image_alike(tokenizer_folder, image_files):
    processor = AutoImageProcessor.from_pretrained(tokenizer_folder, backend="pil")
    app_tokenizer = load_tokenizer(str(tokenizer_folder), None, "none", torch.device("cpu"), torch.float32)
    size = app_tokenizer.model.config.image_size
    app_inputs = EncoderInputs(app_tokenizer.model)
    config = app_tokenizer.model.config
    transformer = tiny_transformer(codebook_size=config.codebook_size, token_grid_size=size // config.patch_size)
    pipeline = tiny_pipeline(tokenizer=tiny_tokenizer(), transformer=transformer)
    pipeline_inputs = EncoderInputs(pipeline.vqgan)
    transform = ImageTransform(size)
    evaluation_set = ImageFolderSet(next(iter(image_files.values())).parents[1], resolution=size)
    evaluation_index = {path: index for index, path in enumerate(evaluation_set.files)}

    for (mode, width, height), path in image_files.items():
        case = f"{mode} {width}x{height}"
        with PIL.Image.open(path) as opened:
            image = opened.copy()
        assert image.mode == ("P" if mode == "P-transparency" else mode), case
        expected = processor(image, return_tensors="pt").pixel_values

        paths = {
            "images_to_pixel_values": images_to_pixel_values(image, size),
            "training transform": transform({"bytes": path.read_bytes(), "path": None}, generator=None)[None],
            "evaluation image set": evaluation_set[evaluation_index[path]]["images"][None].float() / 127.5 - 1,
        }
        pipeline.prepare_image_tokens(image, None, 1, 1, torch.device("cpu"))
        paths["pipeline image="] = pipeline_inputs.last()
        tokenize_image(app_tokenizer.model, app_tokenizer.image_processor, open_image(path, config))
        paths["app"] = app_inputs.last()

        assert expected.shape == (1, 3, size, size), case
        for name, pixel_values in paths.items():
            assert torch.equal(pixel_values, expected), f"{name}: {case}"


def test_transparency_is_white_and_sixteen_bits_clip_as_pil_converts_them():
    clear = PIL.Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    for image in (clear, clear.convert("LA"), PIL.Image.new("RGBA", (8, 8), (0, 0, 0, 0))):
        assert torch.equal(images_to_pixel_values(image, 8), torch.ones(1, 3, 8, 8))
    assert prepare_image(PIL.Image.new("RGBA", (8, 8), (0, 0, 0, 128)), 8).getpixel((3, 3)) == (127, 127, 127)
    sixteen_bits = PIL.Image.fromarray(np.array([[100, 300]] * 2, dtype=np.uint16))
    assert np.asarray(prepare_image(sixteen_bits, 2))[..., 0].tolist() == [[100, 255]] * 2
