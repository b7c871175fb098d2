# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Training losses of the ViT-VQGAN tokenizer (Yu et al., "Vector-quantized Image Modeling with Improved VQGAN").

The generator objective is paper Sec. 3.3:

    L = L_VQ + 0.1 * L_adversarial + 0.1 * L_perceptual + 0.1 * L_logit-Laplace + 1.0 * L_2

with the logit-Laplace likelihood of DALL-E (Ramesh et al. 2021, Sec. A.3), LPIPS-VGG as the perceptual loss, and
the non-saturating GAN loss with a lazy R1 penalty of StyleGAN2 (Karras et al. 2020; NVlabs/stylegan2
`training/loss.py`, rosinality/stylegan2-pytorch `train.py`) for the StyleGAN discriminator, since the paper names
neither the GAN loss nor the penalty. Generator and discriminator have separate entry points, [`generator_loss`] and
[`discriminator_step_loss`]; the feature networks are passed in.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..utils.pixel_losses import l2_loss, logit_laplace_loss


@dataclass
class VitVqganLossWeights:
    """
    Weights of the terms of the tokenizer's generator loss; the defaults are the paper's (Sec. 3.3). The VQ loss has
    weight 1 and its commitment cost lives in [`VitVqganConfig`]. A term of weight 0 is not computed.

    Args:
        l2_weight (`float`, *optional*, defaults to 1.0):
            Weight of the mean squared error, measured on the `[0, 1]` pixel scale ([`l2_loss`]).
        logit_laplace_weight (`float`, *optional*, defaults to 0.1):
            Weight of the logit-Laplace negative log-likelihood ([`logit_laplace_loss`]). Needs a model built with
            `use_logit_laplace=True`.
        perceptual_weight (`float`, *optional*, defaults to 0.1):
            Weight of the LPIPS-VGG distance. The paper trains tokenizers for representation learning without it.
        adversarial_weight (`float`, *optional*, defaults to 0.1):
            Weight of the non-saturating generator loss against the StyleGAN discriminator.

    Example:

    ```python
    >>> from vit_vqgan_hf.training import VitVqganLossWeights

    >>> VitVqganLossWeights(perceptual_weight=0.0).logit_laplace_weight
    0.1
    ```
    """

    l2_weight: float = 1.0
    logit_laplace_weight: float = 0.1
    perceptual_weight: float = 0.1
    adversarial_weight: float = 0.1

    def __post_init__(self):
        for name in ("l2_weight", "logit_laplace_weight", "perceptual_weight", "adversarial_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"`{name}` must be non-negative, got {getattr(self, name)}.")


def generator_adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """
    Non-saturating GAN loss of the generator, `mean(softplus(-D(fake)))` = `-mean(log sigmoid(D(fake)))`.

    Args:
        fake_logits (`torch.FloatTensor` of shape `(batch_size,)`):
            Discriminator logits of generated images.

    Returns:
        `torch.FloatTensor` of shape `()`.
    """
    return F.softplus(-fake_logits.float()).mean()


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """
    Logistic GAN loss of the discriminator, `mean(softplus(D(fake))) + mean(softplus(-D(real)))`.

    Args:
        real_logits (`torch.FloatTensor` of shape `(batch_size,)`):
            Discriminator logits of real images.
        fake_logits (`torch.FloatTensor` of shape `(batch_size,)`):
            Discriminator logits of generated images.

    Returns:
        `torch.FloatTensor` of shape `()`.
    """
    return F.softplus(fake_logits.float()).mean() + F.softplus(-real_logits.float()).mean()


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """
    R1 gradient penalty (Mescheder et al. 2018): `mean over the batch of ||grad_x D(x)||^2` at real images.

    The graph is kept (`create_graph=True`) so that the penalty can be minimized with respect to the discriminator.

    Args:
        real_logits (`torch.FloatTensor` of shape `(batch_size,)`):
            Discriminator logits of `real_images`.
        real_images (`torch.FloatTensor` of shape `(batch_size, num_channels, height, width)`):
            The real images, with `requires_grad=True` set before the discriminator ran on them.

    Returns:
        `torch.FloatTensor` of shape `()`: the unweighted penalty.
    """
    (gradients,) = torch.autograd.grad(outputs=real_logits.sum(), inputs=real_images, create_graph=True)
    return gradients.float().pow(2).flatten(1).sum(dim=1).mean()


def lazy_r1_loss(penalty: torch.Tensor, gamma: float = 10.0, interval: int = 16) -> torch.Tensor:
    """
    Weight of an R1 penalty applied lazily, StyleGAN2's convention: `gamma / 2 * interval * penalty`.

    StyleGAN2 (Sec. 3.1, "lazy regularization") computes the penalty only every `interval` discriminator steps and
    multiplies it by `interval` to keep its average strength. StyleGAN2 also rescales the discriminator's Adam learning
    rate and betas by `interval / (interval + 1)`; `train_tokenizer.py` does not, since the paper gives the
    discriminator the generator's optimizer settings.

    Args:
        penalty (`torch.FloatTensor` of shape `()`):
            Output of [`r1_penalty`].
        gamma (`float`, *optional*, defaults to 10.0):
            R1 weight; 10 as in StyleGAN2 at 256x256 and thuanz123/enhancing-transformers.
        interval (`int`, *optional*, defaults to 16):
            Number of discriminator steps between two penalties (1 = every step, not lazy).

    Returns:
        `torch.FloatTensor` of shape `()`.
    """
    return gamma / 2 * interval * penalty


def generator_loss(
    pixel_values: torch.Tensor,
    model_output,
    weights: VitVqganLossWeights,
    perceptual: nn.Module | None = None,
    discriminator: nn.Module | None = None,
    adversarial_active: bool = True,
    logit_laplace_eps: float = 0.1,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """
    Generator-side loss of the tokenizer: `vq + w_l2 * l2 + w_ll * logit_laplace + w_p * perceptual + w_adv *
    adversarial` (paper Sec. 3.3).

    The l2, perceptual and adversarial terms use `model_output.reconstruction`. Terms of weight 0 are not computed,
    and neither is the adversarial term while `adversarial_active` is False (the discriminator's warm-up). The
    adversarial term backpropagates through the discriminator too: step only the tokenizer's optimizer on this loss,
    and zero the discriminator's gradients before its own step (or freeze it with `requires_grad_(False)` around
    this call).

    Args:
        pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, height, width)`):
            Target images in `[-1, 1]`.
        model_output ([`VitVqganModelOutput`]):
            Output of the tokenizer's forward on `pixel_values` (`reconstruction`, `vq_loss`, `codebook_loss`,
            `commitment_loss`, `logit_laplace_loc`, `logit_laplace_log_scale` are read).
        weights ([`VitVqganLossWeights`]):
            Weights of the terms.
        perceptual (`nn.Module`, *optional*, defaults to `None`):
            Perceptual distance `perceptual(reconstruction, pixel_values) -> (batch_size,)`, e.g. from
            [`load_lpips`]; required when `weights.perceptual_weight > 0`.
        discriminator (`nn.Module`, *optional*, defaults to `None`):
            A [`VitVqganDiscriminator`]; required when `weights.adversarial_weight > 0` and `adversarial_active`.
        adversarial_active (`bool`, *optional*, defaults to `True`):
            Whether the adversarial term is computed at this step.
        logit_laplace_eps (`float`, *optional*, defaults to 0.1):
            Squash margin of [`logit_laplace_loss`]; must match how the model maps `loc` to pixels.

    Returns:
        `tuple(torch.FloatTensor, dict[str, torch.FloatTensor])`: the total loss (with graph), and detached scalar
        tensors for logging under the keys `vq`, `codebook`, `commitment`, `codebook_entropy`, `l2`, `logit_laplace`,
        `perceptual`, `adversarial` and `total`; keys of terms that were not computed are absent.
    """
    reconstruction = model_output.reconstruction
    total = model_output.vq_loss.float()
    logs = {"vq": model_output.vq_loss}
    if model_output.codebook_loss is not None:
        logs["codebook"] = model_output.codebook_loss
    if model_output.commitment_loss is not None:
        logs["commitment"] = model_output.commitment_loss
    if model_output.codebook_entropy_loss is not None:
        logs["codebook_entropy"] = model_output.codebook_entropy_loss

    if weights.l2_weight > 0:
        logs["l2"] = l2_loss(pixel_values, reconstruction)
        total = total + weights.l2_weight * logs["l2"]

    if weights.logit_laplace_weight > 0:
        if model_output.logit_laplace_loc is None or model_output.logit_laplace_log_scale is None:
            raise ValueError(
                "`logit_laplace_weight` > 0 needs a tokenizer built with `use_logit_laplace=True` (the model output "
                "has no `logit_laplace_loc`); set the weight to 0 or change the model config."
            )
        logs["logit_laplace"] = logit_laplace_loss(
            pixel_values,
            model_output.logit_laplace_loc,
            model_output.logit_laplace_log_scale,
            eps=logit_laplace_eps,
        )
        total = total + weights.logit_laplace_weight * logs["logit_laplace"]

    if weights.perceptual_weight > 0:
        if perceptual is None:
            raise ValueError("`perceptual_weight` > 0 needs a `perceptual` network (see `load_lpips`).")
        logs["perceptual"] = perceptual(reconstruction, pixel_values).float().mean()
        total = total + weights.perceptual_weight * logs["perceptual"]

    if weights.adversarial_weight > 0 and adversarial_active:
        if discriminator is None:
            raise ValueError("`adversarial_weight` > 0 needs a `discriminator` while `adversarial_active` is True.")
        logs["adversarial"] = generator_adversarial_loss(discriminator(reconstruction).logits)
        total = total + weights.adversarial_weight * logs["adversarial"]

    logs["total"] = total
    return total, {name: value.detach().float() for name, value in logs.items()}


def discriminator_step_loss(
    discriminator: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    apply_r1: bool = False,
    r1_gamma: float = 10.0,
    r1_interval: int = 16,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """
    Discriminator-side loss: the logistic GAN loss, plus the lazy R1 penalty on steps where `apply_r1` is True.

    `fake` is detached, so no gradient reaches the tokenizer. Real and fake images go through the discriminator in two
    separate calls, so the minibatch standard deviation never mixes them. With the StyleGAN2 convention the script sets
    `apply_r1 = step % r1_interval == 0`.

    Args:
        discriminator (`nn.Module`):
            A [`VitVqganDiscriminator`].
        real (`torch.FloatTensor` of shape `(batch_size, num_channels, height, width)`):
            Real images in `[-1, 1]`.
        fake (`torch.FloatTensor` of the same shape):
            Reconstructions in `[-1, 1]`.
        apply_r1 (`bool`, *optional*, defaults to `False`):
            Whether to add `r1_gamma / 2 * r1_interval * R1` at this step ([`lazy_r1_loss`]).
        r1_gamma (`float`, *optional*, defaults to 10.0):
            R1 weight.
        r1_interval (`int`, *optional*, defaults to 16):
            Discriminator steps between two R1 penalties; the penalty is scaled by it.

    Returns:
        `tuple(torch.FloatTensor, dict[str, torch.FloatTensor])`: the total loss (with graph), and detached scalar
        tensors for logging under the keys `adversarial`, `real_logits` (mean), `fake_logits` (mean), `r1_penalty`
        (only when applied) and `total`.
    """
    real = real.detach()
    if apply_r1:
        real.requires_grad_(True)
    real_logits = discriminator(real).logits
    fake_logits = discriminator(fake.detach()).logits
    adversarial = discriminator_loss(real_logits, fake_logits)
    logs = {"adversarial": adversarial, "real_logits": real_logits.mean(), "fake_logits": fake_logits.mean()}
    total = adversarial
    if apply_r1:
        logs["r1_penalty"] = r1_penalty(real_logits, real)
        total = total + lazy_r1_loss(logs["r1_penalty"], gamma=r1_gamma, interval=r1_interval)
    logs["total"] = total
    return total, {name: value.detach().float() for name, value in logs.items()}


__all__ = [
    "VitVqganLossWeights",
    "discriminator_loss",
    "discriminator_step_loss",
    "generator_adversarial_loss",
    "generator_loss",
    "lazy_r1_loss",
    "r1_penalty",
]
