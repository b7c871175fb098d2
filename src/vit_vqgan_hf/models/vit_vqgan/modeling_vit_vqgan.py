# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""PyTorch ViT-VQGAN model.

Yu et al., "Vector-quantized Image Modeling with Improved VQGAN", ICLR 2022 (arXiv 2110.04627): a ViT encoder over
non-overlapping patches, a factorized and l2-normalized codebook, and a ViT decoder back to pixels. The layer layout
follows transformers' `models/vit/modeling_vit.py`; the tanh heads follow microsoft/unilm `beit2/modeling_vqkd.py`.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import ModelOutput

from .configuration_vit_vqgan import VitVqganConfig


@dataclass
class VitVqganEncoderOutput(ModelOutput):
    r"""
    Output of [`VitVqganModel.encode`].

    Args:
        quantized (`torch.FloatTensor` of shape `(batch_size, codebook_dim, height, width)`):
            The selected codes (l2-normalized when `config.use_l2_normalized_codes`), with straight-through gradients
            to the encoder. `height` and `width` count tokens.
        image_tokens (`torch.LongTensor` of shape `(batch_size, height, width)`):
            Index of the selected code for every token, in raster order.
        vq_loss (`torch.FloatTensor` of shape `()`):
            `codebook_loss + commitment_cost * commitment_loss` (paper Eq. 1), plus
            `codebook_entropy_weight * codebook_entropy_loss` in training when that weight is set.
        codebook_loss (`torch.FloatTensor` of shape `()`):
            `||sg[z_e] - e||^2`, the term that moves the codes.
        commitment_loss (`torch.FloatTensor` of shape `()`):
            `||z_e - sg[e]||^2`, the term that moves the encoder.
        code_counts (`torch.LongTensor` of shape `(codebook_size,)`):
            How often each code was selected in this batch (sum these across steps or processes for usage statistics).
        codebook_usage (`torch.FloatTensor` of shape `()`):
            Fraction of the codebook used in this batch.
        codebook_perplexity (`torch.FloatTensor` of shape `()`):
            `exp` of the entropy of the code distribution in this batch (`codebook_size` when all are used equally).
        codebook_entropy_loss (`torch.FloatTensor` of shape `()`, *optional*):
            The entropy term (already in `vq_loss` with its weight); only in training with
            `config.codebook_entropy_weight > 0`.
    """

    quantized: torch.FloatTensor | None = None
    image_tokens: torch.LongTensor | None = None
    vq_loss: torch.FloatTensor | None = None
    codebook_loss: torch.FloatTensor | None = None
    commitment_loss: torch.FloatTensor | None = None
    code_counts: torch.LongTensor | None = None
    codebook_usage: torch.FloatTensor | None = None
    codebook_perplexity: torch.FloatTensor | None = None
    codebook_entropy_loss: torch.FloatTensor | None = None


@dataclass
class VitVqganModelOutput(VitVqganEncoderOutput):
    r"""
    Output of [`VitVqganModel.forward`]: the fields of [`VitVqganEncoderOutput`] plus the reconstruction.

    Args:
        reconstruction (`torch.FloatTensor` of shape `(batch_size, num_channels, image_size, image_size)`):
            Reconstructed pixel values in `[-1, 1]`.
        logit_laplace_loc (`torch.FloatTensor` of shape `(batch_size, num_channels, image_size, image_size)`, *optional*):
            Logit-space mean of every pixel channel, for the logit-Laplace loss; only with `config.use_logit_laplace`.
            The reconstruction is `sigmoid(loc)` with DALL-E's squash by `config.logit_laplace_eps` undone.
        logit_laplace_log_scale (`torch.FloatTensor` of the same shape, *optional*):
            Log of the Laplace scale of every pixel channel; only with `config.use_logit_laplace`.
    """

    reconstruction: torch.FloatTensor | None = None
    logit_laplace_loc: torch.FloatTensor | None = None
    logit_laplace_log_scale: torch.FloatTensor | None = None


def sincos_position_embedding_2d(height: int, width: int, dim: int) -> torch.Tensor:
    """Fixed 2D sine-cosine position embedding of shape `(height * width, dim)`: the first half of the channels encodes
    the column, the second half the row, each as `[sin, cos]` (exactly MAE's and thuanz123/enhancing-transformers'
    table, so their checkpoints convert without touching it)."""
    quarter = dim // 4
    omega = 1.0 / (10000 ** (torch.arange(quarter, dtype=torch.float32) / quarter))
    rows = torch.arange(height, dtype=torch.float32)[:, None] * omega[None, :]
    cols = torch.arange(width, dtype=torch.float32)[:, None] * omega[None, :]
    row_embedding = torch.cat([rows.sin(), rows.cos()], dim=1)[:, None, :].expand(height, width, 2 * quarter)
    col_embedding = torch.cat([cols.sin(), cols.cos()], dim=1)[None, :, :].expand(height, width, 2 * quarter)
    return torch.cat([col_embedding, row_embedding], dim=-1).reshape(height * width, 4 * quarter)


