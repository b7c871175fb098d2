# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Watch VIM paint: previews of the image tokens sampled so far, made by a `callback_on_step_end` of `VimPipeline`."""

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch


# Auto mode: previews may take at most this share of the sampling time, and come at most this often (the page cannot
# show more, and each one is an image per sample sent to the browser).
PREVIEW_BUDGET = 0.05
MIN_PREVIEW_INTERVAL = 0.1


@dataclass
class Preview:
    """The images of a batch decoded from its first `num_sampled` tokens per image."""

    num_sampled: int
    num_tokens: int
    pixels: np.ndarray  # (batch, height, width, 3) uint8, decoded from the sampled tokens and a filler
    num_calls: int = 0  # transformer calls so far


class TokenPreviewCallback:
    """
    A `callback_on_step_end` for [`VimPipeline`] that decodes the image tokens sampled so far and hands the pictures
    to `on_preview`, and interrupts the pipeline (`VimPipeline.interrupt`) when `stop_event` is set.

    A ViT-VQGAN decoder needs the whole token grid, so the positions not sampled yet are filled with each image's
    first token for decoding; [`mask_unsampled`] then shows them as a checkerboard. The last step is not previewed:
    the pipeline decodes the final tokens itself, and the callback keeps them (`image_tokens`) for the downloads.
    The pipeline calls it once per transformer call (`num_calls` counts them), after one token per image or, with
    speculative decoding, after several.

    Args:
        vqgan ([`VitVqganModel`]):
            The pipeline's tokenizer.
        num_tokens (`int`):
            Image tokens per image (`token_grid_size ** 2`).
        on_preview (`Callable[[Preview], None]`):
            Receives every preview; it runs on the sampling thread, so it should only hand the preview over.
        every (`int`, *optional*, defaults to `None`):
            Decode each time the tokens so far reach a multiple of `every`. `None` picks the interval from measured times: a preview is made once the
            sampling time since the last one is at least the last decode's time divided by `budget`, and at least
            `min_interval` seconds, so previews cost at most `budget` of the sampling time; and none when the tokens
            left should take less than `min_interval` at the pace so far, as the final images come about as soon.
        budget (`float`, *optional*, defaults to 0.05):
            The share of sampling time previews may take, for `every=None`.
        min_interval (`float`, *optional*, defaults to 0.1):
            The shortest time in seconds between two previews, for `every=None`.
        stop_event (`threading.Event`, *optional*, defaults to `None`):
            When set, the next step interrupts the pipeline and records the tokens sampled so far in `stopped_at`.
    """

    def __init__(
        self,
        vqgan,
        num_tokens: int,
        on_preview: Callable[[Preview], None],
        every: int | None = None,
        budget: float = PREVIEW_BUDGET,
        min_interval: float = MIN_PREVIEW_INTERVAL,
        stop_event: threading.Event | None = None,
    ):
        if every is not None and every < 1:
            raise ValueError(f"`every` must be a positive number of tokens or None, got {every}.")
        self.vqgan = vqgan
        self.num_tokens = num_tokens
        self.on_preview = on_preview
        self.every = every
        self.budget = budget
        self.min_interval = min_interval
        self.stop_event = stop_event
        self.image_tokens = None
        self.stopped_at = None
        self.num_previews = 0
        self.num_calls = 0
        self._last_num_sampled = None
        self.decode_seconds = 0.0
        self._last_decode_seconds = None
        self._start = self._sampling_since = time.perf_counter()

    def __call__(self, pipeline, step: int, timestep: int, callback_kwargs: dict) -> dict:
        num_sampled = step + 1
        self.num_calls += 1
        previous, self._last_num_sampled = self._last_num_sampled, num_sampled
        if self.stop_event is not None and self.stop_event.is_set():
            pipeline._interrupt = True
            self.stopped_at = num_sampled
            return {}
        image_tokens = callback_kwargs["image_tokens"]
        if num_sampled == self.num_tokens:
            self.image_tokens = image_tokens.clone()
        elif self._preview_due(num_sampled, previous):
            start = time.perf_counter()
            pixels = self.decode_partial(image_tokens)
            self.on_preview(Preview(num_sampled, self.num_tokens, pixels, self.num_calls))
            end = time.perf_counter()
            self._last_decode_seconds = end - start
            self.decode_seconds += end - start
            self.num_previews += 1
            self._sampling_since = end
        return {}

    def _preview_due(self, num_sampled: int, previous: int | None) -> bool:
        if self.every is not None:  # a call may sample several tokens: did this one reach the next multiple?
            return (
                previous is None
                and num_sampled % self.every == 0
                or (previous is not None and num_sampled // self.every > previous // self.every)
            )
        now = time.perf_counter()
        remaining = (now - self._start) / num_sampled * (self.num_tokens - num_sampled)
        if remaining < self.min_interval:
            return False
        waited = now - self._sampling_since
        if self._last_decode_seconds is None:
            return waited >= self.min_interval
        return waited >= max(self.min_interval, self._last_decode_seconds / self.budget)

    @torch.no_grad()
    def decode_partial(self, image_tokens: torch.LongTensor) -> np.ndarray:
        """Decode `(batch, num_sampled)` tokens, the rest filled with each image's first token; uint8 `(b, H, W, 3)`."""
        grid = torch.empty(
            image_tokens.shape[0], self.num_tokens, dtype=image_tokens.dtype, device=image_tokens.device
        )
        grid.copy_(image_tokens[:, :1].expand_as(grid))
        grid[:, : image_tokens.shape[1]] = image_tokens
        side = math.isqrt(self.num_tokens)
        return to_uint8_images(self.vqgan.decode_tokens(grid.view(-1, side, side)))


def to_uint8_images(pixels: torch.Tensor) -> np.ndarray:
    """Decoded pixels `(batch, 3, H, W)` in [-1, 1] as uint8 images `(batch, H, W, 3)`."""
    return ((pixels.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def mask_unsampled(pixels: np.ndarray, num_sampled: int, token_grid_size: int) -> np.ndarray:
    """
    Cover the image area of the tokens not sampled yet with a gray checkerboard (one square per token), so a preview
    shows where the raster scan is.

    Args:
        pixels (`np.ndarray` of shape `(batch, height, width, 3)`, uint8):
            Decoded images; height and width are multiples of `token_grid_size`.
        num_sampled (`int`):
            Tokens sampled per image, in raster order.
        token_grid_size (`int`):
            Tokens per side.

    Returns:
        `np.ndarray`, a masked copy of `pixels`.
    """
    height, width = pixels.shape[1:3]
    patch_h, patch_w = height // token_grid_size, width // token_grid_size
    rows, columns = np.divmod(np.arange(token_grid_size**2), token_grid_size)
    sampled = (np.arange(token_grid_size**2) < num_sampled).reshape(token_grid_size, token_grid_size)
    checker = np.where((rows + columns) % 2 == 0, 200, 150).astype(np.uint8).reshape(token_grid_size, token_grid_size)
    sampled = sampled.repeat(patch_h, axis=0).repeat(patch_w, axis=1)
    checker = checker.repeat(patch_h, axis=0).repeat(patch_w, axis=1)
    return np.where(sampled[None, :, :, None], pixels, checker[None, :, :, None])
