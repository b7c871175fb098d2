# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""The Completion tab's work, without Gradio: an uploaded image whose top rows of tokens VIM keeps while it writes the
rest (`VimPipeline(image=..., num_prefix_rows=...)`), sampled and streamed like the Generate tab's images."""

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import PIL.Image
import torch

from vit_vqgan_hf.models.vit_vqgan import images_to_pixel_values

from .errors import RequestError
from .generation import GenerationRequest, as_whole_number, check_request
from .streaming import mask_unsampled, to_uint8_images
from .tokenizer_view import open_image


@dataclass
class CompletionRequest(GenerationRequest):
    """A checked completion: the sampling arguments of a `GenerationRequest`, the image and the rows it keeps."""

    image: PIL.Image.Image | None = None
    num_prefix_rows: int = 0

    file_prefix: ClassVar[str] = "completion"

    def settings(self) -> dict:
        return {**super().settings(), "num_prefix_rows": self.num_prefix_rows}

    def pipeline_kwargs(self) -> dict:
        # One image under the one label (or none): `num_images` completions of it, image i from seed + i.
        return {**super().pipeline_kwargs(), "image": [self.image], "num_prefix_rows": self.num_prefix_rows}


def check_completion_request(
    pipeline, path, num_prefix_rows, class_name, num_images, seed, guidance_scale, temperature, top_k, top_p,
    max_images: int, parallel_decoding=False,
) -> CompletionRequest:  # fmt: skip
    """Check the Completion tab's inputs: an image the pipeline's tokenizer can read and a number of rows to keep
    from 1 to one less than the token grid, then the sampling inputs as the Generate tab checks them."""
    if not path:
        raise RequestError("Upload an image to complete, or pick one of the examples.")
    image = open_image(path, pipeline.vqgan.config)
    num_prefix_rows = as_whole_number("The rows to keep", num_prefix_rows, 1, pipeline.token_grid_size - 1)
    request = check_request(
        pipeline, class_name, num_images, seed, guidance_scale, temperature, top_k, top_p, max_images,
        parallel_decoding,
    )  # fmt: skip
    return CompletionRequest(**vars(request), image=image, num_prefix_rows=num_prefix_rows)


@torch.no_grad()
def kept_rows_picture(pipeline, request: CompletionRequest) -> PIL.Image.Image:
    """The image as the pipeline prepares it (`images_to_pixel_values`, the pixels of the tokenizer's image
    processor), decoded from its tokens, with the rows VIM writes covered by the preview's checkerboard: what the
    completions start from."""
    pixel_values = images_to_pixel_values(request.image, pipeline.vqgan.config.image_size)
    vqgan = pipeline.vqgan
    pixel_values = pixel_values.to(vqgan.device, vqgan.dtype)
    pixels = to_uint8_images(vqgan.decode_tokens(vqgan.encode(pixel_values).image_tokens))
    grid = pipeline.token_grid_size
    masked = mask_unsampled(pixels, request.num_prefix_rows * grid, grid)
    return PIL.Image.fromarray(np.ascontiguousarray(masked[0]))
