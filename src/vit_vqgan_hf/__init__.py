"""ViT-VQGAN image tokenizers and VIM autoregressive image generation for transformers and diffusers.

Importing the package loads the models and the pipeline only. The training layer (`vit_vqgan_hf.training`: losses,
discriminator, data), evaluation (`vit_vqgan_hf.evaluation`), the Hub helpers (`vit_vqgan_hf.hub`) and the scripts'
command-line helpers (`vit_vqgan_hf.cli`) load when they are imported; each layer imports only the layers below it
(the `[importlinter]` contract in setup.cfg).
"""

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


__version__ = "0.1.0"

# The import side effect of the package: make the model types known to the Auto classes (the discriminator is
# registered by `vit_vqgan_hf.training`).
AutoConfig.register(VitVqganConfig.model_type, VitVqganConfig, exist_ok=True)
AutoModel.register(VitVqganConfig, VitVqganModel, exist_ok=True)
AutoConfig.register(VimConfig.model_type, VimConfig, exist_ok=True)
AutoModel.register(VimConfig, VimModel, exist_ok=True)
AutoModelForCausalLM.register(VimConfig, VimForCausalLM, exist_ok=True)
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
