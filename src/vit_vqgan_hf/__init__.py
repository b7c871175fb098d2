"""ViT-VQGAN image tokenizers and VIM autoregressive image generation for transformers and diffusers."""

from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

from .models import (
    VimConfig,
    VimForCausalLM,
    VimModel,
    VimPreTrainedModel,
    VitVqganConfig,
    VitVqganEncoderOutput,
    VitVqganModel,
    VitVqganModelOutput,
    VitVqganPreTrainedModel,
)
from .training.discriminator import VitVqganDiscriminator, VitVqganDiscriminatorConfig


__version__ = "0.1.0"

# The only import side effect of the package: make the model types known to the Auto classes.
AutoConfig.register(VitVqganConfig.model_type, VitVqganConfig, exist_ok=True)
AutoModel.register(VitVqganConfig, VitVqganModel, exist_ok=True)
AutoConfig.register(VimConfig.model_type, VimConfig, exist_ok=True)
AutoModel.register(VimConfig, VimModel, exist_ok=True)
AutoModelForCausalLM.register(VimConfig, VimForCausalLM, exist_ok=True)
AutoConfig.register(VitVqganDiscriminatorConfig.model_type, VitVqganDiscriminatorConfig, exist_ok=True)
AutoModel.register(VitVqganDiscriminatorConfig, VitVqganDiscriminator, exist_ok=True)

__all__ = [
    "VimConfig",
    "VimForCausalLM",
    "VimModel",
    "VimPreTrainedModel",
    "VitVqganConfig",
    "VitVqganEncoderOutput",
    "VitVqganModel",
    "VitVqganModelOutput",
    "VitVqganPreTrainedModel",
]
