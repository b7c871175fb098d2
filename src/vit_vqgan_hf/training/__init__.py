"""Training building blocks of the ViT-VQGAN tokenizer: losses, LPIPS perceptual distance, StyleGAN2 discriminator,
dead-code restarts.

Imported by the example scripts and tests; the layers below it (models, pipelines) never import it. Importing it
registers the discriminator with `AutoConfig` and `AutoModel`.
"""

from transformers import AutoConfig, AutoModel

from ..utils.pixel_losses import l2_loss, logit_laplace_loss
from .codebook import lookup_latents, restart_dead_codes
from .discriminator import VitVqganDiscriminator, VitVqganDiscriminatorConfig, VitVqganDiscriminatorOutput
from .losses import (
    VitVqganLossWeights,
    discriminator_loss,
    discriminator_step_loss,
    generator_adversarial_loss,
    generator_loss,
    lazy_r1_loss,
    r1_penalty,
)
from .null_token import fit_null_token
from .perceptual import LPIPS_VGG16, LpipsVgg16, load_lpips


AutoConfig.register(VitVqganDiscriminatorConfig.model_type, VitVqganDiscriminatorConfig, exist_ok=True)
AutoModel.register(VitVqganDiscriminatorConfig, VitVqganDiscriminator, exist_ok=True)


__all__ = [
    "LPIPS_VGG16",
    "LpipsVgg16",
    "VitVqganDiscriminator",
    "VitVqganDiscriminatorConfig",
    "VitVqganDiscriminatorOutput",
    "VitVqganLossWeights",
    "discriminator_loss",
    "discriminator_step_loss",
    "fit_null_token",
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