class VitVqganPositionEmbeddings(nn.Module):
    """Adds a position embedding to a token grid; learned or fixed 2D sine-cosine (`config.position_embedding_type`)."""

    def __init__(self, config: VitVqganConfig, hidden_size: int):
        super().__init__()
        self.grid_size = config.token_grid_size
        self.hidden_size = hidden_size
        self.embedding_type = config.position_embedding_type
        if self.embedding_type == "learned":
            self.position_embeddings = nn.Parameter(torch.zeros(1, self.grid_size**2, hidden_size))
        else:
            embeddings = sincos_position_embedding_2d(self.grid_size, self.grid_size, hidden_size)
            self.register_buffer("position_embeddings", embeddings[None], persistent=False)

    def interpolate(self, height: int, width: int) -> torch.Tensor:
        """Position embeddings for a `height` x `width` grid, resampled bicubically from the trained grid (as
        transformers' ViT does) or recomputed for sine-cosine embeddings."""
        if height == width == self.grid_size:
            return self.position_embeddings
        if self.embedding_type == "sincos":
            embeddings = sincos_position_embedding_2d(height, width, self.hidden_size)
            return embeddings[None].to(self.position_embeddings)
        grid = self.position_embeddings.reshape(1, self.grid_size, self.grid_size, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid.float(), size=(height, width), mode="bicubic", align_corners=False)
        return grid.to(self.position_embeddings.dtype).permute(0, 2, 3, 1).reshape(1, height * width, -1)

    def forward(
        self, embeddings: torch.Tensor, height: int, width: int, interpolate_pos_encoding: bool
    ) -> torch.Tensor:
        if (height, width) != (self.grid_size, self.grid_size) and not interpolate_pos_encoding:
            raise ValueError(
                f"Token grid {height}x{width} does not match the model's {self.grid_size}x{self.grid_size}; "
                "pass `interpolate_pos_encoding=True` to resample the position embeddings."
            )
        return embeddings + self.interpolate(height, width)


# Each model folder ships alone as Hub remote code, so both hold this function (scripts/check_copies.py keeps them equal).
# Copied from vit_vqgan_hf.models.vim.modeling_vim.eager_attention_forward
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


