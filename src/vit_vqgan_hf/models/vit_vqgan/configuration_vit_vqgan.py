# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""ViT-VQGAN model configuration (Yu et al., "Vector-quantized Image Modeling with Improved VQGAN", ICLR 2022)."""

import dataclasses
import difflib

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig
from transformers.utils.type_validators import activation_fn_key, interval, positive_int_field, probability


# Paper Table 2: per-module (encoder or decoder) transformer sizes.
_VIT_SIZES = {
    "small": {"hidden_size": 512, "num_hidden_layers": 8, "num_attention_heads": 8, "intermediate_size": 2048},
    "base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072},
    "large": {"hidden_size": 1280, "num_hidden_layers": 32, "num_attention_heads": 16, "intermediate_size": 5120},
}


def _stack(prefix: str, size: str) -> dict:
    return {f"{prefix}_{key}": value for key, value in _VIT_SIZES[size].items()}


# Named encoder/decoder combinations of the paper (256x256, patch 8 -> 32x32 tokens, 8192 codes, lookup dim 32),
# plus "tiny" for tests and CPU runs (32x32 images, 8x8 tokens).
PRESETS = {
    "ss": {**_stack("encoder", "small"), **_stack("decoder", "small")},
    "bb": {**_stack("encoder", "base"), **_stack("decoder", "base")},
    "sl": {**_stack("encoder", "small"), **_stack("decoder", "large")},
    "tiny": {
        "image_size": 32,
        "patch_size": 4,
        "encoder_hidden_size": 96,
        "encoder_num_hidden_layers": 2,
        "encoder_num_attention_heads": 4,
        "encoder_intermediate_size": 192,
        "decoder_hidden_size": 96,
        "decoder_num_hidden_layers": 2,
        "decoder_num_attention_heads": 4,
        "decoder_intermediate_size": 192,
        "codebook_size": 256,
        "codebook_dim": 8,
    },
}

POSITION_EMBEDDING_TYPES = ("learned", "sincos")
ENCODER_HEAD_TYPES = ("mlp", "none")
DECODER_HEAD_TYPES = ("mlp", "linear")
QUANTIZER_GRADIENTS = ("straight_through", "rotation")


def check_preset_overrides(config_class: type, overrides: dict):
    """
    Raise a `ValueError` for a `from_preset` override that is not a field of `config_class` (with the closest field
    names): `PreTrainedConfig` keeps unknown keyword arguments as attributes, so a misspelt override would silently
    leave the preset's value in place.
    """
    field_names = [field.name for field in dataclasses.fields(config_class)]
    for key in overrides:
        if key not in field_names:
            close = difflib.get_close_matches(key, field_names, n=3)
            hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise ValueError(
                f"{key!r} is not a field of {config_class.__name__}, so it cannot override the preset.{hint}"
            )


