from .configuration_vit_vqgan import VitVqganConfig
from .image_processing_vit_vqgan import create_image_processor
from .modeling_vit_vqgan import (
    VitVqganEncoderOutput,
    VitVqganModel,
    VitVqganModelOutput,
    VitVqganPreTrainedModel,
)


__all__ = [
    "VitVqganConfig",
    "VitVqganEncoderOutput",
    "VitVqganModel",
    "VitVqganModelOutput",
    "VitVqganPreTrainedModel",
    "create_image_processor",
]
