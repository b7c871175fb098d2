# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""PyTorch VIM model.

Yu et al., "Vector-quantized Image Modeling with Improved VQGAN", ICLR 2022 (arXiv 2110.04627), Stage 2: a
decoder-only transformer that models the ViT-VQGAN image tokens of an image in raster order, after one class (or null)
prefix token. The block is GPT-2's pre-LayerNorm block (transformers' `models/gpt2/modeling_gpt2.py`); the cache,
mask and attention dispatch follow `models/llama/modeling_llama.py`; the prefix token that the output layer cannot
produce is ImageGPT's SOS trick (`models/imagegpt/modeling_imagegpt.py`).
"""

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from transformers import Cache, DynamicCache, PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.generation import GenerationMixin
from transformers.masking_utils import create_causal_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, slice_logits_to_keep

from .configuration_vim import VimConfig


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
):
    attention_weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        attention_weights = attention_weights + attention_mask
    attention_weights = F.softmax(attention_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attention_weights = F.dropout(attention_weights, p=dropout, training=module.training)
    attention_output = torch.matmul(attention_weights, value).transpose(1, 2).contiguous()
    return attention_output, attention_weights


def _type_name(value) -> str:
    module = type(value).__module__
    return type(value).__qualname__ if module == "builtins" else f"{module}.{type(value).__qualname__}"


def _check_tensor(name: str, value, expected_shape: str):
    """Raise if `value` is not a tensor with one dimension per name in `expected_shape` and at least one token."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(
            f"`{name}` must be a torch.Tensor of shape {expected_shape}, got {_type_name(value)}; convert it with "
            "`torch.as_tensor`."
        )
    ndim = expected_shape.count(",") + 1
    if value.ndim != ndim:
        hint = f" Add a batch dimension, e.g. `{name}[None]`." if value.ndim == ndim - 1 else ""
        raise ValueError(f"`{name}` must be {ndim}-D {expected_shape}, got shape {tuple(value.shape)}.{hint}")
    if value.shape[0] == 0 or value.shape[1] == 0:
        raise ValueError(
            f"`{name}` must hold at least one sequence of at least one token, got shape {tuple(value.shape)}."
        )


class VimPositionEmbeddings(nn.Module):
    """
    Learned position embeddings: one vector for the prefix position and, for the image token at grid cell
    `(row, column)`, the sum of a row and a column embedding. The paper says "learnable 2D positional embedding" without
    more detail; the factorized form is the one that is 2D by construction (as in DALL-E's and Parti's axial
    embeddings) and needs `2 * token_grid_size` vectors instead of `token_grid_size ** 2`.
    """

    def __init__(self, config: VimConfig):
        super().__init__()
        self.token_grid_size = config.token_grid_size
        self.row_embeddings = nn.Embedding(config.token_grid_size, config.hidden_size)
        self.column_embeddings = nn.Embedding(config.token_grid_size, config.hidden_size)
        self.prefix_embedding = nn.Parameter(torch.zeros(config.hidden_size))

    def forward(self, position_ids: torch.LongTensor) -> torch.Tensor:
        # Position 0 is the prefix; position p >= 1 is image token p - 1 in raster order.
        image_index = (position_ids - 1).clamp(min=0)
        image_embeddings = self.row_embeddings(image_index // self.token_grid_size) + self.column_embeddings(
            image_index % self.token_grid_size
        )
        is_prefix = (position_ids == 0).unsqueeze(-1)
        return torch.where(is_prefix, self.prefix_embedding.to(image_embeddings.dtype), image_embeddings)