@strict
class VitVqganConfig(PreTrainedConfig):
    r"""
    Configuration of a [`VitVqganModel`]: a ViT encoder, a factorized l2-normalized codebook and a ViT decoder.
    The defaults are ViT-VQGAN-SS of the paper (Table 2); `VitVqganConfig.from_preset` builds the other sizes.

    Args:
        image_size (`int`, *optional*, defaults to 256):
            Height and width of the input images.
        patch_size (`int`, *optional*, defaults to 8):
            Side of the non-overlapping square patches; each patch becomes one image token.
        num_channels (`int`, *optional*, defaults to 3):
            Number of image channels.
        encoder_hidden_size (`int`, *optional*, defaults to 512):
            Width of the encoder transformer.
        encoder_num_hidden_layers (`int`, *optional*, defaults to 8):
            Number of encoder transformer blocks.
        encoder_num_attention_heads (`int`, *optional*, defaults to 8):
            Attention heads of each encoder block.
        encoder_intermediate_size (`int`, *optional*, defaults to 2048):
            Hidden size of the encoder MLPs.
        decoder_hidden_size (`int`, *optional*, defaults to 512):
            Width of the decoder transformer.
        decoder_num_hidden_layers (`int`, *optional*, defaults to 8):
            Number of decoder transformer blocks.
        decoder_num_attention_heads (`int`, *optional*, defaults to 8):
            Attention heads of each decoder block.
        decoder_intermediate_size (`int`, *optional*, defaults to 2048):
            Hidden size of the decoder MLPs.
        codebook_size (`int`, *optional*, defaults to 8192):
            Number of codes.
        codebook_dim (`int`, *optional*, defaults to 32):
            Dimension of the low-dimensional lookup space the encoder output is projected to (factorized codes).
        use_l2_normalized_codes (`bool`, *optional*, defaults to `True`):
            Whether encoder outputs and codes are l2-normalized, so the lookup is by cosine similarity.
        commitment_cost (`float`, *optional*, defaults to 0.25):
            Weight beta of the commitment term `||z_e - sg[e]||^2` of the VQ loss (paper Eq. 1).
        quantizer_gradient (`str`, *optional*, defaults to `"straight_through"`):
            How the encoder's gradient passes the quantizer: `"straight_through"` (the paper's estimator, the
            gradient of the code copied onto the latent) or `"rotation"` (the rotation trick of Fifty et al. 2024: the
            latent carried onto its code by a rotation and rescale treated as constants, so the gradient also carries
            the angle between them). Token ids and quantized latents are the same either way; only training changes.
        use_codebook_linear_map (`bool`, *optional*, defaults to `False`):
            Whether the codes are a learned linear map of a frozen random codebook (SimVQ, Zhu et al. 2024), instead of
            free vectors (the paper). Every step then moves the whole code space, so codes that no latent picks still
            follow the encoder: the remedy for codebook collapse on small data. Token ids keep their meaning; the map is
            part of the saved weights (`quantizer.codebook_map`).
        codebook_entropy_weight (`float`, *optional*, defaults to 0.0):
            Weight of a codebook entropy term added to the VQ loss in training: the mean entropy of each token's soft
            assignment to the codes minus the entropy of their average over the batch, so tokens commit to one code
            and the batch spreads over all of them (the entropy penalty of MaskGIT/MAGVIT tokenizers, Yu et al. 2023).
            Not in the paper (0 turns it off): a remedy for codebook collapse on small data. Token ids are unchanged.
        codebook_entropy_temperature (`float`, *optional*, defaults to 0.01):
            Temperature of the soft assignment of the entropy term: a softmax over the cosine similarities (or the
            negative squared distances without l2 normalization) divided by it.
        use_logit_laplace (`bool`, *optional*, defaults to `True`):
            Whether the decoder predicts a logit-space mean and a log-scale per pixel channel (for the logit-Laplace
            loss); the reconstruction is then the sigmoid of the mean. Without it the decoder predicts pixels directly.
        logit_laplace_eps (`float`, *optional*, defaults to 0.1):
            Margin of DALL-E's squash of pixels into `(eps, 1 - eps)` before the logit-Laplace likelihood; the
            reconstruction undoes it, `(sigmoid(mean) - eps) / (1 - 2 * eps)`. The paper does not say whether it
            squashes; DALL-E's 0.1 keeps `logit(x)` finite at black and white pixels (0 turns the squash off).
        hidden_act (`str`, *optional*, defaults to `"gelu"`):
            Activation inside the transformer MLPs. The paper does not say; GELU is the ViT default.
        head_act (`str`, *optional*, defaults to `"tanh"`):
            Activation in the middle of the two-layer heads after the encoder and decoder stacks (paper Sec. 3.1).
        hidden_dropout_prob (`float`, *optional*, defaults to 0.0):
            Dropout on embeddings and residual branches (0 in the paper).
        attention_probs_dropout_prob (`float`, *optional*, defaults to 0.0):
            Dropout on attention probabilities.
        layer_norm_eps (`float`, *optional*, defaults to 1e-06):
            Epsilon of the layer norms.
        qkv_bias (`bool`, *optional*, defaults to `True`):
            Whether the query, key and value projections have a bias.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the truncated normal initializer of linear layers and learned position embeddings.
        position_embedding_type (`str`, *optional*, defaults to `"learned"`):
            `"learned"` (absolute, one vector per token) or `"sincos"` (fixed 2D sine-cosine). The paper is silent.
        encoder_head_type (`str`, *optional*, defaults to `"mlp"`):
            What follows the encoder's final LayerNorm: `"mlp"`, the two-layer head with `head_act` in the middle
            (paper Sec. 3.1), or `"none"`, so that the factorization projection reads the LayerNorm output directly (as
            in thuanz123/enhancing-transformers).
        decoder_head_type (`str`, *optional*, defaults to `"mlp"`):
            How the decoder maps each token to the pixels of its patch: `"mlp"`, the two-layer head with `head_act` in
            the middle (paper Sec. 3.1), or `"linear"`, one linear layer (equivalent to the patch-sized, patch-strided
            transposed convolution of thuanz123/enhancing-transformers).

    Example:

    ```python
    >>> from vit_vqgan_hf import VitVqganConfig, VitVqganModel

    >>> configuration = VitVqganConfig.from_preset("tiny")
    >>> model = VitVqganModel(configuration)
    >>> model.config.codebook_size
    256
    ```"""

    model_type = "vit_vqgan"

    image_size: int = positive_int_field(default=256)
    patch_size: int = positive_int_field(default=8)
    num_channels: int = positive_int_field(default=3)
    encoder_hidden_size: int = positive_int_field(default=512)
    encoder_num_hidden_layers: int = positive_int_field(default=8)
    encoder_num_attention_heads: int = positive_int_field(default=8)
    encoder_intermediate_size: int = positive_int_field(default=2048)
    decoder_hidden_size: int = positive_int_field(default=512)
    decoder_num_hidden_layers: int = positive_int_field(default=8)
    decoder_num_attention_heads: int = positive_int_field(default=8)
    decoder_intermediate_size: int = positive_int_field(default=2048)
    codebook_size: int = interval(min=2)(default=8192)
    codebook_dim: int = positive_int_field(default=32)
    use_l2_normalized_codes: bool = True
    commitment_cost: float | int = interval(min=0)(default=0.25)
    quantizer_gradient: str = "straight_through"
    use_codebook_linear_map: bool = False
    codebook_entropy_weight: float | int = interval(min=0)(default=0.0)
    codebook_entropy_temperature: float | int = interval(min=0, exclude_min=True)(default=0.01)
    use_logit_laplace: bool = True
    logit_laplace_eps: float = interval(min=0, max=0.5, exclude_max=True)(default=0.1)
    hidden_act: str = activation_fn_key(default="gelu")
    head_act: str = activation_fn_key(default="tanh")
    hidden_dropout_prob: float | int = probability(default=0.0)
    attention_probs_dropout_prob: float | int = probability(default=0.0)
    layer_norm_eps: float = 1e-6
    qkv_bias: bool = True
    initializer_range: float = 0.02
    position_embedding_type: str = "learned"
    encoder_head_type: str = "mlp"
    decoder_head_type: str = "mlp"

    @property
    def token_grid_size(self) -> int:
        """Tokens per side of the image (`image_size // patch_size`)."""
        return self.image_size // self.patch_size

    @property
    def num_pixel_outputs(self) -> int:
        """Values the decoder head predicts per pixel channel: mean and log-scale with logit-Laplace, else 1."""
        return 2 if self.use_logit_laplace else 1

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "VitVqganConfig":
        """
        Build the configuration of a named size.

        Args:
            name (`str`):
                `"ss"`, `"bb"`, `"sl"` (paper Table 2: Small-Small, Base-Base, Small-Large) or `"tiny"`.
            overrides:
                Fields to change from the preset, for example `codebook_dim=8`; a name that is not a field raises a
                `ValueError`.

        Returns:
            [`VitVqganConfig`]
        """
        if name not in PRESETS:
            raise ValueError(f"Unknown ViT-VQGAN preset {name!r}; expected one of {sorted(PRESETS)}.")
        check_preset_overrides(cls, overrides)
        return cls(**{**PRESETS[name], **overrides})

    def validate_architecture(self):
        """Part of `@strict`-powered validation: cross-field checks and choices, run at construction (the fields' own
        ranges are checked by their validators)."""
        if self.image_size % self.patch_size != 0:
            raise ValueError(
                f"`patch_size` ({self.patch_size}) must divide `image_size` ({self.image_size}) into whole patches."
            )
        for stack in ("encoder", "decoder"):
            hidden_size = getattr(self, f"{stack}_hidden_size")
            num_heads = getattr(self, f"{stack}_num_attention_heads")
            if hidden_size % num_heads != 0:
                raise ValueError(
                    f"`{stack}_num_attention_heads` ({num_heads}) must divide `{stack}_hidden_size` ({hidden_size})."
                )
            if self.codebook_dim > hidden_size:
                raise ValueError(
                    f"`codebook_dim` ({self.codebook_dim}) is the low-dimensional lookup space and must not exceed "
                    f"`{stack}_hidden_size` ({hidden_size})."
                )
        if self.position_embedding_type not in POSITION_EMBEDDING_TYPES:
            raise ValueError(
                f"`position_embedding_type` must be one of {POSITION_EMBEDDING_TYPES}, "
                f"got {self.position_embedding_type!r}."
            )
        if self.position_embedding_type == "sincos" and (self.encoder_hidden_size % 4 or self.decoder_hidden_size % 4):
            raise ValueError("2D sine-cosine position embeddings need hidden sizes divisible by 4.")
        if self.encoder_head_type not in ENCODER_HEAD_TYPES:
            raise ValueError(
                f"`encoder_head_type` must be one of {ENCODER_HEAD_TYPES}, got {self.encoder_head_type!r}."
            )
        if self.quantizer_gradient not in QUANTIZER_GRADIENTS:
            raise ValueError(
                f"`quantizer_gradient` must be one of {QUANTIZER_GRADIENTS}, got {self.quantizer_gradient!r}."
            )
        if self.decoder_head_type not in DECODER_HEAD_TYPES:
            raise ValueError(
                f"`decoder_head_type` must be one of {DECODER_HEAD_TYPES}, got {self.decoder_head_type!r}."
            )


__all__ = ["VitVqganConfig"]