class VitVqganAttention(nn.Module):
    # Encoder and decoder stacks have their own widths (paper Table 2: SL = Small encoder, Large decoder), so layers
    # take the stack's sizes next to the config instead of reading one `hidden_size` from it.
    def __init__(self, config: VitVqganConfig, hidden_size: int, num_attention_heads: int):
        super().__init__()
        self.config = config
        self.head_dim = hidden_size // num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.attention_dropout = config.attention_probs_dropout_prob
        self.is_causal = False
        self.q_proj = nn.Linear(hidden_size, hidden_size, bias=config.qkv_bias)
        self.k_proj = nn.Linear(hidden_size, hidden_size, bias=config.qkv_bias)
        self.v_proj = nn.Linear(hidden_size, hidden_size, bias=config.qkv_bias)
        self.o_proj = nn.Linear(hidden_size, hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        input_shape = hidden_states.shape[:-1]
        hidden_shape = (*input_shape, -1, self.head_dim)
        query = self.q_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        key = self.k_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        value = self.v_proj(hidden_states).view(hidden_shape).transpose(1, 2)

        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        attention_output, _ = attention_interface(
            self,
            query,
            key,
            value,
            None,
            dropout=self.attention_dropout if self.training else 0.0,
            scaling=self.scaling,
        )
        return self.o_proj(attention_output.reshape(*input_shape, -1))


class VitVqganMLP(nn.Module):
    def __init__(self, config: VitVqganConfig, hidden_size: int, intermediate_size: int):
        super().__init__()
        self.fc1 = nn.Linear(hidden_size, intermediate_size)
        self.activation_fn = ACT2FN[config.hidden_act]
        self.fc2 = nn.Linear(intermediate_size, hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation_fn(self.fc1(hidden_states)))


class VitVqganLayer(GradientCheckpointingLayer):
    """A pre-LayerNorm transformer block (the paper does not specify the block; this is the standard ViT one)."""

    def __init__(self, config: VitVqganConfig, hidden_size: int, num_attention_heads: int, intermediate_size: int):
        super().__init__()
        self.layernorm_before = nn.LayerNorm(hidden_size, eps=config.layer_norm_eps)
        self.attention = VitVqganAttention(config, hidden_size, num_attention_heads)
        self.layernorm_after = nn.LayerNorm(hidden_size, eps=config.layer_norm_eps)
        self.mlp = VitVqganMLP(config, hidden_size, intermediate_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        # Self Attention
        residual = hidden_states
        hidden_states = self.dropout(self.attention(self.layernorm_before(hidden_states)))
        hidden_states = hidden_states + residual

        # Fully Connected
        residual = hidden_states
        hidden_states = self.dropout(self.mlp(self.layernorm_after(hidden_states)))
        return hidden_states + residual


class VitVqganHead(nn.Module):
    """The two-layer feed-forward head with a tanh in the middle that follows each transformer stack (paper §3.1,
    after the last block, as in BEiT-v2's VQ-KD; the paper does not say where the heads sit)."""

    def __init__(self, config: VitVqganConfig, hidden_size: int, output_size: int):
        super().__init__()
        self.fc1 = nn.Linear(hidden_size, hidden_size)
        self.activation_fn = ACT2FN[config.head_act]
        self.fc2 = nn.Linear(hidden_size, output_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation_fn(self.fc1(hidden_states)))


class VitVqganStack(nn.Module):
    """Transformer blocks followed by the final LayerNorm (which thuanz123/enhancing-transformers issue #10 found
    essential for stable training)."""

    def __init__(self, config: VitVqganConfig, prefix: str):
        super().__init__()
        hidden_size = getattr(config, f"{prefix}_hidden_size")
        self.layers = nn.ModuleList(
            VitVqganLayer(
                config,
                hidden_size,
                getattr(config, f"{prefix}_num_attention_heads"),
                getattr(config, f"{prefix}_intermediate_size"),
            )
            for _ in range(getattr(config, f"{prefix}_num_hidden_layers"))
        )
        self.layernorm = nn.LayerNorm(hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            hidden_states = layer(hidden_states)
        return self.layernorm(hidden_states)


class VitVqganEncoder(nn.Module):
    """Pixels `(batch, channels, H, W)` -> encoder features `(batch, H/p * W/p, encoder_hidden_size)`."""

    def __init__(self, config: VitVqganConfig):
        super().__init__()
        hidden_size = config.encoder_hidden_size
        self.patch_size = config.patch_size
        # A linear map of each flattened patch, written as the equivalent strided convolution.
        self.patch_embeddings = nn.Conv2d(config.num_channels, hidden_size, config.patch_size, config.patch_size)
        self.position_embeddings = VitVqganPositionEmbeddings(config, hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.stack = VitVqganStack(config, "encoder")
        if config.encoder_head_type == "mlp":
            self.head = VitVqganHead(config, hidden_size, hidden_size)
        else:
            self.head = nn.Identity()

    def forward(self, pixel_values: torch.Tensor, interpolate_pos_encoding: bool = False) -> torch.Tensor:
        embeddings = self.patch_embeddings(pixel_values)
        height, width = embeddings.shape[-2:]
        embeddings = embeddings.flatten(2).transpose(1, 2)
        embeddings = self.dropout(self.position_embeddings(embeddings, height, width, interpolate_pos_encoding))
        return self.head(self.stack(embeddings))


class VitVqganDecoder(nn.Module):
    """Code vectors `(batch, h*w, codebook_dim)` -> per-patch pixel outputs, regrouped into images."""

    def __init__(self, config: VitVqganConfig):
        super().__init__()
        hidden_size = config.decoder_hidden_size
        self.patch_size = config.patch_size
        self.num_channels = config.num_channels
        self.num_pixel_outputs = config.num_pixel_outputs
        self.position_embeddings = VitVqganPositionEmbeddings(config, hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.stack = VitVqganStack(config, "decoder")
        patch_outputs = config.patch_size**2 * config.num_channels * config.num_pixel_outputs
        if config.decoder_head_type == "mlp":
            self.head = VitVqganHead(config, hidden_size, patch_outputs)
        else:
            self.head = nn.Linear(hidden_size, patch_outputs)

    def forward(
        self, hidden_states: torch.Tensor, height: int, width: int, interpolate_pos_encoding: bool = False
    ) -> torch.Tensor:
        """Returns `(batch, num_pixel_outputs * channels, height * patch, width * patch)`."""
        hidden_states = self.dropout(self.position_embeddings(hidden_states, height, width, interpolate_pos_encoding))
        patches = self.head(self.stack(hidden_states))
        batch_size, patch, channels = patches.shape[0], self.patch_size, self.num_pixel_outputs * self.num_channels
        # (batch, h*w, p*p*c) -> (batch, c, h*p, w*p)
        patches = patches.reshape(batch_size, height, width, patch, patch, channels)
        return patches.permute(0, 5, 1, 3, 2, 4).reshape(batch_size, channels, height * patch, width * patch)


def rotate_onto_codes(latents: torch.Tensor, codes: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """
    The rotation trick (Fifty et al. 2024, "Restructuring Vector Quantization with the Rotation Trick", Eq. 4-5):
    each row of `latents` times `lambda R`, where `R` rotates the latent's direction onto its code's and `lambda` is
    the ratio of their norms, both treated as constants. The value is the code (up to rounding); the gradient reaching
    the latent is the code's, rotated back and rescaled, so it depends on where the latent lies relative to its code.
    `R x = x - 2 (x.r) r + 2 (x.u) q` with `u`, `q` the unit latent and code and `r` the unit vector along `u + q`
    (a Householder reflection followed by one more).
    """
    latent_norms = latents.norm(dim=-1, keepdim=True).clamp(min=eps)
    code_norms = codes.norm(dim=-1, keepdim=True)
    directions = (latents / latent_norms).detach()
    code_directions = (codes / code_norms.clamp(min=eps)).detach()
    bisectors = F.normalize(directions + code_directions, dim=-1, eps=eps)
    rotated = (
        latents
        - 2 * (latents * bisectors).sum(-1, keepdim=True) * bisectors
        + 2 * (latents * directions).sum(-1, keepdim=True) * code_directions
    )
    return rotated * (code_norms / latent_norms).detach()


class VitVqganVectorQuantizer(nn.Module):
    """Factorized, l2-normalized codebook (paper §3.2): nearest code by cosine similarity in a low-dimensional lookup
    space, VQ loss of Eq. 1 and a straight-through estimator (or the rotation trick, `config.quantizer_gradient`). With
    `config.use_codebook_linear_map` the codes are a learned linear map of the frozen `embedding` (SimVQ); with
    `config.codebook_entropy_weight` the VQ loss of a training forward carries the entropy term."""

    # The nearest-code search scores at most this many (token, code) pairs at once, so 256 images x 1024 tokens
    # against 8192 codes never materializes the full 8.6 GB score matrix. A memory knob, not a model hyperparameter.
    max_scores_per_chunk: int = 2**26

    def __init__(self, config: VitVqganConfig):
        super().__init__()
        self.codebook_size = config.codebook_size
        self.commitment_cost = config.commitment_cost
        self.use_l2_normalized_codes = config.use_l2_normalized_codes
        self.quantizer_gradient = config.quantizer_gradient
        self.entropy_weight = config.codebook_entropy_weight
        self.entropy_temperature = config.codebook_entropy_temperature
        self.embedding = nn.Embedding(config.codebook_size, config.codebook_dim)
        self.codebook_map = None
        if config.use_codebook_linear_map:
            # SimVQ: the stored codes stay as initialized and only the shared map learns, so a step that moves the
            # used codes moves all of them. The stored codes become a buffer (same state-dict key) rather than a
            # frozen parameter, which `from_pretrained` would make trainable again and DDP would wait on for a
            # gradient.
            stored_codes = self.embedding.weight.detach()
            del self.embedding.weight
            self.embedding.register_buffer("weight", stored_codes)
            self.codebook_map = nn.Parameter(torch.empty(config.codebook_dim, config.codebook_dim))

    def codebook(self) -> torch.Tensor:
        """The code vectors the lookup compares against, `(codebook_size, codebook_dim)`, in float32."""
        codes = self.embedding.weight.float()
        if self.codebook_map is not None:
            codes = codes @ self.codebook_map.float()
        return F.normalize(codes, dim=-1) if self.use_l2_normalized_codes else codes

    def code_scores(self, latents: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
        """Score of every code for each row of `latents` `(num_tokens, codebook_dim)`, whose argmax is the nearest
        code: `(num_tokens, codebook_size)`."""
        if self.use_l2_normalized_codes:
            return latents @ codebook.T  # cosine similarity
        # -||z - e||^2 up to the per-row constant ||z||^2: argmin ||z - e||^2 = argmax (2 z.e - ||e||^2).
        return torch.addmm(codebook.pow(2).sum(-1), latents, codebook.T, beta=-1, alpha=2)

    @torch.no_grad()
    def nearest_codes(self, latents: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code of each row of `latents` `(num_tokens, codebook_dim)`, in float32."""
        chunk = max(1, self.max_scores_per_chunk // codebook.shape[0])
        indices = [
            self.code_scores(latents[start : start + chunk], codebook).argmax(dim=-1)
            for start in range(0, latents.shape[0], chunk)
        ]
        return torch.cat(indices)

    def forward(self, latents: torch.Tensor):
        """`latents` `(batch, num_tokens, codebook_dim)` -> quantized latents, token ids, losses and code counts."""
        # The lookup and the VQ loss stay in float32 under bf16 autocast: bf16 cosine scores would tie or flip codes.
        with torch.autocast(device_type=latents.device.type, enabled=False):
            latents = latents.float()
            if self.use_l2_normalized_codes:
                latents = F.normalize(latents, dim=-1)
            codebook = self.codebook()
            rows = latents.reshape(-1, latents.shape[-1])
            entropy_loss = None
            if self.entropy_weight > 0 and self.training:
                # The penalty needs every score with its gradient: the lookup takes its argmax instead of scoring the
                # codes a second time.
                scores = self.code_scores(rows, codebook)
                image_tokens = scores.detach().argmax(dim=-1)
                entropy_loss = codebook_entropy_loss(scores, self.entropy_temperature)
            else:
                image_tokens = self.nearest_codes(rows, codebook)
            image_tokens = image_tokens.reshape(latents.shape[:-1])
            codes = F.embedding(image_tokens, codebook)

            # Eq. 1 with means over tokens and code dimensions (taming-transformers' and enhancing-transformers'
            # reduction): the paper's squared norms divided by `codebook_dim`, which sets the scale against the
            # pixel losses that the weights of the reference implementations were tuned with.
            codebook_loss = F.mse_loss(codes, latents.detach())
            commitment_loss = F.mse_loss(latents, codes.detach())
            vq_loss = codebook_loss + self.commitment_cost * commitment_loss
            if entropy_loss is not None:
                vq_loss = vq_loss + self.entropy_weight * entropy_loss
            # The forward value is exactly the code; the gradient reaches the encoder's latents unchanged
            # (straight-through) or rotated as the latent would be onto its code (the rotation trick).
            carrier = rotate_onto_codes(latents, codes) if self.quantizer_gradient == "rotation" else latents
            quantized = codes.detach() + (carrier - carrier.detach())
        return quantized, image_tokens, vq_loss, codebook_loss, commitment_loss, entropy_loss

    def embed_tokens(self, image_tokens: torch.Tensor) -> torch.Tensor:
        """Code vectors of `image_tokens` (any shape) -> `(*image_tokens.shape, codebook_dim)`."""
        return F.embedding(image_tokens, self.codebook())


def codebook_entropy_loss(scores: torch.Tensor, temperature: float) -> torch.Tensor:
    """
    Mean entropy of each latent's soft assignment to the codes, `softmax(scores / temperature)`, minus the entropy of
    the assignments averaged over the latents (`codebook_entropy_weight` in [`VitVqganConfig`]): low when every latent
    sits near one code and the latents spread over all codes. `scores` `(num_tokens, codebook_size)` are
    [`VitVqganVectorQuantizer.code_scores`], all of them with their gradient (paper scale, 8 images of 1024 tokens
    against 8192 codes: 268 MB per copy in float32). The average is over the latents given (under data parallelism,
    each process's batch, as the VQ loss is).
    """
    log_probabilities = (scores / temperature).log_softmax(dim=-1)
    probabilities = log_probabilities.exp()
    token_entropy = -(probabilities * log_probabilities).sum(-1).mean()
    average = probabilities.mean(0)
    batch_entropy = -(average * average.clamp(min=torch.finfo(average.dtype).tiny).log()).sum()
    return token_entropy - batch_entropy


# Slack for rounding in the caller's normalization (e.g. a float16 `x / 127.5 - 1`).
PIXEL_RANGE_TOLERANCE = 1e-3


def straight_through_clamp(pixel_values: torch.Tensor) -> torch.Tensor:
    """Clamp to [-1, 1] in value, identity in gradient: returned images stay in range while pixel losses keep a
    gradient for out-of-range outputs."""
    return pixel_values + (pixel_values.clamp(-1, 1) - pixel_values).detach()


def code_counts_of(image_tokens: torch.Tensor, codebook_size: int) -> torch.LongTensor:
    """How often each code occurs in `image_tokens` (any shape), `(codebook_size,)`. A scatter-add rather than
    `torch.bincount`, which reads the largest id back to the host on CUDA."""
    image_tokens = image_tokens.flatten()
    counts = torch.zeros(codebook_size, dtype=torch.long, device=image_tokens.device)
    return counts.scatter_add_(0, image_tokens, torch.ones_like(image_tokens))


def codebook_statistics(code_counts: torch.Tensor, dtype: torch.dtype = torch.float32):
    """
    Fraction of the codebook used and perplexity (`exp` of the entropy of the code distribution; `codebook_size` when
    all codes are used equally) of code counts `(codebook_size,)`, as tensors on their device. The one definition
    behind the model's per-batch outputs, the training logs and the evaluation over whole sets.
    """
    counts = code_counts.to(dtype)
    probabilities = counts / counts.sum().clamp(min=1)
    entropy = -(probabilities * probabilities.clamp(min=torch.finfo(dtype).tiny).log()).sum()
    return (counts > 0).to(dtype).mean(), entropy.exp()


class VitVqganPreTrainedModel(PreTrainedModel):
    config: VitVqganConfig
    base_model_prefix = "vit_vqgan"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["VitVqganLayer"]
    _supports_sdpa = True

    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, VitVqganPositionEmbeddings) and module.embedding_type == "learned":
            init.trunc_normal_(module.position_embeddings, mean=0.0, std=self.config.initializer_range)
        elif isinstance(module, VitVqganPositionEmbeddings):
            # A non-persistent buffer: `from_pretrained` builds the model on the meta device and fills it only here.
            table = sincos_position_embedding_2d(module.grid_size, module.grid_size, module.hidden_size)
            init.copy_(module.position_embeddings, table[None])
        elif isinstance(module, VitVqganVectorQuantizer):
            # The paper initializes the codebook from a normal distribution (§3.2); the scale is irrelevant once
            # codes are l2-normalized.
            init.normal_(module.embedding.weight, mean=0.0, std=1.0)
            if module.codebook_map is not None:
                # SimVQ's initialization (that of `nn.Linear`): entries of scale 1/sqrt(dim), which the optimizer's
                # steps reshape quickly (the codes' scale is irrelevant once normalized). Started as the identity
                # instead, the map kept 34% of the digits' codes in use after the ablation benchmark's 1000 steps,
                # against 82% (benchmarks/reproduce_tokenizer_ablations.py).
                bound = module.codebook_map.shape[0] ** -0.5
                init.uniform_(module.codebook_map, -bound, bound)


class VitVqganModel(VitVqganPreTrainedModel):
    """
    The ViT-VQGAN image tokenizer: `encode` maps pixels in `[-1, 1]` to code ids on a `(H/p, W/p)` grid, `decode` and
    `decode_tokens` map codes back to pixels, `forward` does both and returns the training losses' inputs.

    In eval mode, `encode` checks that the pixels lie in `[-1, 1]`. In training mode it checks types and shapes only, so
    that a training step never waits on the device: check training data where it is loaded.

    Example:

    ```python
    >>> import torch
    >>> from vit_vqgan_hf import VitVqganConfig, VitVqganModel

    >>> model = VitVqganModel(VitVqganConfig.from_preset("tiny")).eval()
    >>> pixel_values = torch.rand(2, 3, 32, 32) * 2 - 1
    >>> encoded = model.encode(pixel_values)
    >>> encoded.image_tokens.shape
    torch.Size([2, 8, 8])
    >>> model.decode_tokens(encoded.image_tokens).shape
    torch.Size([2, 3, 32, 32])
    ```
    """

    def __init__(self, config: VitVqganConfig):
        super().__init__(config)
        self.encoder = VitVqganEncoder(config)
        # Factorized codes: look up in a low-dimensional space, embed back up for the decoder (paper §3.2).
        self.quant_proj = nn.Linear(config.encoder_hidden_size, config.codebook_dim)
        self.quantizer = VitVqganVectorQuantizer(config)
        self.post_quant_proj = nn.Linear(config.codebook_dim, config.decoder_hidden_size)
        self.decoder = VitVqganDecoder(config)
        self.post_init()

    def _check_pixel_values(self, pixel_values: torch.Tensor, interpolate_pos_encoding: bool):
        config = self.config
        if not isinstance(pixel_values, torch.Tensor):
            raise ValueError(f"`pixel_values` must be a torch.Tensor, got {type(pixel_values).__name__}.")
        if pixel_values.ndim != 4:
            raise ValueError(
                f"`pixel_values` must have shape (batch, {config.num_channels}, height, width), "
                f"got {tuple(pixel_values.shape)}."
            )
        if not pixel_values.is_floating_point():
            raise ValueError(
                f"`pixel_values` must be a float tensor scaled to [-1, 1], got dtype {pixel_values.dtype} "
                "(convert uint8 images with `pixels / 127.5 - 1`)."
            )
        batch_size, channels, height, width = pixel_values.shape
        if channels != config.num_channels:
            raise ValueError(
                f"`pixel_values` has {channels} channels; this model expects {config.num_channels} (shape "
                f"(batch, {config.num_channels}, height, width))."
            )
        if interpolate_pos_encoding:
            if height % config.patch_size or width % config.patch_size:
                raise ValueError(
                    f"Image size {height}x{width} must be a multiple of the patch size {config.patch_size}."
                )
        elif (height, width) != (config.image_size, config.image_size):
            raise ValueError(
                f"Image size {height}x{width} does not match the model's {config.image_size}x{config.image_size}. "
                f"Resize the images, or pass `interpolate_pos_encoding=True` for other multiples of the patch size "
                f"({config.patch_size})."
            )

    @staticmethod
    def _check_pixel_range(pixel_values: torch.Tensor):
        # Images in [0, 255] or with ImageNet mean/std encode to plausible-looking tokens and decode to garbage, the
        # most reported "bad reconstruction" of VQGAN ports, so the range is checked. Images in [0, 1] fall inside
        # the range and cannot be told apart.
        low, high = torch.stack(torch.aminmax(pixel_values.detach())).tolist()
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError("`pixel_values` contains NaN or infinite values.")
        if low < -1 - PIXEL_RANGE_TOLERANCE or high > 1 + PIXEL_RANGE_TOLERANCE:
            raise ValueError(
                f"`pixel_values` must be scaled to [-1, 1], got values in [{low:.4g}, {high:.4g}]. Convert uint8 "
                "images with `pixels / 127.5 - 1` (mean = std = 0.5, not the ImageNet statistics), or use the image "
                "processor saved with the model (`AutoImageProcessor.from_pretrained`); clamp augmented images."
            )

    def encode(self, pixel_values: torch.Tensor, interpolate_pos_encoding: bool = False) -> VitVqganEncoderOutput:
        r"""
        Encode images to code ids.

        Args:
            pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, height, width)`):
                Images scaled to `[-1, 1]`.
            interpolate_pos_encoding (`bool`, *optional*, defaults to `False`):
                Accept sizes other than `config.image_size` (multiples of the patch size) by resampling the position
                embeddings.

        Returns:
            [`VitVqganEncoderOutput`]
        """
        self._check_pixel_values(pixel_values, interpolate_pos_encoding)
        # The range costs a device sync: read where data enters (eval mode), not in a training step or compiled graph.
        if not self.training and not torch.compiler.is_compiling():
            self._check_pixel_range(pixel_values)
        # Any float dtype is accepted, as in transformers' ViT: float64 arrays, or float32 images for a bf16 model.
        pixel_values = pixel_values.to(self.encoder.patch_embeddings.weight.dtype)
        height = pixel_values.shape[-2] // self.config.patch_size
        width = pixel_values.shape[-1] // self.config.patch_size
        latents = self.quant_proj(self.encoder(pixel_values, interpolate_pos_encoding))
        quantized, image_tokens, vq_loss, codebook_loss, commitment_loss, entropy_loss = self.quantizer(latents)
        image_tokens = image_tokens.reshape(-1, height, width)
        code_counts = code_counts_of(image_tokens, self.config.codebook_size)
        usage, perplexity = codebook_statistics(code_counts)
        quantized = quantized.reshape(-1, height, width, quantized.shape[-1]).permute(0, 3, 1, 2)
        return VitVqganEncoderOutput(
            quantized=quantized,
            image_tokens=image_tokens,
            vq_loss=vq_loss,
            codebook_loss=codebook_loss,
            commitment_loss=commitment_loss,
            code_counts=code_counts,
            codebook_usage=usage,
            codebook_perplexity=perplexity,
            codebook_entropy_loss=entropy_loss,
        )

    def _decode_outputs(self, quantized: torch.Tensor, interpolate_pos_encoding: bool):
        """`quantized` `(batch, codebook_dim, h, w)` -> (reconstruction in [-1, 1], logit-space loc, log-scale)."""
        if quantized.ndim != 4 or quantized.shape[1] != self.config.codebook_dim:
            raise ValueError(
                f"`quantized` must have shape (batch, {self.config.codebook_dim}, height, width), "
                f"got {tuple(quantized.shape)}."
            )
        height, width = quantized.shape[-2:]
        hidden_states = self.post_quant_proj(
            quantized.flatten(2).transpose(1, 2).to(self.post_quant_proj.weight.dtype)
        )
        outputs = self.decoder(hidden_states, height, width, interpolate_pos_encoding)
        if not self.config.use_logit_laplace:
            return straight_through_clamp(outputs), None, None
        loc, log_scale = outputs.chunk(2, dim=1)
        # The likelihood models pixels squashed into (eps, 1 - eps) (DALL-E); undo the squash for the image.
        eps = self.config.logit_laplace_eps
        pixels = (torch.sigmoid(loc) - eps) / (1 - 2 * eps)
        return straight_through_clamp(2 * pixels - 1), loc, log_scale

    def decode(self, quantized: torch.Tensor, interpolate_pos_encoding: bool = False) -> torch.Tensor:
        r"""
        Decode quantized latents to pixels.

        Args:
            quantized (`torch.FloatTensor` of shape `(batch_size, codebook_dim, height, width)`):
                Code vectors, as returned in [`VitVqganEncoderOutput.quantized`].
            interpolate_pos_encoding (`bool`, *optional*, defaults to `False`):
                Accept token grids other than the configured one.

        Returns:
            `torch.FloatTensor` of shape `(batch_size, num_channels, height * patch_size, width * patch_size)` in
            `[-1, 1]`.
        """
        return self._decode_outputs(quantized, interpolate_pos_encoding)[0]

    def decode_tokens(self, image_tokens: torch.LongTensor, interpolate_pos_encoding: bool = False) -> torch.Tensor:
        r"""
        Decode code ids to pixels.

        Args:
            image_tokens (`torch.LongTensor` of shape `(batch_size, height, width)` or `(batch_size, height * width)`):
                Code ids in `[0, codebook_size)`, raster order. A flat sequence must be a square grid.
            interpolate_pos_encoding (`bool`, *optional*, defaults to `False`):
                Accept token grids other than the configured one.

        Returns:
            `torch.FloatTensor` of shape `(batch_size, num_channels, height * patch_size, width * patch_size)` in
            `[-1, 1]`.
        """
        if not isinstance(image_tokens, torch.Tensor) or image_tokens.is_floating_point() or image_tokens.is_complex():
            raise ValueError("`image_tokens` must be an integer tensor of code ids.")
        if image_tokens.ndim == 2:
            side = math.isqrt(image_tokens.shape[1])
            if side * side != image_tokens.shape[1]:
                raise ValueError(
                    f"A flat `image_tokens` of length {image_tokens.shape[1]} is not a square grid; pass shape "
                    "(batch, height, width)."
                )
            image_tokens = image_tokens.reshape(-1, side, side)
        if image_tokens.ndim != 3:
            raise ValueError(
                f"`image_tokens` must have shape (batch, height, width) or (batch, height * width), "
                f"got {tuple(image_tokens.shape)}."
            )
        image_tokens = image_tokens.long()  # before the range check: `max() >= 256` would overflow in uint8
        if image_tokens.numel() and not torch.compiler.is_compiling():
            low, high = torch.stack(torch.aminmax(image_tokens)).tolist()
            if low < 0 or high >= self.config.codebook_size:
                raise ValueError(
                    f"`image_tokens` must lie in [0, {self.config.codebook_size}), got values in [{low}, {high}]."
                )
        quantized = self.quantizer.embed_tokens(image_tokens).permute(0, 3, 1, 2)
        return self.decode(quantized, interpolate_pos_encoding)

    def forward(self, pixel_values: torch.Tensor, interpolate_pos_encoding: bool = False) -> VitVqganModelOutput:
        r"""
        Encode, quantize and decode.

        Args:
            pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, height, width)`):
                Images scaled to `[-1, 1]`.
            interpolate_pos_encoding (`bool`, *optional*, defaults to `False`):
                Accept sizes other than `config.image_size` (multiples of the patch size).

        Returns:
            [`VitVqganModelOutput`]
        """
        encoded = self.encode(pixel_values, interpolate_pos_encoding)
        reconstruction, loc, log_scale = self._decode_outputs(encoded.quantized, interpolate_pos_encoding)
        return VitVqganModelOutput(
            **encoded, reconstruction=reconstruction, logit_laplace_loc=loc, logit_laplace_log_scale=log_scale
        )


__all__ = ["VitVqganEncoderOutput", "VitVqganModelOutput", "VitVqganPreTrainedModel", "VitVqganModel"]
