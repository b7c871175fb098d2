# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""StyleGAN2 discriminator for training the ViT-VQGAN tokenizer.

The ViT-VQGAN paper (Yu et al., ICLR 2022, Sec. 3.3 and Table 4) uses the StyleGAN discriminator of Karras et al.,
"Analyzing and Improving the Image Quality of StyleGAN" (CVPR 2020): residual downsampling blocks with FIR blur,
equalized learning rate, a minibatch standard-deviation layer and a 3x3 conv -> FC -> FC(1) head. The layout follows
NVlabs/stylegan2 `training/networks_stylegan2.py` (`D_stylegan2`, resnet architecture) and its PyTorch port
rosinality/stylegan2-pytorch `model.py` (`Discriminator`, `channel_multiplier=2`), which the unofficial ViT-VQGAN of
thuanz123/enhancing-transformers also uses. Only the tokenizer's training uses this model; it lives outside `models/`.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput
from transformers.utils.type_validators import positive_int_field

from ..models.vit_vqgan.configuration_vit_vqgan import check_preset_overrides


# Slope and gain of StyleGAN2's `fused_lrelu`: the sqrt(2) gain keeps the activations' second moment unchanged.
LEAKY_RELU_SLOPE = 0.2
LEAKY_RELU_GAIN = math.sqrt(2.0)

PRESETS = {
    # 256x256 as in the paper; channels 512 down to 32x32, then 512 at 64, 256 at 128, 128 at 256 (rosinality's
    # table with channel_multiplier=2).
    "stylegan2": {},
    # For tests and CPU runs: 32x32 images, channels 8 (32x32), 16 (16x16), 32 (8x8 and 4x4); about 55k parameters.
    "tiny": {"image_size": 32, "channel_multiplier": 1, "channel_base": 256, "max_channels": 32},
}


