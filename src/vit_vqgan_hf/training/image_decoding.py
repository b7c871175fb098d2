# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Decoding of the training images: a `datasets` image value (bytes, path or PIL image) of any mode to 8-bit RGB, with
the tokenizer's color conversion (`vit_vqgan_hf.models.vit_vqgan.convert_to_rgb`, the one of its image processor).
"""

import io

import PIL.Image

from ..models.vit_vqgan import convert_to_rgb


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
    return convert_to_rgb(image)


__all__ = ["decode_image"]
