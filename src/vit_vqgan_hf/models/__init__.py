from .vim import VimConfig, VimForCausalLM, VimModel, VimPreTrainedModel
from .vit_vqgan import (
    VitVqganConfig,
    VitVqganEncoderOutput,
    VitVqganModel,
    VitVqganModelOutput,
    VitVqganPreTrainedModel,
)


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