@strict
class VitVqganDiscriminatorConfig(PreTrainedConfig):
    r"""
    Configuration of a [`VitVqganDiscriminator`], the StyleGAN2 discriminator used to train the ViT-VQGAN tokenizer.

    The number of channels at resolution `r` is `min(channel_multiplier * channel_base // r, max_channels)`. The
    defaults reproduce the table of rosinality/stylegan2-pytorch with `channel_multiplier=2` (512 channels up to 64x64,
    256 at 128x128, 128 at 256x256, 64 at 512x512).

    Args:
        image_size (`int`, *optional*, defaults to 256):
            Height and width of the images to classify; a power of two, at least 8.
        num_channels (`int`, *optional*, defaults to 3):
            Number of image channels.
        channel_multiplier (`int`, *optional*, defaults to 2):
            Width multiplier of the high-resolution blocks (StyleGAN2 config-f and rosinality use 2).
        channel_base (`int`, *optional*, defaults to 16384):
            Channels at resolution `r` before the cap are `channel_multiplier * channel_base // r`.
        max_channels (`int`, *optional*, defaults to 512):
            Cap on the number of channels of any block.
        mbstd_group_size (`int`, *optional*, defaults to 4):
            Number of samples over which the minibatch standard deviation is computed. With a batch that it does not
            divide, the largest divisor of the batch size not above it is used.
        mbstd_num_features (`int`, *optional*, defaults to 1):
            Number of feature maps the minibatch standard deviation layer appends.
        blur_kernel (`list[int]`, *optional*, defaults to `(1, 3, 3, 1)`):
            1D FIR filter; the 2D blur before each downsampling is its normalized outer product.

    Example:

    ```python
    >>> from vit_vqgan_hf.training import VitVqganDiscriminator, VitVqganDiscriminatorConfig

    >>> configuration = VitVqganDiscriminatorConfig.from_preset("tiny")
    >>> discriminator = VitVqganDiscriminator(configuration)
    >>> discriminator.config.image_size
    32
    ```"""

    model_type = "vit_vqgan_discriminator"

    image_size: int = 256
    num_channels: int = positive_int_field(default=3)
    channel_multiplier: int = positive_int_field(default=2)
    channel_base: int = positive_int_field(default=16384)
    max_channels: int = positive_int_field(default=512)
    mbstd_group_size: int = positive_int_field(default=4)
    mbstd_num_features: int = positive_int_field(default=1)
    blur_kernel: list[int] | tuple[int, ...] = (1, 3, 3, 1)

    def channels_at(self, resolution: int) -> int:
        """Number of feature channels of the blocks working at `resolution` x `resolution`."""
        return min(self.channel_multiplier * self.channel_base // resolution, self.max_channels)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "VitVqganDiscriminatorConfig":
        """
        Build a named configuration.

        Args:
            name (`str`):
                `"stylegan2"` (the defaults, for 256x256 images) or `"tiny"` (32x32 images, a few channels).
            overrides:
                Fields to change from the preset, for example `image_size=64`; a name that is not a field raises a
                `ValueError`.

        Returns:
            [`VitVqganDiscriminatorConfig`]
        """
        if name not in PRESETS:
            raise ValueError(f"Unknown discriminator preset {name!r}; expected one of {sorted(PRESETS)}.")
        check_preset_overrides(cls, overrides)
        return cls(**{**PRESETS[name], **overrides})

    def validate_architecture(self):
        """Part of `@strict`-powered validation: cross-field checks, run at construction."""
        if self.image_size < 8 or self.image_size & (self.image_size - 1):
            raise ValueError(f"`image_size` must be a power of two of at least 8, got {self.image_size}.")
        if self.channels_at(self.image_size) < 1:
            raise ValueError(
                f"`channel_multiplier * channel_base` ({self.channel_multiplier * self.channel_base}) must be at "
                f"least `image_size` ({self.image_size}) so that every block has a channel."
            )
        if self.channels_at(4) % self.mbstd_num_features:
            raise ValueError(
                f"`mbstd_num_features` ({self.mbstd_num_features}) must divide the channels of the 4x4 features "
                f"({self.channels_at(4)})."
            )
        if len(self.blur_kernel) < 2 or any(tap < 0 for tap in self.blur_kernel) or sum(self.blur_kernel) <= 0:
            raise ValueError(f"`blur_kernel` must hold at least two non-negative taps, got {self.blur_kernel}.")


@dataclass
class VitVqganDiscriminatorOutput(ModelOutput):
    r"""
    Output of [`VitVqganDiscriminator.forward`].

    Args:
        logits (`torch.FloatTensor` of shape `(batch_size,)`):
            Real-vs-fake logit of every image (positive means "real").
    """

    logits: torch.FloatTensor | None = None


def make_blur_kernel(taps: list[int] | tuple[int, ...]) -> torch.Tensor:
    """Normalized 2D outer product of a 1D FIR filter, as StyleGAN2's `setup_filter`."""
    taps_1d = torch.tensor(taps, dtype=torch.float32)
    kernel = torch.outer(taps_1d, taps_1d)
    return kernel / kernel.sum()


class VitVqganDiscriminatorBlur(nn.Module):
    """Depthwise FIR low-pass filter with zero padding (`upfirdn2d` with `up = down = 1`)."""

    def __init__(self, config: VitVqganDiscriminatorConfig, padding: tuple[int, int]):
        super().__init__()
        # Derived from the config, so not saved; `_init_weights` refills it after `from_pretrained`.
        self.kernel = nn.Buffer(make_blur_kernel(config.blur_kernel), persistent=False)
        self.padding = padding

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        num_channels = hidden_states.shape[1]
        pad_before, pad_after = self.padding
        hidden_states = F.pad(hidden_states, (pad_before, pad_after, pad_before, pad_after))
        # The kernel is symmetric, so correlation (conv2d) equals the convolution of upfirdn2d.
        kernel = self.kernel.to(hidden_states.dtype).expand(num_channels, 1, *self.kernel.shape)
        return F.conv2d(hidden_states, kernel, groups=num_channels)


class VitVqganDiscriminatorEqualizedConv2d(nn.Module):
    """
    Conv2d with StyleGAN's equalized learning rate: weights are stored with unit variance and scaled by He's constant
    `1 / sqrt(fan_in)` at run time, so Adam's per-parameter step acts alike on every layer.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride=1, padding=0, bias=True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.stride = stride
        self.padding = padding

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        weight = self.weight * self.weight_gain
        return F.conv2d(hidden_states, weight, self.bias, stride=self.stride, padding=self.padding)


class VitVqganDiscriminatorEqualizedLinear(nn.Module):
    """Linear layer with equalized learning rate (see [`VitVqganDiscriminatorEqualizedConv2d`])."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.weight_gain = 1.0 / math.sqrt(in_features)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return F.linear(hidden_states, self.weight * self.weight_gain, self.bias)


class VitVqganDiscriminatorConvLayer(nn.Module):
    """
    Equalized conv, optionally preceded by a blur and a stride-2 downsampling, optionally followed by StyleGAN2's
    scaled leaky ReLU (`fused_lrelu`: bias, leaky ReLU 0.2, gain sqrt(2)).
    """

    def __init__(
        self,
        config: VitVqganDiscriminatorConfig,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        downsample: bool = False,
        activate: bool = True,
    ):
        super().__init__()
        if downsample:
            # Pad so that blur (len(taps) taps) followed by the stride-2 conv halves the size exactly
            # (rosinality's `ConvLayer`: p = (len(taps) - 2) + (kernel_size - 1)).
            total_padding = len(config.blur_kernel) - 2 + kernel_size - 1
            self.blur = VitVqganDiscriminatorBlur(config, ((total_padding + 1) // 2, total_padding // 2))
            stride, padding = 2, 0
        else:
            self.blur = nn.Identity()
            stride, padding = 1, kernel_size // 2
        self.conv = VitVqganDiscriminatorEqualizedConv2d(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=activate
        )
        self.activate = activate

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.conv(self.blur(hidden_states))
        if self.activate:
            hidden_states = F.leaky_relu(hidden_states, LEAKY_RELU_SLOPE) * LEAKY_RELU_GAIN
        return hidden_states


class VitVqganDiscriminatorResidualBlock(nn.Module):
    """Two 3x3 convs (the second one downsampling) plus a blurred 1x1 skip, summed and scaled by 1/sqrt(2)."""

    def __init__(self, config: VitVqganDiscriminatorConfig, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = VitVqganDiscriminatorConvLayer(config, in_channels, in_channels, 3)
        self.conv2 = VitVqganDiscriminatorConvLayer(config, in_channels, out_channels, 3, downsample=True)
        self.skip = VitVqganDiscriminatorConvLayer(
            config, in_channels, out_channels, 1, downsample=True, activate=False
        )

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        residual = self.skip(hidden_states)
        hidden_states = self.conv2(self.conv1(hidden_states))
        return (hidden_states + residual) / math.sqrt(2.0)


class VitVqganDiscriminatorMinibatchStd(nn.Module):
    """
    Minibatch standard deviation (Karras et al. 2018, as in StyleGAN2): split the batch into groups, take the standard
    deviation of every feature over each group, average it over channels and positions, and append it as
    `mbstd_num_features` constant feature maps, so that D can see the diversity of a batch.
    """

    def __init__(self, config: VitVqganDiscriminatorConfig):
        super().__init__()
        self.group_size = config.mbstd_group_size
        self.num_features = config.mbstd_num_features

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        batch_size, num_channels, height, width = hidden_states.shape
        # StyleGAN2 needs a batch divisible by the group; take the largest group size that divides it instead
        # (1 for a prime batch size: the appended feature is then the constant sqrt(1e-8)).
        group_size = min(self.group_size, batch_size)
        while batch_size % group_size:
            group_size -= 1
        # Sample n belongs to group n % (batch_size // group_size), as in NVlabs' reshape.
        grouped = hidden_states.view(
            group_size, batch_size // group_size, self.num_features, num_channels // self.num_features, height, width
        )
        std = torch.sqrt(grouped.var(dim=0, unbiased=False) + 1e-8)
        std = std.mean(dim=(2, 3, 4)).view(batch_size // group_size, self.num_features, 1, 1)
        std = std.repeat(group_size, 1, height, width)
        return torch.cat([hidden_states, std], dim=1)


class VitVqganDiscriminator(PreTrainedModel):
    """
    StyleGAN2 discriminator (resnet architecture) that scores images in `[-1, 1]` as real or fake.

    `image_size x image_size` images go through a 1x1 "from RGB" conv, residual blocks that halve the resolution down to
    4x4, the minibatch standard deviation layer, a 3x3 conv, and two linear layers to one logit per image. All layers use
    the equalized learning rate; weights are initialized from N(0, 1) and scaled at run time.

    Example:

    ```python
    >>> import torch
    >>> from vit_vqgan_hf.training import VitVqganDiscriminator, VitVqganDiscriminatorConfig

    >>> discriminator = VitVqganDiscriminator(VitVqganDiscriminatorConfig.from_preset("tiny"))
    >>> discriminator(torch.rand(3, 3, 32, 32) * 2 - 1).logits.shape
    torch.Size([3])
    ```
    """

    config: VitVqganDiscriminatorConfig
    base_model_prefix = "discriminator"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    _no_split_modules = ["VitVqganDiscriminatorResidualBlock"]

    def __init__(self, config: VitVqganDiscriminatorConfig):
        super().__init__(config)
        channels = config.channels_at(config.image_size)
        self.from_rgb = VitVqganDiscriminatorConvLayer(config, config.num_channels, channels, 1)
        self.blocks = nn.ModuleList()
        resolution = config.image_size
        while resolution > 4:
            resolution //= 2
            self.blocks.append(VitVqganDiscriminatorResidualBlock(config, channels, config.channels_at(resolution)))
            channels = config.channels_at(resolution)
        self.minibatch_std = VitVqganDiscriminatorMinibatchStd(config)
        self.final_conv = VitVqganDiscriminatorConvLayer(config, channels + config.mbstd_num_features, channels, 3)
        self.final_dense = VitVqganDiscriminatorEqualizedLinear(channels * 4 * 4, channels)
        self.classifier = VitVqganDiscriminatorEqualizedLinear(channels, 1)
        self.post_init()

    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, (VitVqganDiscriminatorEqualizedConv2d, VitVqganDiscriminatorEqualizedLinear)):
            # Equalized learning rate (Karras et al. 2018, Sec. 4.1): N(0, 1) weights, the He scale is applied at run
            # time; biases start at zero as in StyleGAN2.
            init.normal_(module.weight, mean=0.0, std=1.0)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, VitVqganDiscriminatorBlur):
            init.copy_(module.kernel, make_blur_kernel(self.config.blur_kernel))

    def forward(self, pixel_values: torch.Tensor) -> VitVqganDiscriminatorOutput:
        """
        Score images as real (positive logits) or fake.

        Args:
            pixel_values (`torch.FloatTensor` of shape `(batch_size, num_channels, image_size, image_size)`):
                Images in `[-1, 1]`.

        Returns:
            [`VitVqganDiscriminatorOutput`] with `logits` of shape `(batch_size,)`.
        """
        expected_size = (self.config.image_size, self.config.image_size)
        if tuple(pixel_values.shape[-2:]) != expected_size:
            raise ValueError(
                f"The discriminator was built for {expected_size[0]}x{expected_size[1]} images, got "
                f"{pixel_values.shape[-2]}x{pixel_values.shape[-1]}."
            )
        hidden_states = self.from_rgb(pixel_values)
        for block in self.blocks:
            hidden_states = block(hidden_states)
        hidden_states = self.minibatch_std(hidden_states)
        hidden_states = self.final_conv(hidden_states)
        hidden_states = self.final_dense(hidden_states.flatten(1))
        hidden_states = F.leaky_relu(hidden_states, LEAKY_RELU_SLOPE) * LEAKY_RELU_GAIN
        logits = self.classifier(hidden_states).squeeze(1)
        return VitVqganDiscriminatorOutput(logits=logits)


__all__ = ["VitVqganDiscriminator", "VitVqganDiscriminatorConfig", "VitVqganDiscriminatorOutput"]
