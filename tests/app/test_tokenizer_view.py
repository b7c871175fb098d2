"""The Tokenizer tab's work: opening uploads, the figures of an image, and the pictures of its tokens."""

import numpy as np
import PIL.Image
import pytest
import torch
from vim_app.errors import RequestError
from vim_app.loading import load_tokenizer
from vim_app.tokenizer_view import (
    code_color,
    codebook_usage_picture,
    open_image,
    token_grid_picture,
    tokenize_image,
    upscale_for_display,
)

from vit_vqgan_hf.evaluation import per_image_psnr, per_image_ssim

from .conftest import APP_DIR


CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tokenizer(tiny_models):
    return load_tokenizer(str(tiny_models.tokenizer), None, "none", CPU, torch.float32)


def test_open_image_flattens_transparency_on_white_and_checks_the_size(tokenizer, tmp_path):
    config = tokenizer.model.config
    image = PIL.Image.new("RGBA", (8, 6), (255, 0, 0, 0))
    image.save(tmp_path / "clear.png")
    opened = open_image(tmp_path / "clear.png", config)
    assert opened.mode == "RGB" and opened.getpixel((0, 0)) == (255, 255, 255)
    PIL.Image.new("L", (40, 3)).save(tmp_path / "thin.png")
    with pytest.raises(RequestError, match=r"The image is 40x3 pixels, too small: .* at least 4 pixels"):
        open_image(tmp_path / "thin.png", config)


def test_figures_are_the_tokenizers_on_the_processed_image(tokenizer):
    image = PIL.Image.fromarray(np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8))
    result = tokenize_image(tokenizer.model, tokenizer.image_processor, image)
    pixel_values = tokenizer.image_processor(images=image, return_tensors="pt").pixel_values
    with torch.no_grad():
        output = tokenizer.model(pixel_values)
    target, reconstruction = (pixel_values + 1) / 2, ((output.reconstruction + 1) / 2).clamp(0, 1)
    assert result.psnr == pytest.approx(float(per_image_psnr(reconstruction, target)[0]))
    assert result.ssim == pytest.approx(float(per_image_ssim(reconstruction, target)[0]))
    torch.testing.assert_close(result.image_tokens, output.image_tokens[0])
    assert int(result.code_counts.sum()) == 64 and result.input_image.size == (16, 16)
    assert result.codebook_usage == pytest.approx(int((result.code_counts > 0).sum()) / 32)


def test_bf16_tokenizer_the_apps_gpu_setting(tiny_models):
    bf16 = load_tokenizer(str(tiny_models.tokenizer), None, "none", CPU, torch.bfloat16)
    assert bf16.model.dtype == torch.bfloat16
    image = PIL.Image.fromarray(np.random.default_rng(2).integers(0, 256, (16, 16, 3), dtype=np.uint8))
    result = tokenize_image(bf16.model, bf16.image_processor, image)
    assert np.isfinite(result.psnr) and result.reconstruction.size == (16, 16)


def test_token_grid_picture_colors_equal_ids_alike():
    tokens = torch.tensor([[3, 7], [7, 3]])
    picture = np.asarray(token_grid_picture(tokens, side=64))
    assert picture.shape == (64, 64, 3)
    # One color per id: the cells' centers away from the written id (a corner pixel inside each cell).
    corner = {(row, column): tuple(picture[row * 32 + 3, column * 32 + 3]) for row in range(2) for column in range(2)}
    assert corner[0, 0] == corner[1, 1] == code_color(3) and corner[0, 1] == corner[1, 0] == code_color(7)
    assert code_color(3) != code_color(7)


def test_codebook_picture_marks_the_used_codes():
    counts = torch.zeros(32, dtype=torch.long)
    counts[[0, 5]] = torch.tensor([1, 10])
    picture = np.asarray(codebook_usage_picture(counts, side=64))
    columns = 8  # ceil(sqrt(2 * 32))
    cell = 64 // columns
    colors = [
        tuple(map(int, picture[(code // columns) * cell + 1, (code % columns) * cell + 1])) for code in range(32)
    ]
    unused = {color for code, color in enumerate(colors) if code not in (0, 5)}
    assert unused == {(228, 228, 228)}
    assert sum(colors[5]) < sum(colors[0]) < 3 * 228  # used codes are blue, the more used darker


def test_upscale_keeps_pixels_whole():
    image = PIL.Image.fromarray(np.arange(48, dtype=np.uint8).reshape(4, 4, 3))
    large = upscale_for_display(image, side=50)
    assert large.size == (48, 48)
    np.testing.assert_array_equal(np.asarray(large)[::12, ::12], np.asarray(image))


def test_a_256_tokenizer_as_the_converter_writes_it(tmp_path):
    """A folder like scripts/convert_enhancing_transformers_to_hf.py's: 256x256, patch 8, 8192 codes, its processor."""
    from vit_vqgan_hf import VitVqganConfig, VitVqganModel
    from vit_vqgan_hf.models.vit_vqgan import create_image_processor

    sizes = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 40}
    config = VitVqganConfig.from_preset(
        "ss", **{f"{part}_{name}": value for part in ("encoder", "decoder") for name, value in sizes.items()}
    )
    VitVqganModel(config).save_pretrained(tmp_path / "converted")
    create_image_processor(config).save_pretrained(tmp_path / "converted")
    tokenizer = load_tokenizer(str(tmp_path / "converted"), None, "none", CPU, torch.float32)
    cat = open_image(APP_DIR / "example_images" / "cat.jpg", config)  # a bundled example
    result = tokenize_image(tokenizer.model, tokenizer.image_processor, cat)
    assert result.input_image.size == (256, 256) and result.image_tokens.shape == (32, 32)
    assert result.ssim is not None and result.code_counts.shape == (8192,)
    assert token_grid_picture(result.image_tokens).size == (512, 512)
    assert codebook_usage_picture(result.code_counts).size == (512, 256)
    with pytest.raises(RequestError, match="at least 64 pixels"):  # the 16x16 digits are too small for it
        open_image(APP_DIR / "example_images" / "digit_3.png", config)
