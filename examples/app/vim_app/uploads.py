# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Uploaded images enter the app here, decoded within a pixel budget.

A compressed file can be tiny and decode huge: a 190 KB greyscale PNG of 13000x13000 pixels, under Pillow's own
decompression-bomb limit (89 MP), takes the server to gigabytes. [`open_upload`] reads the header only, lets a JPEG
decode at a reduced scale (`Image.draft`: 1/2, 1/4 or 1/8, still larger than the tokenizer needs) and refuses any
image that would still decode to more than [`MAX_UPLOAD_PIXELS`], before decoding it.
"""

import os
import warnings

import PIL.Image

from .errors import RequestError


# 4096 x 4096: 16 times the pixels of the paper's 256 x 256 tokenizer input, 64 MB as RGBA while it is prepared.
MAX_UPLOAD_PIXELS = 4096 * 4096


def open_upload(path: str | os.PathLike, needed_side: int) -> PIL.Image.Image:
    """
    Open and decode an uploaded image of at most `MAX_UPLOAD_PIXELS` pixels.

    Args:
        path (`str` or `os.PathLike`):
            The uploaded file.
        needed_side (`int`):
            The shorter side the image is resized to afterwards: a JPEG decodes at the smallest scale that keeps it.

    Returns:
        `PIL.Image.Image`: the decoded image (possibly of a JPEG's reduced scale).

    Raises:
        `RequestError`: for an image above the pixel budget. Unreadable files raise Pillow's errors, for the caller.
    """
    with warnings.catch_warnings():  # Pillow warns above 89 MP; the budget below is stricter
        warnings.simplefilter("ignore", PIL.Image.DecompressionBombWarning)
        image = PIL.Image.open(path)  # the header only
    if image.width * image.height > MAX_UPLOAD_PIXELS and image.format == "JPEG":
        scale = needed_side / min(image.size)
        image.draft(image.mode, (max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    if image.width * image.height > MAX_UPLOAD_PIXELS:
        name = os.path.basename(str(path))
        image.close()
        raise RequestError(
            f"{name!r} is {image.width}x{image.height} pixels, more than this app decodes "
            f"({MAX_UPLOAD_PIXELS:,} pixels, e.g. 4096x4096); upload a smaller image (the tokenizer works at "
            f"{needed_side}x{needed_side})."
        )
    image.load()
    return image


__all__ = ["MAX_UPLOAD_PIXELS", "open_upload"]
