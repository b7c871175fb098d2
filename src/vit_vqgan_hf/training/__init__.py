"""Training building blocks of the ViT-VQGAN tokenizer: losses, LPIPS perceptual distance, StyleGAN2 discriminator,
dead-code restarts.

Imported by the example scripts and tests only; the models never import it.
"""

from .codebook import lookup_latents, restart_dead_codes
from .discriminator import VitVqganDiscriminator, VitVqganDiscriminatorConfig, VitVqganDiscriminatorOutput
from .losses import (
    VitVqganLossWeights,
    discriminator_loss,
    discriminator_step_loss,
    generator_adversarial_loss,
    generator_loss,
    l2_loss,
    lazy_r1_loss,
    logit_laplace_loss,
    r1_penalty,
)
from .perceptual import LpipsVgg16, load_lpips


__all__ = [
    "LpipsVgg16",
    "VitVqganDiscriminator",
    "VitVqganDiscriminatorConfig",
    "VitVqganDiscriminatorOutput",
    "VitVqganLossWeights",
    "discriminator_loss",
    "discriminator_step_loss",
    "generator_adversarial_loss",
    "generator_loss",
    "l2_loss",
    "lazy_r1_loss",
    "load_lpips",
    "logit_laplace_loss",
    "lookup_latents",
    "r1_penalty",
    "restart_dead_codes",
]
