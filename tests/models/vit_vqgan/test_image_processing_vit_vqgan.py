"""How images become a tokenizer's input, and the image processor saved with every tokenizer folder
(`create_image_processor`); tests/test_image_preparation.py checks that every path gives the same pixels."""

import numpy as np
import PIL.Image
import torch
from transformers import AutoImageProcessor

from tests.testing_utils import striped_image, tiny_tokenizer, tiny_tokenizer_config
from vit_vqgan_hf.models.vit_vqgan import (
    convert_to_rgb,
    create_image_processor,
    pil_to_pixel_values,
    resize_center_crop,
)
from vit_vqgan_hf.training.data import ImageTransform


def smooth_image(width: int, height: int, mode: str = "RGB") -> PIL.Image.Image:
    """Upsampled noise: detail at every position, no edges sharper than the resampling filters."""
    pixels = np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return PIL.Image.fromarray(pixels).resize((width, height), PIL.Image.Resampling.BICUBIC).convert(mode)


def test_the_saved_image_processor_prepares_images_as_the_scripts_evaluate_them(tmp_path):
    config = tiny_tokenizer_config()
    create_image_processor(config).save_pretrained(tmp_path)
    # A stock transformers class: the folder needs neither this package nor remote code to prepare images.
    image_processor = AutoImageProcessor.from_pretrained(tmp_path, backend="pil")
    transform = ImageTransform(config.image_size)

    def both(image):
        processed = image_processor(image, return_tensors="pt").pixel_values
        assert processed.shape == (1, 3, config.image_size, config.image_size)
        return processed[0], transform(image, generator=None)

    # Equal pixels, down- and upscaled, wide, tall, odd crop margins, greyscale.
    for width, height, mode in [(50, 50, "RGB"), (80, 50, "RGB"), (41, 97, "RGB"), (20, 27, "RGB"), (50, 61, "L")]:
        processed, expected = both(smooth_image(width, height, mode))
        assert torch.equal(processed, expected), (width, height, mode)

    pixel_values = image_processor([smooth_image(40, 70), smooth_image(90, 60)], return_tensors="pt").pixel_values
    assert pixel_values.min() >= -1 and pixel_values.max() <= 1
    assert tiny_tokenizer().encode(pixel_values).image_tokens.shape == (2, 8, 8)


def test_resize_center_crop_keeps_the_central_square():
    cropped = np.asarray(resize_center_crop(striped_image(90, 30), 16, resample=PIL.Image.Resampling.NEAREST))
    assert cropped.shape == (16, 16, 3)
    assert (cropped[..., 1] == 255).all() and (cropped[..., [0, 2]] == 0).all()
    assert resize_center_crop(PIL.Image.new("RGB", (30, 70)), 32).size == (32, 32)


def test_convert_to_rgb_palette_with_and_without_transparency():
    palette = PIL.Image.new("P", (2, 1))
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.putpixel((1, 0), 1)
    assert [convert_to_rgb(palette).getpixel((x, 0)) for x in range(2)] == [(255, 0, 0), (0, 0, 255)]
    palette.info["transparency"] = 0  # palette index 0 (red) is transparent
    assert [convert_to_rgb(palette).getpixel((x, 0)) for x in range(2)] == [(255, 255, 255), (0, 0, 255)]
    rgb = PIL.Image.new("RGB", (2, 2), (1, 2, 3))
    assert convert_to_rgb(rgb) is rgb


def test_pil_to_pixel_values_range():
    pixels = np.array([[[0, 255, 128]]], dtype=np.uint8)
    values = pil_to_pixel_values(PIL.Image.fromarray(pixels))
    assert values.shape == (3, 1, 1) and values.dtype == torch.float32
    torch.testing.assert_close(values.flatten(), torch.tensor([-1.0, 1.0, 128 / 127.5 - 1]))
