from .configuration_vit_vqgan import VitVqganConfig
from .image_processing_vit_vqgan import (
    convert_to_rgb,
    create_image_processor,
    images_to_pixel_values,
    pil_to_pixel_values,
    prepare_image,
    resize_center_crop,
)
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
    "convert_to_rgb",
    "create_image_processor",
    "images_to_pixel_values",
    "pil_to_pixel_values",
    "prepare_image",
    "resize_center_crop",
]