class VimAttention(nn.Module):
    """Multi-head causal self-attention, dispatched through `ALL_ATTENTION_FUNCTIONS` (SDPA by default)."""

    def __init__(self, config: VimConfig, layer_idx: int):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.attention_dropout = config.attention_dropout
        self.is_causal = True

        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=config.attention_bias)
        self.k_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=config.attention_bias)
        self.v_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=config.attention_bias)
        self.o_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=config.attention_bias)
        self.o_proj.is_residual_projection = True  # depth-scaled init, see `VimPreTrainedModel._init_weights`

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        input_shape = hidden_states.shape[:-1]
        hidden_shape = (*input_shape, -1, self.head_dim)

        query = self.q_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        key = self.k_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        value = self.v_proj(hidden_states).view(hidden_shape).transpose(1, 2)

        if cache is not None:
            key, value = cache.update(key, value, self.layer_idx)

        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        attention_output, attention_weights = attention_interface(
            self,
            query,
            key,
            value,
            attention_mask,
            dropout=self.attention_dropout if self.training else 0.0,
            scaling=self.scaling,
        )
        attention_output = attention_output.reshape(*input_shape, -1).contiguous()
        return self.o_proj(attention_output), attention_weights


class VimMLP(nn.Module):
    def __init__(self, config: VimConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation_fn = ACT2FN[config.hidden_act]
        # The paper applies dropout to "all residual, activation and attention outputs".
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.fc2.is_residual_projection = True  # depth-scaled init, see `VimPreTrainedModel._init_weights`

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.activation_fn(self.fc1(hidden_states))
        if self.training:
            hidden_states = self.dropout(hidden_states)
        return self.fc2(hidden_states)


class VimDecoderLayer(GradientCheckpointingLayer):
    """Pre-LayerNorm transformer block (GPT-2): `x + attn(ln(x))`, then `x + mlp(ln(x))`."""

    def __init__(self, config: VimConfig, layer_idx: int):
        super().__init__()
        self.input_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.self_attn = VimAttention(config, layer_idx)
        self.post_attention_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = VimMLP(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
    ) -> torch.Tensor:
        # Self Attention
        residual = hidden_states
        hidden_states, _ = self.self_attn(
            self.input_layernorm(hidden_states), attention_mask=attention_mask, cache=cache
        )
        # Dropout is the identity in eval mode: not calling its modules then saves a tenth of the Python time of a
        # decoding step (three module calls per layer).
        if self.training:
            hidden_states = self.dropout(hidden_states)
        hidden_states = residual + hidden_states

        # Fully Connected
        residual = hidden_states
        hidden_states = self.mlp(self.post_attention_layernorm(hidden_states))
        if self.training:
            hidden_states = self.dropout(hidden_states)
        return residual + hidden_states


class VimPreTrainedModel(PreTrainedModel):
    config: VimConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _no_split_modules = ["VimDecoderLayer"]
    _supports_sdpa = True

    def _init_weights(self, module):
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, VimPositionEmbeddings):
            init.normal_(module.prefix_embedding, mean=0.0, std=std)
        elif getattr(module, "is_residual_projection", False):
            # GPT-2 paper: "We scale the weights of residual layers at initialization by a factor of 1/sqrt(N) where N
            # is the # of residual layers." Each block has two (attention output and MLP output), as in Megatron-LM
            # and transformers' `ImageGPTPreTrainedModel._init_weights`. The layers are flagged rather than found from
            # their parent block: transformers skips `_init_weights` for modules of custom code without own parameters.
            init.normal_(module.weight, mean=0.0, std=std / math.sqrt(2 * self.config.num_hidden_layers))


