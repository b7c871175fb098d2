# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Write the Tokenizer tab's bundled examples into example_images/ (committed; rerun to remake them).

- digit_*.png: scikit-learn's 8x8 handwritten digits upscaled to 16x16 RGB exactly as `make demo` prepares its
  training images (examples/demo.py), from images of its validation split, so the demo's tokenizer never saw them.
- cat.jpg, coffee.jpg: scikit-image's `chelsea` and `coffee` photos (CC0), prepared as a 256x256 tokenizer sees them
  (`prepare_image`: shorter side resized, center crop), the resolution of the paper's ImageNet tokenizers.

    python examples/app/make_example_images.py     # needs scikit-learn and scikit-image (the training/test extras)
"""

from pathlib import Path

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F

from vit_vqgan_hf.models.vit_vqgan import prepare_image
from vit_vqgan_hf.utils.errors import command_line_errors


OUTPUT_DIR = Path(__file__).resolve().parent / "example_images"
# Validation-split images of `make demo` (seed 0) of the digits 0, 3 and 7.
DIGITS = {"digit_0.png": 78, "digit_3.png": 45, "digit_7.png": 81}


def write_digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    for name, index in DIGITS.items():
        image = torch.tensor(digits.images[index], dtype=torch.float32)[None, None] / 16.0
        image = F.interpolate(image, size=16, mode="bilinear", align_corners=False).clamp(0, 1)
        pixels = (image[0, 0] * 255).round().to(torch.uint8).numpy()
        PIL.Image.fromarray(pixels).convert("RGB").save(OUTPUT_DIR / name, optimize=True)


def write_photos(side: int = 256):
    from skimage import data

    for name, pixels in (("cat.jpg", data.chelsea()), ("coffee.jpg", data.coffee())):
        image = prepare_image(PIL.Image.fromarray(np.asarray(pixels)), side)
        image.save(OUTPUT_DIR / name, quality=88, optimize=True)


if __name__ == "__main__":
    with command_line_errors():
        OUTPUT_DIR.mkdir(exist_ok=True)
        write_digits()
        write_photos()
        for path in sorted(OUTPUT_DIR.iterdir()):
            print(f"{path} ({path.stat().st_size} bytes)")
