# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""The token-level sampling that both of `VimPipeline`'s token loops (sequential and speculative Jacobi decoding) share:
the random numbers of every image, drawn up front, transformers' logits warpers, classifier-free guidance, and
inverse-CDF sampling."""

import torch
from transformers import LogitsProcessorList
from transformers.generation import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper


class VimTokenSamplingMixin:
    """Sampling helpers of [`VimPipeline`], which provides `num_image_tokens`."""

    def prepare_noise(
        self, num_images: int, generator, device: torch.device, draws_per_token: int = 1
    ) -> torch.Tensor:
        r"""
        Draw the randomness of each image up front: `draws_per_token` uniform numbers in `[0, 1)` per image token
        (1 for sequential decoding, see `jacobi_draws_per_token` for speculative decoding), `(num_images,
        num_image_tokens * draws_per_token)` in float32. With a list of generators, row `i` comes from `generator[i]` alone; with one
        generator, the rows are drawn from it in image order. Sampling then picks the token whose cumulative
        probability interval holds the number (inverse-CDF sampling), so an image's tokens depend on its own row only,
        not on the batch or chunk it is sampled in.
        """
        shape = (num_images, self.num_image_tokens * draws_per_token)
        if isinstance(generator, list):
            if len(generator) != num_images:
                raise ValueError(
                    f"Got {len(generator)} generators for {num_images} sampled images; pass one per image (per "
                    "completion; with rejection sampling, per candidate: see `acceptance_rate`) or a single generator."
                )
            rows = [torch.rand(shape[1:], generator=g, device=g.device, dtype=torch.float32) for g in generator]
            return torch.stack(rows).to(device)
        generator_device = generator.device if generator is not None else device
        return torch.rand(shape, generator=generator, device=generator_device, dtype=torch.float32).to(device)

    @staticmethod
    def prepare_logits_processor(temperature: float, top_k: int | None, top_p: float | None) -> LogitsProcessorList:
        """transformers' warpers of the sampling settings, in `generate()`'s order: temperature, top-k, top-p."""
        logits_processor = LogitsProcessorList()
        if temperature != 1.0:
            logits_processor.append(TemperatureLogitsWarper(temperature))
        if top_k is not None:
            logits_processor.append(TopKLogitsWarper(top_k))
        if top_p is not None and top_p < 1.0:
            logits_processor.append(TopPLogitsWarper(top_p))
        return logits_processor

    @staticmethod
    def guide(logits: torch.Tensor, guidance_scale: float) -> torch.Tensor:
        """Classifier-free guidance of float32 logits whose second half of rows are the null-token rows."""
        if guidance_scale == 1:
            return logits
        conditional, unconditional = logits.chunk(2)
        return unconditional + guidance_scale * (conditional - unconditional)

    @staticmethod
    def sampling_probabilities(logits_processor, image_tokens, logits: torch.Tensor) -> torch.Tensor:
        """The probabilities that sampling draws from: softmax of the processed logits `(num_rows, codebook_size)`."""
        return logits_processor(image_tokens, logits).softmax(dim=-1)

    @staticmethod
    def sample_from(weights: torch.Tensor, uniforms: torch.Tensor) -> torch.LongTensor:
        """
        Inverse-CDF sampling: the token of each row of non-negative `weights` `(num_rows, codebook_size)` (normalized
        here) whose cumulative interval holds that row's number of `uniforms` in `[0, 1)`.
        """
        cumulative = weights.cumsum(dim=-1)
        # Dividing by the total makes the last entry exactly 1 > noise, so a token of zero probability (after top-k /
        # top-p, or at the end of a rounded sum) can never be chosen.
        cumulative = cumulative / cumulative[:, -1:]
        return torch.searchsorted(cumulative, uniforms.contiguous()[:, None], right=True)[:, 0]


__all__ = ["VimTokenSamplingMixin"]
