from .vit_vqgan import (
    VitVqganConfig,
    VitVqganEncoderOutput,
    VitVqganModel,
    VitVqganModelOutput,
    VitVqganPreTrainedModel,
)
