# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""VIM model configuration (Yu et al., "Vector-quantized Image Modeling with Improved VQGAN", ICLR 2022)."""

import dataclasses
import difflib

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig
from transformers.utils.type_validators import activation_fn_key, interval, positive_int_field, probability

from .imagenet_classes import IMAGENET_CLASSES


# Paper Table 2 (VIM-Base 650M, VIM-Large 1697M parameters), plus "tiny" for tests and CPU runs.
PRESETS = {
    "base": {"hidden_size": 1536, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 6144},
    "large": {"hidden_size": 2048, "num_hidden_layers": 36, "num_attention_heads": 32, "intermediate_size": 8192},
    "tiny": {
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 128,
        "codebook_size": 256,
        "num_classes": 10,
        "token_grid_size": 8,
    },
}


# This file ships alone as Hub remote code, so it holds its own copy (scripts/check_copies.py keeps it equal).
# Copied from vit_vqgan_hf.models.vit_vqgan.configuration_vit_vqgan.check_preset_overrides
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
class VimConfig(PreTrainedConfig):
    r"""
    Configuration of a [`VimModel`] / [`VimForCausalLM`]: a decoder-only, pre-LayerNorm transformer over the image
    tokens of a ViT-VQGAN, in raster order, after one prefix token. The defaults are VIM-Base of the paper (Table 2);
    `VimConfig.from_preset` builds the other sizes.

    The input vocabulary has three parts (see the token-id properties below): ids `0 .. codebook_size - 1` are image
    tokens, id `codebook_size + c` is the class `c`, and id `codebook_size + num_classes` is the null (unconditional)
    token. Every sequence is `[prefix token, image tokens in raster order]`, so it has at most
    `token_grid_size ** 2 + 1` positions. The logits cover the image tokens only.

    Args:
        codebook_size (`int`, *optional*, defaults to 8192):
            Number of codes of the image tokenizer, i.e. of distinct image tokens and of logits per position.
        num_classes (`int`, *optional*, defaults to 1000):
            Number of class labels the model can be conditioned on. `0` makes an unconditional-only model whose prefix
            is always the null token.
        token_grid_size (`int`, *optional*, defaults to 32):
            Image tokens per side of the token grid (`image_size // patch_size` of the tokenizer).
        hidden_size (`int`, *optional*, defaults to 1536):
            Width of the transformer.
        num_hidden_layers (`int`, *optional*, defaults to 24):
            Number of transformer blocks.
        num_attention_heads (`int`, *optional*, defaults to 16):
            Attention heads of each block; must divide `hidden_size`.
        intermediate_size (`int`, *optional*, defaults to 6144):
            Hidden size of the MLPs.
        hidden_act (`str`, *optional*, defaults to `"gelu"`):
            Activation inside the MLPs. The paper does not say; GELU is the GPT-2 / iGPT choice.
        hidden_dropout_prob (`float`, *optional*, defaults to 0.1):
            Dropout on the residual branches and after the MLP activation (paper Table 2).
        attention_dropout (`float`, *optional*, defaults to 0.1):
            Dropout on the attention probabilities (paper Table 2).
        attention_bias (`bool`, *optional*, defaults to `True`):
            Whether the query, key, value and output projections have a bias (GPT-2 style; the paper does not say).
        layer_norm_eps (`float`, *optional*, defaults to 1e-05):
            Epsilon of the layer norms.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal initializer of linear layers and embeddings.
        class_dropout_prob (`float`, *optional*, defaults to 0.0):
            Probability, in training mode only, of replacing a sequence's class token by the null token, so that one
            model learns the conditional and the unconditional distributions. 0 is the paper, which uses no guidance;
            classifier-free guidance needs it above 0 (DiT and LlamaGen use 0.1).
        null_token_fitted (`bool`, *optional*, defaults to `False`):
            Whether the null token's embedding was fitted to the unconditional distribution after training, with the
            rest of the transformer frozen (`vit_vqgan_hf.training.fit_null_token`; `train_vim.py
            --null_token_steps`). Not in the paper: it gives a model trained without label dropout an unconditional
            prefix for classifier-free guidance and unconditional samples, and leaves its class-conditional
            distributions exactly as trained.
        use_cache (`bool`, *optional*, defaults to `True`):
            Whether the model returns the key/value cache for incremental decoding.

    Example:

    ```python
    >>> from vit_vqgan_hf import VimConfig, VimForCausalLM

    >>> configuration = VimConfig.from_preset("tiny")
    >>> model = VimForCausalLM(configuration)
    >>> model.config.null_class_token_id
    266
    ```"""

    model_type = "vim"

    codebook_size: int = positive_int_field(default=8192)
    num_classes: int = interval(min=0)(default=1000)
    token_grid_size: int = positive_int_field(default=32)
    hidden_size: int = positive_int_field(default=1536)
    num_hidden_layers: int = positive_int_field(default=24)
    num_attention_heads: int = positive_int_field(default=16)
    intermediate_size: int = positive_int_field(default=6144)
    hidden_act: str = activation_fn_key(default="gelu")
    hidden_dropout_prob: float | int = probability(default=0.1)
    attention_dropout: float | int = probability(default=0.1)
    attention_bias: bool = True
    layer_norm_eps: float = 1e-5
    initializer_range: float = 0.02
    class_dropout_prob: float | int = probability(default=0.0)
    null_token_fitted: bool = False
    use_cache: bool = True

    def __post_init__(self, **kwargs):
        # `id2label` names the classes (the pipeline maps names to ids with it); by default one generic name per class
        # instead of the two labels of the base class.
        if self.id2label is None:
            kwargs.setdefault("num_labels", self.num_classes)
        super().__post_init__(**kwargs)

    @property
    def has_trained_null_token(self) -> bool:
        """Whether the null token models the unconditional distribution: an unconditional model's only prefix, or one
        trained with label dropout or fitted after training (`null_token_fitted`)."""
        return self.num_classes == 0 or self.class_dropout_prob > 0 or self.null_token_fitted

    @property
    def vocab_size(self) -> int:
        """Size of the input vocabulary: image tokens, class tokens and the null token."""
        return self.codebook_size + self.num_classes + 1

    @property
    def null_class_token_id(self) -> int:
        """Id of the null (unconditional) prefix token, `codebook_size + num_classes`."""
        return self.codebook_size + self.num_classes

    @property
    def num_image_tokens(self) -> int:
        """Image tokens per image, `token_grid_size ** 2`."""
        return self.token_grid_size**2

    @property
    def max_position_embeddings(self) -> int:
        """Longest sequence: the prefix token plus all image tokens, `token_grid_size ** 2 + 1`."""
        return self.num_image_tokens + 1

    def class_token_id(self, class_label: int) -> int:
        """
        Id of the prefix token of a class.

        Args:
            class_label (`int`):
                Class index in `0 .. num_classes - 1`.

        Returns:
            `int`: `codebook_size + class_label`.
        """
        if not 0 <= class_label < self.num_classes:
            raise ValueError(f"Class label {class_label} is out of range: the model knows {self.num_classes} classes.")
        return self.codebook_size + class_label

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "VimConfig":
        """
        Build the configuration of a named size.

        Args:
            name (`str`):
                `"base"` or `"large"` (paper Table 2: VIM-Base, VIM-Large) or `"tiny"`.
            overrides:
                Fields to change from the preset, for example `num_classes=0`; a name that is not a field raises a
                `ValueError`. `"base"` and `"large"` name their 1000 classes with the ImageNet-1k class names
                (`id2label`), unless `num_classes` is changed or `id2label` is given.

        Returns:
            [`VimConfig`]
        """
        if name not in PRESETS:
            raise ValueError(f"Unknown VIM preset {name!r}; expected one of {sorted(PRESETS)}.")
        check_preset_overrides(cls, overrides)
        kwargs = {**PRESETS[name], **overrides}
        # The paper's sizes are ImageNet models: name their 1000 classes unless the caller changes the classes.
        if name != "tiny" and kwargs.get("num_classes", 1000) == 1000 and "id2label" not in kwargs:
            kwargs["id2label"] = dict(enumerate(IMAGENET_CLASSES))
        return cls(**kwargs)

    def validate_architecture(self):
        """Part of `@strict`-powered validation: cross-field checks, run at construction (the fields' own ranges are
        checked by their validators)."""
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"`num_attention_heads` ({self.num_attention_heads}) must divide `hidden_size` ({self.hidden_size})."
            )
        if self.id2label is not None and len(self.id2label) != self.num_classes:
            raise ValueError(
                f"`id2label` names {len(self.id2label)} classes but `num_classes` is {self.num_classes}; "
                "pass one name per class."
            )


__all__ = ["VimConfig"]
