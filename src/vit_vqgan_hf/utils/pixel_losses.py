# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""The pixel losses of the ViT-VQGAN tokenizer: the l2 loss and the logit-Laplace likelihood of DALL-E (Ramesh et al.
2021, Sec. A.3). Training minimizes them (`vit_vqgan_hf.training.generator_loss`) and evaluation reports them on the
same scale (`vit_vqgan_hf.evaluation.TokenizerEvaluator`), so values compare with paper Tables 1 and 4."""

import math

import torch
import torch.nn.functional as F


def logit_laplace_loss(
    pixel_values: torch.Tensor, loc: torch.Tensor, log_scale: torch.Tensor, eps: float = 0.1
) -> torch.Tensor:
    r"""
    Mean negative log-likelihood of the pixels under the logit-Laplace distribution of DALL-E.

    Pixels are mapped from `[-1, 1]` to `[0, 1]` and squashed into `[eps, 1 - eps]` by `x -> (1 - 2 eps) x + eps`, so
    that their logit stays finite. The density of `x` on `(0, 1)` is

        f(x | mu, b) = exp(-|logit(x) - mu| / b) / (2 b x (1 - x)),

    a Laplace distribution on `logit(x)` times the Jacobian `1 / (x (1 - x))` of the logit. The returned value
    `|logit(x) - mu| / b + log(2 b) + log(x (1 - x))`, averaged over all pixels and channels, is a proper negative
    log-density and can be negative, like the values of paper Table 4 (about -2.2 to -2.6).

    thuanz123/enhancing-transformers (commit fba5421) instead clamps the logit's argument at 1e-4 and drops the
    `log 2` and Jacobian constants. Those constants do not depend on the model, so both versions have the same
    gradients for the same targets; the reported value differs, and `eps` changes the targets. A decoder trained with
    `eps > 0` should invert the squash when it outputs pixels (DALL-E: `x = (sigmoid(mu) - eps) / (1 - 2 eps)`).

    Args:
        pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, height, width)`):
            Target images in `[-1, 1]`.
        loc (`torch.FloatTensor` of the same shape):
            Predicted logit-space mean `mu` of every pixel channel.
        log_scale (`torch.FloatTensor` of the same shape):
            Predicted `log b` of every pixel channel.
        eps (`float`, *optional*, defaults to 0.1):
            Squash margin, in `(0, 0.5)`; 0.1 as in DALL-E.

    Returns:
        `torch.FloatTensor` of shape `()`: the mean negative log-likelihood per pixel channel (float32).
    """
    if not 0.0 < eps < 0.5:
        raise ValueError(f"`eps` must be in (0, 0.5) so that the logit of every pixel is finite, got {eps}.")
    pixels = (pixel_values.float() + 1) / 2
    pixels = (1 - 2 * eps) * pixels + eps
    logit_pixels = torch.log(pixels) - torch.log1p(-pixels)
    log_scale = log_scale.float()
    negative_log_likelihood = (
        (logit_pixels - loc.float()).abs() * torch.exp(-log_scale)
        + log_scale
        + math.log(2.0)
        + torch.log(pixels * (1 - pixels))
    )
    return negative_log_likelihood.mean()


def l2_loss(pixel_values: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
    """
    Mean squared error between images, measured on the `[0, 1]` pixel scale.

    Paper Table 4 reports l2 losses of about 3e-3; on `[0, 1]` pixels that is a root mean squared error of 14/255,
    which fits a tokenizer with an rFID near 1.5, whereas on `[-1, 1]` it would be half of it. The loss is therefore
    `mse(reconstruction, pixel_values) / 4` on our `[-1, 1]` tensors, so logged values compare with the paper's.

    Args:
        pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, height, width)`):
            Target images in `[-1, 1]`.
        reconstruction (`torch.FloatTensor` of the same shape):
            Reconstructed images in `[-1, 1]`.

    Returns:
        `torch.FloatTensor` of shape `()` (float32).
    """
    return F.mse_loss(reconstruction.float(), pixel_values.float()) / 4


__all__ = ["l2_loss", "logit_laplace_loss"]
