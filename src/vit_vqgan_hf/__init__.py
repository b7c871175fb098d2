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
from .pipelines import VimPipeline, VimPipelineOutput
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
# Every `save_pretrained` folder (and so every pushed repository) also carries the modeling and configuration files and
# an `auto_map`, so `AutoModel.from_pretrained(folder, trust_remote_code=True)` works where this package is not
# installed. Where it is imported, the registrations above take precedence and no remote code runs.
VitVqganConfig.register_for_auto_class()
VitVqganModel.register_for_auto_class("AutoModel")
VimConfig.register_for_auto_class()
VimForCausalLM.register_for_auto_class("AutoModelForCausalLM")

__all__ = [
    "VimConfig",
    "VimForCausalLM",
    "VimModel",
    "VimPipeline",
    "VimPipelineOutput",
    "VimPreTrainedModel",
    "VitVqganConfig",
    "VitVqganEncoderOutput",
    "VitVqganModel",
    "VitVqganModelOutput",
    "VitVqganPreTrainedModel",
]
