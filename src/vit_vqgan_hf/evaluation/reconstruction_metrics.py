# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Reconstruction metrics of the tokenizer: per-image PSNR and SSIM (torchmetrics) and codebook usage by the paper's
protocol (the fraction of codes used within each group of 256 test images, averaged over the groups), with perplexity
and dead codes over the whole set."""

import torch

from ..models.vit_vqgan.modeling_vit_vqgan import code_counts_of, codebook_statistics


# Paper, Table 4 caption: "the percentage of codes used within a batch of 256 test images, averaged over the test set".
USAGE_GROUP_SIZE = 256


def per_image_psnr(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """
    PSNR of every image pair, with torchmetrics, on images in `[0, 1]` (data range 1).

    Args:
        reconstruction (`torch.Tensor` of shape `(batch_size, channels, height, width)`):
            Images in `[0, 1]`.
        target (`torch.Tensor` of the same shape):
            Images in `[0, 1]`.

    Returns:
        `torch.DoubleTensor` of shape `(batch_size,)` in dB (`inf` for identical images), computed in float64.
    """
    from torchmetrics.functional.image import peak_signal_noise_ratio  # imported when used: it takes seconds

    return peak_signal_noise_ratio(
        reconstruction.double(), target.double(), data_range=1.0, reduction="none", dim=(1, 2, 3)
    ).reshape(-1)


def per_image_ssim(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """
    SSIM of every image pair, with torchmetrics' defaults (Gaussian window 11, sigma 1.5, k1 0.01, k2 0.03), on
    images in `[0, 1]`.

    Args:
        reconstruction (`torch.Tensor` of shape `(batch_size, channels, height, width)`):
            Images in `[0, 1]`.
        target (`torch.Tensor` of the same shape):
            Images in `[0, 1]`.

    Returns:
        `torch.DoubleTensor` of shape `(batch_size,)`, computed in float64.
    """
    from torchmetrics.functional.image import structural_similarity_index_measure

    # float64: the local variances are differences of means of squares, which lose ~1e-4 of SSIM in float32.
    return structural_similarity_index_measure(
        reconstruction.double(), target.double(), data_range=1.0, reduction="none"
    ).reshape(-1)


def describe_code_counts(code_counts: torch.Tensor) -> dict:
    """
    Usage statistics of a codebook over a whole set, from the count of every code.

    Args:
        code_counts (`torch.Tensor` of shape `(codebook_size,)`):
            How often each code was used.

    Returns:
        `dict` with `codebook_perplexity` (`exp` of the entropy of the code distribution; `codebook_size` when all
        codes are equally used), `used_codes`, `dead_codes` (never used), `dead_code_fraction` and
        `codebook_usage_whole_set` (fraction of codes used at least once).
    """
    code_counts = code_counts.detach().cpu()
    _, perplexity = codebook_statistics(code_counts, dtype=torch.float64)
    size = code_counts.numel()
    used = int((code_counts > 0).sum())
    return {
        "codebook_perplexity": float(perplexity),
        "used_codes": used,
        "dead_codes": size - used,
        "dead_code_fraction": (size - used) / size,
        "codebook_usage_whole_set": used / size,
    }


class CodebookUsageAccumulator:
    """
    Codebook usage by the paper's protocol: the fraction of codes used within each group of `group_size` consecutive
    images, averaged over the groups; plus the code counts of the whole set.

    Feed token ids of images in dataset order; batches of any size are split and joined into groups of exactly
    `group_size` images. Only full groups are averaged; the images of a last, partial group are counted in the
    whole-set statistics and reported (`images_in_partial_group`). A set smaller than one group is measured as one
    partial group, and `codebook_usage_protocol_complete` is then `False`.

    Args:
        codebook_size (`int`):
            Number of codes.
        group_size (`int`, *optional*, defaults to 256):
            Images per group (256 in the paper).

    Example:

    ```python
    >>> import torch
    >>> from vit_vqgan_hf.evaluation import CodebookUsageAccumulator

    >>> usage = CodebookUsageAccumulator(codebook_size=4, group_size=2)
    >>> usage.update(torch.tensor([[0, 1], [0, 0], [2, 3], [3, 3]]))
    >>> usage.compute()["codebook_usage"]
    0.5
    ```
    """

    def __init__(self, codebook_size: int, group_size: int = USAGE_GROUP_SIZE):
        if group_size < 1:
            raise ValueError(f"`group_size` must be positive, got {group_size}.")
        self.codebook_size = codebook_size
        self.group_size = group_size
        self.code_counts = torch.zeros(codebook_size, dtype=torch.long)
        self.group_usages: list[float] = []
        self._group_counts = torch.zeros(codebook_size, dtype=torch.long)
        self._images_in_group = 0
        self.num_images = 0

    def update(self, image_tokens: torch.Tensor) -> None:
        """
        Add the token ids of a batch of images, in dataset order.

        Args:
            image_tokens (`torch.LongTensor` of shape `(batch_size, ...)`):
                Code ids of every image (any grid shape after the batch dimension).
        """
        image_tokens = image_tokens.detach().cpu().long().reshape(image_tokens.shape[0], -1)
        if image_tokens.numel() and (image_tokens.min() < 0 or image_tokens.max() >= self.codebook_size):
            raise ValueError(f"Token ids must lie in [0, {self.codebook_size}).")
        self.num_images += image_tokens.shape[0]
        start = 0
        while start < image_tokens.shape[0]:
            take = min(self.group_size - self._images_in_group, image_tokens.shape[0] - start)
            counts = code_counts_of(image_tokens[start : start + take], self.codebook_size)
            self._group_counts += counts
            self.code_counts += counts
            self._images_in_group += take
            start += take
            if self._images_in_group == self.group_size:
                self.group_usages.append(float((self._group_counts > 0).double().mean()))
                self._group_counts.zero_()
                self._images_in_group = 0

    def compute(self) -> dict:
        """
        The usage statistics so far.

        Returns:
            `dict` with `codebook_usage` (mean over groups of the used fraction), `codebook_usage_std`,
            `usage_group_size`, `num_usage_groups`, `images_in_partial_group`, `codebook_usage_protocol_complete`,
            `group_usages` and the keys of [`describe_code_counts`].
        """
        if self.num_images == 0:
            raise ValueError("No tokens were added.")
        usages = list(self.group_usages)
        complete = bool(usages)
        if not usages:
            usages = [float((self._group_counts > 0).double().mean())]
        values = torch.tensor(usages, dtype=torch.float64)
        return {
            "codebook_usage": float(values.mean()),
            "codebook_usage_std": float(values.std(unbiased=False)) if len(values) > 1 else 0.0,
            "usage_group_size": self.group_size,
            "num_usage_groups": len(self.group_usages),
            "images_in_partial_group": self._images_in_group,
            "codebook_usage_protocol_complete": complete,
            "group_usages": usages,
            **describe_code_counts(self.code_counts),
        }


__all__ = ["USAGE_GROUP_SIZE", "CodebookUsageAccumulator", "describe_code_counts", "per_image_psnr", "per_image_ssim"]