class VimModel(VimPreTrainedModel):
    """
    The VIM transformer without its output layer: token and position embeddings, `num_hidden_layers` pre-LayerNorm
    blocks and a final LayerNorm.

    One embedding table covers the whole input vocabulary (image tokens, then class tokens, then the null token). Its
    rows for image tokens and for class tokens are disjoint parameters, so this is the paper's "separate embedding
    tables" for class and image tokens, indexed by one id.

    In training mode, each sequence's class token is replaced by the null token with probability
    `config.class_dropout_prob` (label dropout for classifier-free guidance). The draw uses the global torch RNG, so it
    is reproducible under `torch.manual_seed`; in eval mode, and for `inputs_embeds`, nothing is replaced.

    Inputs are checked where they enter: an eval-mode call on a prompt (nothing cached yet) checks the token and
    position ids against the config. Training-mode and decoding steps check types and shapes only, so they never wait
    on the device; check training data where it is loaded.

    Example:

    ```python
    >>> import torch
    >>> from vit_vqgan_hf import VimConfig, VimModel

    >>> config = VimConfig.from_preset("tiny")
    >>> model = VimModel(config).eval()
    >>> input_ids = torch.tensor([[config.class_token_id(3), 17, 42]])
    >>> model(input_ids).last_hidden_state.shape
    torch.Size([1, 3, 64])
    ```
    """

    def __init__(self, config: VimConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = VimPositionEmbeddings(config)
        self.layers = nn.ModuleList(
            [VimDecoderLayer(config, layer_idx) for layer_idx in range(config.num_hidden_layers)]
        )
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPast:
        r"""
        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
                `[prefix token, image tokens in raster order]`, or its continuation when `cache` holds the start. The
                prefix is a class token `config.class_token_id(c)` or `config.null_class_token_id`; image tokens are
                in `[0, config.codebook_size)`.
            attention_mask (`torch.Tensor` of shape `(batch_size, cached_length + sequence_length)`, *optional*):
                1 for tokens to attend to, 0 for padding, one entry per cached and new token. The causal mask is
                always applied. A 4-D mask `(batch_size, 1, sequence_length, key_length)` is used as is.
            cache (`Cache`, *optional*):
                Key/value cache of the previous tokens, for incremental decoding.
            use_cache (`bool`, *optional*, defaults to `config.use_cache`):
                Whether to return the key/value cache.
            output_hidden_states (`bool`, *optional*, defaults to `config.output_hidden_states`):
                Whether to return the embeddings and the output of every block (before the final LayerNorm), e.g. for
                linear probing.
            position_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
                Position of each token: 0 for the prefix, `1 + row * token_grid_size + column` for an image token.
                Defaults to the positions that follow the cached tokens.
            inputs_embeds (`torch.Tensor` of shape `(batch_size, sequence_length, hidden_size)`, *optional*):
                Token embeddings to use instead of `input_ids` (the position embeddings are still added).

        Returns:
            [`~transformers.modeling_outputs.BaseModelOutputWithPast`]: `last_hidden_state` (after the final
            LayerNorm), `cache` when `use_cache`, and `hidden_states`, a tuple of `num_hidden_layers + 1` tensors of
            shape `(batch_size, sequence_length, hidden_size)`, when `output_hidden_states`.
        """
        # Older callers name the cache `past_key_values` (transformers 5.24 still accepts it, until 5.40).
        if cache is None:
            cache = kwargs.pop("past_key_values", None)
        past_length = cache.get_seq_length() if cache is not None else 0
        # A `StaticCache` counts its tokens in a device tensor: to the checks its length is unknown (None), not synced.
        cached_length = past_length if isinstance(past_length, int) else None
        self._check_inputs(input_ids, inputs_embeds, attention_mask, position_ids, cached_length)
        use_cache = use_cache if use_cache is not None else self.config.use_cache
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states

        # Values are read only where data enters, an inference call on a prompt (nothing cached): a training or
        # decoding step never waits on the device for a check, nor breaks a compiled graph for one.
        check_values = not self.training and cached_length == 0 and not torch.compiler.is_compiling()
        inputs = input_ids if input_ids is not None else inputs_embeds
        if position_ids is None:
            position_ids = torch.arange(inputs.shape[1], device=inputs.device).unsqueeze(0) + past_length
        elif check_values:
            self._check_position_values(position_ids)
        if input_ids is not None:
            input_ids = input_ids.long()  # e.g. the int16 ids of pretokenized data
            if check_values:
                self._check_input_ids(input_ids, position_ids)

        if use_cache and cache is None:
            cache = DynamicCache(config=self.config)

        if inputs_embeds is None:
            if self.training and self.config.class_dropout_prob > 0 and self.config.num_classes > 0:
                input_ids = self._drop_class_tokens(input_ids, position_ids)
            inputs_embeds = self.embed_tokens(input_ids)
        hidden_states = inputs_embeds + self.position_embeddings(position_ids)

        # No `position_ids`: VIM's are grid positions, never the boundaries of packed sequences that transformers looks
        # for in them (at one device sync per call).
        causal_mask = create_causal_mask(
            config=self.config, inputs_embeds=inputs_embeds, attention_mask=attention_mask, cache=cache
        )

        all_hidden_states = (hidden_states,) if output_hidden_states else None
        for layer in self.layers:
            hidden_states = layer(hidden_states, attention_mask=causal_mask, cache=cache)
            if output_hidden_states:
                all_hidden_states += (hidden_states,)

        return BaseModelOutputWithPast(
            last_hidden_state=self.norm(hidden_states),
            cache=cache if use_cache else None,
            hidden_states=all_hidden_states,
        )

    def _drop_class_tokens(self, input_ids: torch.LongTensor, position_ids: torch.LongTensor) -> torch.LongTensor:
        """Replace each sequence's class token by the null token with probability `config.class_dropout_prob`."""
        is_class_token = (position_ids == 0) & (input_ids >= self.config.codebook_size)
        drop = torch.rand(input_ids.shape[0], 1, device=input_ids.device) < self.config.class_dropout_prob
        return input_ids.masked_fill(is_class_token & drop, self.config.null_class_token_id)

    def _check_inputs(self, input_ids, inputs_embeds, attention_mask, position_ids, cached_length: int | None):
        """Types and shapes only: these checks read no tensor value, so they cost no device sync."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of `input_ids` or `inputs_embeds`.")
        if input_ids is not None:
            _check_tensor("input_ids", input_ids, "(batch_size, sequence_length)")
            if input_ids.is_floating_point() or input_ids.is_complex() or input_ids.dtype == torch.bool:
                raise ValueError(f"`input_ids` must be an integer tensor of token ids, got dtype {input_ids.dtype}.")
        else:
            _check_tensor("inputs_embeds", inputs_embeds, "(batch_size, sequence_length, hidden_size)")
            if inputs_embeds.shape[-1] != self.config.hidden_size:
                raise ValueError(
                    f"`inputs_embeds` must have shape (batch_size, sequence_length, {self.config.hidden_size}) "
                    f"(`config.hidden_size`), got {tuple(inputs_embeds.shape)}."
                )
        batch_size, sequence_length = (input_ids if input_ids is not None else inputs_embeds).shape[:2]
        max_length = self.config.max_position_embeddings
        if cached_length is not None and cached_length + sequence_length > max_length:
            raise ValueError(
                f"The sequence has {cached_length + sequence_length} tokens ({cached_length} cached), but a VIM "
                f"sequence has at most {max_length}: 1 prefix token and {self.config.token_grid_size}x"
                f"{self.config.token_grid_size} image tokens (`config.token_grid_size`)."
            )
        if attention_mask is not None:
            self._check_attention_mask(attention_mask, batch_size, sequence_length, cached_length)
        if position_ids is not None:
            _check_tensor("position_ids", position_ids, "(batch_size, sequence_length)")
            if position_ids.shape[0] not in (1, batch_size) or position_ids.shape[1] != sequence_length:
                raise ValueError(
                    f"`position_ids` must have shape ({batch_size} or 1, {sequence_length}), one position per input "
                    f"token, got {tuple(position_ids.shape)}."
                )

    def _check_attention_mask(self, attention_mask, batch_size: int, sequence_length: int, cached_length: int | None):
        if not isinstance(attention_mask, torch.Tensor):
            raise TypeError(f"`attention_mask` must be a torch.Tensor, got {_type_name(attention_mask)}.")
        shape = tuple(attention_mask.shape)
        if attention_mask.ndim == 2:
            # `create_causal_mask` reads a 2-D mask as one entry per key: the cached tokens, then the new ones.
            cached_length = shape[1] - sequence_length if cached_length is None else cached_length
            expected = (batch_size, cached_length + sequence_length)
            if shape != expected:
                raise ValueError(
                    f"`attention_mask` must have shape (batch_size, cached_length + sequence_length) = {expected} "
                    f"({cached_length} cached and {sequence_length} new tokens), got {shape}."
                )
        elif attention_mask.ndim == 4:
            # A prepared mask is used as is; its key length depends on the cache, its query length does not.
            if shape[0] not in (1, batch_size) or shape[2] != sequence_length:
                raise ValueError(
                    f"A 4-D `attention_mask` must have shape ({batch_size} or 1, heads, {sequence_length}, "
                    f"key_length) for {batch_size} sequences of {sequence_length} tokens, got {shape}."
                )
        else:
            raise ValueError(
                "`attention_mask` must be 2-D (batch_size, cached_length + sequence_length), or a prepared 4-D mask, "
                f"got shape {shape}."
            )

    def _check_position_values(self, position_ids: torch.LongTensor):
        low, high = torch.stack(torch.aminmax(position_ids)).tolist()
        if low < 0 or high >= self.config.max_position_embeddings:
            raise ValueError(
                f"`position_ids` must lie in [0, {self.config.max_position_embeddings - 1}] (0 is the prefix), got "
                f"values in [{low}, {high}]."
            )

    def _check_input_ids(self, input_ids: torch.LongTensor, position_ids: torch.LongTensor):
        """One comparison and one device sync: the prefix must be a class or null token, the rest image tokens."""
        codebook_size, null_id = self.config.codebook_size, self.config.null_class_token_id
        is_prefix = (position_ids == 0).expand_as(input_ids)
        invalid = torch.where(
            is_prefix,
            (input_ids < codebook_size) | (input_ids > null_id),
            (input_ids < 0) | (input_ids >= codebook_size),
        )
        if not invalid.any():
            return
        batch_index, index = invalid.nonzero()[0].tolist()
        token = input_ids[batch_index, index].item()
        if is_prefix[batch_index, index]:
            reason = (
                f"class {token - codebook_size} is out of range for {self.config.num_classes} classes"
                if token > null_id
                else "every sequence starts with a class or null token"
            )
            raise ValueError(
                f"The prefix token (position 0) of sequence {batch_index} is {token}, but it must be a class token "
                f"(`config.codebook_size + class_label`, {codebook_size}..{null_id - 1}) or the null token "
                f"{null_id} (`config.null_class_token_id`): {reason}."
            )
        position = position_ids.expand_as(input_ids)[batch_index, index].item()
        hint = " Class and null tokens may only appear at position 0." if codebook_size <= token <= null_id else ""
        raise ValueError(
            f"Image tokens must be in [0, {codebook_size - 1}] (`config.codebook_size`), got {token} at position "
            f"{position} of sequence {batch_index}.{hint}"
        )


class VimForCausalLM(VimPreTrainedModel, GenerationMixin):
    """
    VIM with its output layer: next-image-token logits over the `config.codebook_size` image codes only, so a class or
    null token can never be predicted or sampled. Works with `generate()`: pass `[[prefix token]]` as `input_ids`;
    by default it generates a whole image (`config.token_grid_size ** 2` tokens), and a `max_new_tokens` or
    `max_length` past the last image token is an error. For classifier-free guidance pass `guidance_scale` and
    `negative_prompt_ids` filled with `config.null_class_token_id`.

    Example:

    ```python
    >>> import torch
    >>> from vit_vqgan_hf import VimConfig, VimForCausalLM

    >>> config = VimConfig.from_preset("tiny")
    >>> model = VimForCausalLM(config).eval()
    >>> prefix = torch.tensor([[config.class_token_id(3)]])
    >>> sequences = model.generate(prefix, do_sample=True, top_k=100)
    >>> image_tokens = sequences[:, 1:].reshape(1, config.token_grid_size, config.token_grid_size)
    >>> image_tokens.shape
    torch.Size([1, 8, 8])
    ```
    """

    def __init__(self, config: VimConfig):
        super().__init__(config)
        self.model = VimModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.codebook_size, bias=False)
        self.post_init()
        # A sequence is complete after its last image token; `generate()` stops there unless told otherwise.
        self.generation_config.max_length = config.max_position_embeddings

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        use_cache: bool | None = None,
        labels: torch.LongTensor | None = None,
        output_hidden_states: bool | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        r"""
        Args:
            input_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
                `[prefix token, image tokens in raster order]` or its continuation, as in [`VimModel.forward`].
            attention_mask (`torch.Tensor` of shape `(batch_size, cached_length + sequence_length)`, *optional*):
                1 for tokens to attend to, 0 for padding.
            cache (`Cache`, *optional*):
                Key/value cache of the previous tokens, for incremental decoding.
            use_cache (`bool`, *optional*, defaults to `config.use_cache`):
                Whether to return the key/value cache.
            labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
                Targets aligned with `input_ids` (usually `labels = input_ids`); they are shifted inside, so the token
                at position `t + 1` is the target of the logits at position `t`. Image tokens in
                `[0, config.codebook_size)` or -100 (ignored). The label of the prefix position is never a target,
                so the loss covers the image tokens only.
            output_hidden_states (`bool`, *optional*, defaults to `config.output_hidden_states`):
                Whether to return the embeddings and the output of every block, as in [`VimModel.forward`].
            position_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
                0 for the prefix, `1 + row * token_grid_size + column` for an image token; defaults to the positions
                that follow the cached tokens.
            inputs_embeds (`torch.Tensor` of shape `(batch_size, sequence_length, hidden_size)`, *optional*):
                Token embeddings to use instead of `input_ids`.
            logits_to_keep (`int` or `torch.Tensor`, *optional*, defaults to 0):
                Compute logits for the last `logits_to_keep` positions only (0 = all), or for the given positions.

        Returns:
            [`~transformers.modeling_outputs.CausalLMOutputWithPast`]: `loss` (mean cross-entropy over the image-token
            targets, when `labels` is given), `logits` of shape `(batch_size, sequence_length, codebook_size)`, and
            `cache` and `hidden_states` as in [`VimModel.forward`].
        """
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            output_hidden_states=output_hidden_states,
            **kwargs,
        )
        hidden_states = outputs.last_hidden_state
        logits = self.lm_head(slice_logits_to_keep(hidden_states, logits_to_keep))

        loss = None
        if labels is not None:
            self._check_labels(labels, hidden_states.shape[:2])
            loss = self.loss_function(
                logits=logits,
                labels=labels,
                vocab_size=self.config.codebook_size,
                num_items_in_batch=kwargs.get("num_items_in_batch"),
            )

        return CausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
        )

    def _validate_generated_length(self, generation_config, input_ids_length, has_default_max_length):
        # `GenerationMixin.generate` calls this once `max_length` is final (the prompt plus `max_new_tokens`, or
        # `max_length`), before it decodes anything.
        limit = self.config.max_position_embeddings
        if generation_config.max_length > limit:
            if generation_config.max_new_tokens is not None:
                requested = (
                    f"`max_new_tokens={generation_config.max_new_tokens}` after a {input_ids_length}-token prompt"
                )
            else:
                requested = f"`max_length={generation_config.max_length}`"
            raise ValueError(
                f"{requested} asks for sequences of {generation_config.max_length} tokens, but a VIM sequence has at "
                f"most {limit} (`config.max_position_embeddings`): 1 prefix token and {self.config.token_grid_size}x"
                f"{self.config.token_grid_size} image tokens. Pass `max_new_tokens` <= {limit - input_ids_length}, "
                "or neither, to generate the rest of the image."
            )
        super()._validate_generated_length(generation_config, input_ids_length, has_default_max_length)

    def _check_labels(self, labels: torch.LongTensor, input_shape: torch.Size):
        if not isinstance(labels, torch.Tensor):
            raise TypeError(f"`labels` must be a torch.Tensor, got {_type_name(labels)}.")
        if labels.shape != input_shape:
            raise ValueError(
                f"`labels` must have the shape of the inputs {tuple(input_shape)}, got {tuple(labels.shape)}."
            )
        if self.training or torch.compiler.is_compiling():
            return  # values only where data enters, as for `input_ids` in `VimModel.forward`
        # The first label is dropped by the shift (nothing predicts the prefix), so only the others must be image tokens.
        targets = labels[:, 1:]
        invalid = (targets != -100) & ((targets < 0) | (targets >= self.config.codebook_size))
        if invalid.any():
            raise ValueError(
                f"`labels` after position 0 must be image tokens in [0, {self.config.codebook_size - 1}] or -100 "
                f"(ignored), got {targets[invalid][0].item()}."
            )


__all__ = ["VimForCausalLM", "VimModel", "VimPreTrainedModel"]
