"""ViT-VQGAN image tokenizers and VIM autoregressive image generation for transformers and diffusers."""

from transformers import AutoConfig, AutoModel

from .models import (
    VitVqganConfig,
    VitVqganEncoderOutput,
    VitVqganModel,
    VitVqganModelOutput,
    VitVqganPreTrainedModel,
)


__version__ = "0.1.0"

# The only import side effect of the package: make the model types known to the Auto classes.
AutoConfig.register(VitVqganConfig.model_type, VitVqganConfig, exist_ok=True)
AutoModel.register(VitVqganConfig, VitVqganModel, exist_ok=True)

__all__ = [
    "VitVqganConfig",
    "VitVqganEncoderOutput",
    "VitVqganModel",
    "VitVqganModelOutput",
    "VitVqganPreTrainedModel",
]
