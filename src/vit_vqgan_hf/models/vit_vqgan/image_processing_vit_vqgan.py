# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""How images become a ViT-VQGAN tokenizer's input, written once: color conversion ([`convert_to_rgb`]), shorter-side
resize and central crop ([`resize_center_crop`]), both ([`prepare_image`]), and pixel values in `[-1, 1]`
([`pil_to_pixel_values`], [`images_to_pixel_values`]). The training loaders, the evaluation image sets, the pipeline's
`image=` input and the app all prepare images with these functions.

They reproduce, pixel for pixel, the stock transformers image processor saved next to every tokenizer
([`create_image_processor`]), which is what `AutoImageProcessor.from_pretrained(folder)` gives anyone who uses a
tokenizer without this package. The processor is the reference, because it is the part that cannot change: it is a
transformers class, so its rules (the longer side truncated to an integer, odd crop margins floored, transparency
composited on white, other modes through PIL's conversion) are what a published tokenizer's users feed it, and a
tokenizer trained or evaluated on other pixels would be measured on inputs its users never give it.
"""

import numpy as np
import PIL.Image
import torch
from transformers import BitImageProcessorPil
from transformers.image_transforms import convert_to_rgb as _transformers_convert_to_rgb

from .configuration_vit_vqgan import VitVqganConfig


def convert_to_rgb(image: PIL.Image.Image) -> PIL.Image.Image:
    """
    An image of any PIL mode in 8-bit RGB, as the tokenizer's image processor converts it (transformers'
    `convert_to_rgb`, which it calls).

    - Images with transparency (an alpha band, as in `RGBA`, `LA`, `PA`, or a `transparency` entry, as in palette and
      RGB PNGs with a tRNS chunk) are composited on white, the way viewers show them on a page; dropping the alpha
      channel would instead reveal whatever color the encoder left under transparent pixels.
    - Every other mode (`L`, `1`, `P`, `CMYK`, `YCbCr`, `I;16`, `I`, `F`, ...) goes through PIL's conversion. For
      16-bit and float images that clips values above 255: convert such images to 8 bits first (for 16-bit ones,
      `image.point(lambda value: value / 257).convert("L")`) to keep their range.

    Args:
        image (`PIL.Image.Image`):
            The image.

    Returns:
        `PIL.Image.Image` in mode `RGB` (the image itself when it is RGB without transparency).

    Example:

    ```python
    >>> import PIL.Image
    >>> from vit_vqgan_hf.models.vit_vqgan import convert_to_rgb

    >>> convert_to_rgb(PIL.Image.new("RGBA", (2, 2), (255, 0, 0, 0))).getpixel((0, 0))
    (255, 255, 255)
    ```
    """
    if image.mode == "RGB" and image.info.get("transparency") is None:
        return image
    return PIL.Image.fromarray(_transformers_convert_to_rgb(image, return_numpy=True))


def resize_center_crop(
    image: PIL.Image.Image, size: int, resample: PIL.Image.Resampling = PIL.Image.Resampling.BICUBIC
) -> PIL.Image.Image:
    """
    Resize the shorter side to `size` and cut the central `size x size` square, with the sizes and offsets of
    transformers' image processors: the longer side becomes `int(size * longer / shorter)` (truncated), and an odd
    margin puts its extra pixel on the right or bottom (`(resized - size) // 2` on the left or top).

    Args:
        image (`PIL.Image.Image`):
            The image, in any mode.
        size (`int`):
            Side of the output square.
        resample (`PIL.Image.Resampling`, *optional*, defaults to `PIL.Image.Resampling.BICUBIC`):
            Resampling filter.

    Returns:
        `PIL.Image.Image` of size `(size, size)`.
    """
    width, height = image.size
    if width <= height:
        width, height = size, int(size * height / width)
    else:
        width, height = int(size * width / height), size
    left, top = (width - size) // 2, (height - size) // 2
    return image.resize((width, height), resample=resample).crop((left, top, left + size, top + size))


def prepare_image(image: PIL.Image.Image, size: int) -> PIL.Image.Image:
    """
    An image as a tokenizer of resolution `size` sees it: [`convert_to_rgb`], then [`resize_center_crop`] (bicubic).
    The same pixels as the tokenizer folder's image processor before its scaling to `[-1, 1]`.

    Args:
        image (`PIL.Image.Image`):
            The image, of any size and mode.
        size (`int`):
            The tokenizer's `image_size`.

    Returns:
        `PIL.Image.Image` in mode `RGB` of size `(size, size)`.

    Example:

    ```python
    >>> import PIL.Image
    >>> from vit_vqgan_hf.models.vit_vqgan import prepare_image

    >>> prepare_image(PIL.Image.new("LA", (300, 200)), 256).size
    (256, 256)
    ```
    """
    return resize_center_crop(convert_to_rgb(image), size)


def pil_to_pixel_values(image: PIL.Image.Image) -> torch.Tensor:
    """
    An RGB image as a float tensor of shape `(3, height, width)` in `[-1, 1]` (`pixels / 127.5 - 1`, equal to the
    image processor's `(pixels / 255 - 0.5) / 0.5` in float32).

    Args:
        image (`PIL.Image.Image`):
            Image in mode `RGB`.

    Returns:
        `torch.FloatTensor` of shape `(3, height, width)`.
    """
    array = np.asarray(image, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 127.5 - 1.0


def images_to_pixel_values(images: PIL.Image.Image | list[PIL.Image.Image], size: int) -> torch.Tensor:
    """
    A batch of pixel values for a tokenizer of resolution `size`: each image [`prepare_image`]d and scaled to
    `[-1, 1]`, as `image_processor(images, return_tensors="pt").pixel_values` of the tokenizer folder gives them.

    Args:
        images (`PIL.Image.Image` or `list[PIL.Image.Image]`):
            One image or a list of them, of any sizes and modes.
        size (`int`):
            The tokenizer's `image_size`.

    Returns:
        `torch.FloatTensor` of shape `(len(images), 3, size, size)`.
    """
    images = [images] if isinstance(images, PIL.Image.Image) else images
    return torch.stack([pil_to_pixel_values(prepare_image(image, size)) for image in images])


def create_image_processor(config: VitVqganConfig) -> BitImageProcessorPil:
    """
    The image processor saved next to every tokenizer this package writes, so that
    `AutoImageProcessor.from_pretrained(folder)` prepares images for it without this package: transformers' stock
    `BitImageProcessor` set to [`prepare_image`] (shorter side resized to `config.image_size` with bicubic resampling,
    central square crop) followed by `pixels / 127.5 - 1` (mean = std = 0.5). Its PIL backend
    (`AutoImageProcessor.from_pretrained(folder, backend="pil")`, the default without torchvision) gives exactly the
    pixels of [`images_to_pixel_values`]; the torchvision backend resamples differently by about one level in 255.

    Args:
        config ([`VitVqganConfig`]):
            The tokenizer's configuration; its `image_size` and `num_channels` set the output. Images are converted to
            RGB only for a 3-channel tokenizer (other channel counts take images of that many bands).

    Returns:
        `BitImageProcessorPil`, the PIL backend (this package needs no torchvision); it saves as `BitImageProcessor`.
    """
    return BitImageProcessorPil(
        size={"shortest_edge": config.image_size},
        crop_size={"height": config.image_size, "width": config.image_size},
        resample=PIL.Image.Resampling.BICUBIC,
        image_mean=[0.5] * config.num_channels,
        image_std=[0.5] * config.num_channels,
        do_convert_rgb=config.num_channels == 3,
    )


__all__ = [
    "convert_to_rgb",
    "create_image_processor",
    "images_to_pixel_values",
    "pil_to_pixel_values",
    "prepare_image",
    "resize_center_crop",
]
