# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Decoding of the training images: a `datasets` image value (bytes, path or PIL image) of any mode to 8-bit RGB, and
RGB images to pixel values in `[-1, 1]`. Written with PIL and numpy (torchvision does not import next to the pinned
torch).
"""

import io

import numpy as np
import PIL.Image
import torch


# Modes whose last band is an alpha channel (premultiplied ones included); they are composited on white.
ALPHA_MODES = ("LA", "La", "RGBA", "RGBa", "PA")
# Integer modes whose values span 16 bits (16-bit PNGs and TIFFs open as one of these).
SIXTEEN_BIT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")


def to_rgb(image: PIL.Image.Image) -> PIL.Image.Image:
    """
    Convert a PIL image of any common mode to 8-bit RGB.

    - Transparent images (`LA`, `RGBA`, palette images with a transparency entry, ...) are composited on a white
      background, the way viewers show them on a page. Dropping the alpha channel instead would reveal whatever colour
      the encoder left under fully transparent pixels (often black or noise).
    - 16-bit integer images (`I;16*`, and `I`, which is how 16-bit PNGs may open) are scaled from `[0, 65535]` to
      `[0, 255]`; PIL's own conversion would clip every value above 255 to white.
    - Float images (`F`) are read as `[0, 1]` when their maximum is at most 1, as `[0, 255]` otherwise.
    - Grayscale (`L`, `1`), `CMYK`, `YCbCr`, palette and other modes use PIL's conversion.

    Args:
        image (`PIL.Image.Image`):
            The decoded image.

    Returns:
        `PIL.Image.Image` in mode `RGB`.

    Example:

    ```python
    >>> import PIL.Image
    >>> from vit_vqgan_hf.training.image_decoding import to_rgb

    >>> transparent = PIL.Image.new("RGBA", (2, 2), (255, 0, 0, 0))
    >>> to_rgb(transparent).getpixel((0, 0))
    (255, 255, 255)
    ```
    """
    if image.mode == "RGB":
        return image
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ALPHA_MODES:
        image = image.convert("RGBA")
        background = PIL.Image.new("RGBA", image.size, (255, 255, 255, 255))
        return PIL.Image.alpha_composite(background, image).convert("RGB")
    if image.mode in SIXTEEN_BIT_MODES or image.mode == "F":
        values = np.asarray(image, dtype=np.float32)
        if image.mode == "F":
            scale = 255.0 if values.size and values.max() <= 1.0 else 1.0
        else:
            scale = 255.0 / 65535.0
        gray = np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
        return PIL.Image.fromarray(gray, mode="L").convert("RGB")
    return image.convert("RGB")


def decode_image(value) -> PIL.Image.Image:
    """
    Decode one image of a `datasets` column into an RGB PIL image.

    Args:
        value (`dict`, `bytes`, `str` or `PIL.Image.Image`):
            A `{"bytes", "path"}` dictionary of an undecoded `datasets.Image` column, raw file bytes, a file path or
            an already decoded image.

    Returns:
        `PIL.Image.Image` in mode `RGB`, fully loaded.

    Raises:
        `OSError`, `ValueError` or another PIL exception for unreadable, truncated or unsupported files.
    """
    if isinstance(value, dict):
        value = value["bytes"] if value.get("bytes") is not None else value["path"]
    if isinstance(value, (bytes, bytearray)):
        value = io.BytesIO(value)
    image = value if isinstance(value, PIL.Image.Image) else PIL.Image.open(value)
    # `load()` reads the whole file now, so that a truncated image fails here and not later in a crop.
    image.load()
    return to_rgb(image)


def pil_to_pixel_values(image: PIL.Image.Image) -> torch.Tensor:
    """
    Convert an RGB PIL image to a float tensor of shape `(3, height, width)` in `[-1, 1]` (`pixels / 127.5 - 1`).

    Args:
        image (`PIL.Image.Image`):
            Image in mode `RGB`.

    Returns:
        `torch.FloatTensor` of shape `(3, height, width)`.
    """
    array = np.asarray(image, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 127.5 - 1.0


__all__ = ["ALPHA_MODES", "SIXTEEN_BIT_MODES", "decode_image", "pil_to_pixel_values", "to_rgb"]
