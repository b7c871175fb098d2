"""The image processor saved with every tokenizer folder (`create_image_processor`)."""

import numpy as np
import PIL.Image
import torch
from transformers import AutoImageProcessor

from tests.testing_utils import tiny_tokenizer, tiny_tokenizer_config
from vit_vqgan_hf.models.vit_vqgan import create_image_processor
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
