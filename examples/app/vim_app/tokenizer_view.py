# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""The Tokenizer tab's work, without Gradio: an uploaded image through the tokenizer, its metrics and pictures."""

import colorsys
import math
import os
from dataclasses import dataclass

import numpy as np
import PIL.Image
import PIL.ImageDraw
import PIL.ImageFont
import PIL.ImageOps
import torch

from vit_vqgan_hf.evaluation import per_image_psnr, per_image_ssim
from vit_vqgan_hf.models.vit_vqgan import convert_to_rgb

from .errors import RequestError
from .uploads import open_upload


# torchmetrics' SSIM uses an 11x11 Gaussian window.
SSIM_MIN_SIDE = 11
# The longest side a display copy is upscaled to (by an integer factor, NEAREST, so the pixels stay visible).
DISPLAY_SIDE = 256


@dataclass
class TokenizerResult:
    """An image through the tokenizer: both images at its resolution, metrics and the tokens."""

    input_image: PIL.Image.Image
    reconstruction: PIL.Image.Image
    psnr: float
    ssim: float | None
    image_tokens: torch.LongTensor  # (grid, grid)
    code_counts: torch.LongTensor  # (codebook_size,)
    codebook_usage: float
    codebook_perplexity: float


def minimum_side(config) -> int:
    """The shortest image side the tab accepts: a quarter of the tokenizer's resolution, at least one patch."""
    return max(config.patch_size, config.image_size // 4)


def open_image(path: str | os.PathLike, config) -> PIL.Image.Image:
    """Open an uploaded file as an RGB image, or raise `RequestError` saying why it cannot be used."""
    name = os.path.basename(str(path))
    try:
        image = open_upload(path, config.image_size)
    except RequestError:
        raise
    except PIL.Image.DecompressionBombError:
        raise RequestError(f"{name!r} has too many pixels to open safely; upload a smaller image.") from None
    except (PIL.UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise RequestError(
            f"{name!r} is not an image this app can read. Upload a PNG, JPEG, WebP, GIF or BMP file."
        ) from None
    image = PIL.ImageOps.exif_transpose(image)
    least = minimum_side(config)
    if min(image.size) < least:
        raise RequestError(
            f"The image is {image.width}x{image.height} pixels, too small: this tokenizer works at "
            f"{config.image_size}x{config.image_size} and needs at least {least} pixels on the shorter side."
        )
    # Transparent areas on white, as the tokenizer's image processor and the training scripts convert them.
    return convert_to_rgb(image) if config.num_channels == 3 else image


def _to_pil(pixels: torch.Tensor) -> PIL.Image.Image:
    """`(channels, H, W)` in [0, 1] -> PIL."""
    array = (pixels.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return PIL.Image.fromarray(array if array.shape[-1] != 1 else array[..., 0])


@torch.no_grad()
def tokenize_image(tokenizer, image_processor, image: PIL.Image.Image) -> TokenizerResult:
    """Prepare `image` with the tokenizer folder's processor, encode and decode it, and measure the result."""
    pixel_values = image_processor(images=image, return_tensors="pt").pixel_values
    size = tokenizer.config.image_size
    if pixel_values.shape[-2:] != (size, size):
        raise RequestError(
            f"The tokenizer folder's image processor makes {pixel_values.shape[-2]}x{pixel_values.shape[-1]} images, "
            f"but the tokenizer expects {size}x{size}: its preprocessor_config.json does not match its config.json."
        )
    output = tokenizer(pixel_values.to(tokenizer.device))
    target = ((pixel_values.float() + 1) / 2).clamp(0, 1)
    reconstruction = ((output.reconstruction.float().cpu() + 1) / 2).clamp(0, 1)
    ssim = float(per_image_ssim(reconstruction, target)[0]) if size >= SSIM_MIN_SIDE else None
    return TokenizerResult(
        input_image=_to_pil(target[0]),
        reconstruction=_to_pil(reconstruction[0]),
        psnr=float(per_image_psnr(reconstruction, target)[0]),
        ssim=ssim,
        image_tokens=output.image_tokens[0].cpu(),
        code_counts=output.code_counts.cpu(),
        codebook_usage=float(output.codebook_usage),
        codebook_perplexity=float(output.codebook_perplexity),
    )


def upscale_for_display(image: PIL.Image.Image, side: int = DISPLAY_SIDE) -> PIL.Image.Image:
    """`image` enlarged by the largest integer factor that keeps it within `side` (nearest neighbour)."""
    factor = max(1, side // max(image.size))
    return image.resize((image.width * factor, image.height * factor), PIL.Image.Resampling.NEAREST)


def code_color(code: int) -> tuple[int, int, int]:
    """A color per code id, far apart for neighbouring ids (golden-ratio hues), so equal ids look alike."""
    hue = (code * 0.6180339887) % 1.0
    value = 0.95 if code % 2 == 0 else 0.8
    red, green, blue = colorsys.hsv_to_rgb(hue, 0.55, value)
    return round(red * 255), round(green * 255), round(blue * 255)


def token_grid_picture(image_tokens: torch.LongTensor, side: int = 512) -> PIL.Image.Image:
    """The token grid `(h, w)` as a picture: one colored square per token (one color per code id), with the id
    written in it when the grid is small enough to read."""
    height, width = image_tokens.shape
    cell = max(4, side // max(height, width))
    picture = PIL.Image.new("RGB", (width * cell, height * cell), "white")
    draw = PIL.ImageDraw.Draw(picture)
    digits = len(str(int(image_tokens.max()))) if image_tokens.numel() else 1
    font_size = min(cell // 2, int(cell * 1.6 / max(digits, 1)))
    font = PIL.ImageFont.load_default(size=font_size) if font_size >= 8 else None
    for row in range(height):
        for column in range(width):
            code = int(image_tokens[row, column])
            box = (column * cell, row * cell, (column + 1) * cell - 1, (row + 1) * cell - 1)
            draw.rectangle(box, fill=code_color(code), outline="white")
            if font is not None:
                center = (column * cell + cell / 2, row * cell + cell / 2)
                draw.text(center, str(code), fill="black", font=font, anchor="mm")
    return picture


def codebook_usage_picture(code_counts: torch.LongTensor, side: int = 512) -> PIL.Image.Image:
    """The whole codebook as a grid of squares, one per code in id order: gray for codes this image does not use,
    blue for the ones it uses, darker the more tokens use it."""
    counts = code_counts.double().numpy()
    columns = math.ceil(math.sqrt(2 * len(counts)))
    rows = math.ceil(len(counts) / columns)
    cell = max(2, side // columns)
    shade = np.zeros((rows * columns, 3))
    shade[:] = (228, 228, 228)
    used = counts > 0
    strength = np.log1p(counts[used]) / np.log1p(counts.max()) if used.any() else np.zeros(0)
    light, dark = np.array([150, 190, 240]), np.array([10, 50, 140])
    shade[: len(counts)][used] = light + strength[:, None] * (dark - light)
    shade[len(counts) :] = 255
    array = shade.reshape(rows, columns, 3).round().astype(np.uint8)
    picture = PIL.Image.fromarray(array).resize((columns * cell, rows * cell), PIL.Image.Resampling.NEAREST)
    if cell >= 6:  # a white line between the squares
        grid = np.asarray(picture).copy()
        grid[cell - 1 :: cell] = 255
        grid[:, cell - 1 :: cell] = 255
        picture = PIL.Image.fromarray(grid)
    return picture
