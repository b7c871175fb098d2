# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""The image processor of a ViT-VQGAN tokenizer folder: a stock transformers processor, so that
`AutoImageProcessor.from_pretrained(folder)` works where this package is not installed."""

import PIL.Image
from transformers import BitImageProcessorPil

from .configuration_vit_vqgan import VitVqganConfig


def create_image_processor(config: VitVqganConfig) -> BitImageProcessorPil:
    """
    The image processor saved next to every tokenizer this package writes, so that
    `AutoImageProcessor.from_pretrained(folder)` prepares images for it without this package: transformers' stock
    `BitImageProcessor` set to the scripts' evaluation transform (shorter side resized to `config.image_size` with
    bicubic resampling, central square crop, `pixels / 127.5 - 1`, i.e. mean = std = 0.5). Its PIL backend
    (`AutoImageProcessor.from_pretrained(folder, backend="pil")`, the default without torchvision) gives the same
    pixels as `vit_vqgan_hf.training.data.resize_center_crop`, so results measured by the scripts can be reproduced
    with it; the torchvision backend resamples differently by about one level in 255.

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


__all__ = ["create_image_processor"]
