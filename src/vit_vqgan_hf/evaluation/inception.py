# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""The InceptionV3 feature network of FID, in plain PyTorch.

FID (Heusel et al. 2017) and the Inception Score (Salimans et al. 2016) are defined on TensorFlow's
`inception-2015-12-05` graph. mseitzer/pytorch-fid ported its weights to PyTorch
(`pt_inception-2015-12-05-6726825d.pth`) on top of torchvision's `Inception3`, with four changes that make the
network match the TensorFlow graph: average pools that do not count padding in blocks A, C and the first E block, a
max pool in the last E block, and a 1008-way classifier. [`FidInceptionV3`] rebuilds that network without torchvision
(which does not import next to the pinned torch), and [`load_fid_inception`] reads the weights from a file or a Hub
repository the user names; nothing is downloaded on construction.

The layout follows pytorch-fid `src/pytorch_fid/inception.py` and torchvision `models/inception.py`.
"""

import hashlib
import os
import re

import torch
import torch.nn.functional as F
from torch import nn

from ..utils.weight_files import read_state_dict, resolve_weight_files, sha256_of_file


FID_INCEPTION_NAME = "pytorch-fid InceptionV3 (TensorFlow inception-2015-12-05)"
FID_INCEPTION_INPUT_SIZE = 299
FID_INCEPTION_NUM_FEATURES = 2048
FID_INCEPTION_NUM_CLASSES = 1008
# torch.hub names release files `<name>-<first 8 hex digits of the file's sha256>.<ext>`.
PYTORCH_FID_WEIGHTS_SHA256_PREFIX = "6726825d"
PREPROCESSING = (
    "uint8 RGB / 255 (float input taken as [0, 1]), resized to 299x299 with bilinear interpolation "
    "(align_corners=False, no antialiasing) as in pytorch-fid, then scaled to [-1, 1]"
)

# pytorch-fid's `fid_inception_v3()` state dict names top-level modules like torchvision (`Conv2d_1a_3x3`,
# `Mixed_5b`); ours are the same names in lower case. pytorch-fid's `InceptionV3` wrapper stores the same modules as
# `blocks.{block}.{index}` and drops the classifier.
_WRAPPER_BLOCKS = (
    ("conv2d_1a_3x3", "conv2d_2a_3x3", "conv2d_2b_3x3"),
    ("conv2d_3b_1x1", "conv2d_4a_3x3"),
    ("mixed_5b", "mixed_5c", "mixed_5d", "mixed_6a", "mixed_6b", "mixed_6c", "mixed_6d", "mixed_6e"),
    ("mixed_7a", "mixed_7b", "mixed_7c"),
)
_WRAPPER_KEY = re.compile(r"^blocks\.(\d)\.(\d)\.(.*)$")
_TOP_LEVEL_KEY = re.compile(r"^(Conv2d_\w+?|Mixed_\w+?)\.(.*)$")
# Tensors that the accepted formats may hold but the FID network does not use.
_IGNORED_KEYS = re.compile(r"(^|\.)num_batches_tracked$|^AuxLogits\.")

EXPECTED_LAYOUT = (
    "the FID InceptionV3 weights: pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` (keys `Conv2d_1a_3x3.conv."
    "weight`, ..., `Mixed_7c.branch_pool.bn.running_var`, `fc.weight` of shape (1008, 2048), `fc.bias`), a state dict "
    "of pytorch-fid's `InceptionV3` wrapper (`blocks.{0..3}.{i}.*`, no classifier), or `FidInceptionV3().state_dict()` "
    "(the same names in lower case) saved as .safetensors, .pth, .pt or .bin; torchvision's `inception_v3_google` "
    "ImageNet weights are a different network and are refused"
)


class FidInceptionConv(nn.Module):
    """Convolution without bias, batch norm (eps 1e-3) in inference mode, ReLU: torchvision's `BasicConv2d`."""

    def __init__(self, in_channels: int, out_channels: int, **conv_kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **conv_kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(hidden_states)))


def _average_pool_without_padding(hidden_states: torch.Tensor) -> torch.Tensor:
    # TensorFlow's average pool divides by the number of real (unpadded) inputs.
    return F.avg_pool2d(hidden_states, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FidInceptionBlockA(nn.Module):
    """Inception block A (35x35), with TensorFlow's average pool."""

    def __init__(self, in_channels: int, pool_features: int):
        super().__init__()
        self.branch1x1 = FidInceptionConv(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = FidInceptionConv(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = FidInceptionConv(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = FidInceptionConv(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = FidInceptionConv(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = FidInceptionConv(96, 96, kernel_size=3, padding=1)
        self.branch_pool = FidInceptionConv(in_channels, pool_features, kernel_size=1)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        branch5x5 = self.branch5x5_2(self.branch5x5_1(hidden_states))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(hidden_states)))
        branch_pool = self.branch_pool(_average_pool_without_padding(hidden_states))
        return torch.cat([self.branch1x1(hidden_states), branch5x5, branch3x3dbl, branch_pool], dim=1)


class FidInceptionBlockB(nn.Module):
    """Grid reduction 35x35 -> 17x17."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3 = FidInceptionConv(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = FidInceptionConv(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = FidInceptionConv(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = FidInceptionConv(96, 96, kernel_size=3, stride=2)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(hidden_states)))
        branch_pool = F.max_pool2d(hidden_states, kernel_size=3, stride=2)
        return torch.cat([self.branch3x3(hidden_states), branch3x3dbl, branch_pool], dim=1)


class FidInceptionBlockC(nn.Module):
    """Inception block C (17x17, factorized 7x7 convolutions), with TensorFlow's average pool."""

    def __init__(self, in_channels: int, channels_7x7: int):
        super().__init__()
        width = channels_7x7
        self.branch1x1 = FidInceptionConv(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = FidInceptionConv(in_channels, width, kernel_size=1)
        self.branch7x7_2 = FidInceptionConv(width, width, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = FidInceptionConv(width, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = FidInceptionConv(in_channels, width, kernel_size=1)
        self.branch7x7dbl_2 = FidInceptionConv(width, width, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = FidInceptionConv(width, width, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = FidInceptionConv(width, width, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = FidInceptionConv(width, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = FidInceptionConv(in_channels, 192, kernel_size=1)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(hidden_states)))
        branch7x7dbl = hidden_states
        for layer in (
            self.branch7x7dbl_1,
            self.branch7x7dbl_2,
            self.branch7x7dbl_3,
            self.branch7x7dbl_4,
            self.branch7x7dbl_5,
        ):
            branch7x7dbl = layer(branch7x7dbl)
        branch_pool = self.branch_pool(_average_pool_without_padding(hidden_states))
        return torch.cat([self.branch1x1(hidden_states), branch7x7, branch7x7dbl, branch_pool], dim=1)


class FidInceptionBlockD(nn.Module):
    """Grid reduction 17x17 -> 8x8."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3_1 = FidInceptionConv(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = FidInceptionConv(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = FidInceptionConv(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = FidInceptionConv(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = FidInceptionConv(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = FidInceptionConv(192, 192, kernel_size=3, stride=2)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        branch3x3 = self.branch3x3_2(self.branch3x3_1(hidden_states))
        branch7x7x3 = hidden_states
        for layer in (self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            branch7x7x3 = layer(branch7x7x3)
        branch_pool = F.max_pool2d(hidden_states, kernel_size=3, stride=2)
        return torch.cat([branch3x3, branch7x7x3, branch_pool], dim=1)


class FidInceptionBlockE(nn.Module):
    """
    Inception block E (8x8, expanded filter banks). The TensorFlow graph pools with an average pool that ignores
    padding in the first E block and with a max pool in the second (`pool="max"`), unlike the paper's description.
    """

    def __init__(self, in_channels: int, pool: str = "average"):
        super().__init__()
        if pool not in ("average", "max"):
            raise ValueError(f"`pool` must be 'average' or 'max', got {pool!r}.")
        self.pool = pool
        self.branch1x1 = FidInceptionConv(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = FidInceptionConv(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = FidInceptionConv(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = FidInceptionConv(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = FidInceptionConv(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = FidInceptionConv(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = FidInceptionConv(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = FidInceptionConv(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = FidInceptionConv(in_channels, 192, kernel_size=1)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        branch3x3 = self.branch3x3_1(hidden_states)
        branch3x3 = torch.cat([self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3)], dim=1)
        branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(hidden_states))
        branch3x3dbl = torch.cat([self.branch3x3dbl_3a(branch3x3dbl), self.branch3x3dbl_3b(branch3x3dbl)], dim=1)
        if self.pool == "max":
            pooled = F.max_pool2d(hidden_states, kernel_size=3, stride=1, padding=1)
        else:
            pooled = _average_pool_without_padding(hidden_states)
        branch_pool = self.branch_pool(pooled)
        return torch.cat([self.branch1x1(hidden_states), branch3x3, branch3x3dbl, branch_pool], dim=1)


class FidInceptionV3(nn.Module):
    """
    The InceptionV3 network of FID with pytorch-fid's TensorFlow-compatible blocks, as a frozen feature network.

    `forward` maps images to the 2048-d average-pooled features that FID, KID and precision/recall use, so the
    network can be passed as `feature=` to torchmetrics' `FrechetInceptionDistance` and `KernelInceptionDistance`
    (it declares `num_features`). [`FidInceptionV3.features_and_logits`] also returns the unbiased 1008-way logits
    (`features @ fc.weight.T`, without the bias) that the original Inception Score code used.

    Inputs are `uint8` images in `[0, 255]` or float images in `[0, 1]`, of any size: they are resized to 299x299
    with bilinear interpolation (`align_corners=False`, no antialiasing) and scaled to `[-1, 1]`, as in pytorch-fid.
    The network always runs in float32 in inference mode (`train()` is a no-op), also under autocast.

    A new network has random weights (He-normal, so that activations stay finite): use [`load_fid_inception`].

    Example:

    ```python
    >>> import torch
    >>> from vit_vqgan_hf.evaluation import FidInceptionV3

    >>> inception = FidInceptionV3()  # random weights; see `load_fid_inception`
    >>> images = torch.randint(0, 256, (1, 3, 64, 64), dtype=torch.uint8)
    >>> inception(images).shape
    torch.Size([1, 2048])
    ```
    """

    num_features = FID_INCEPTION_NUM_FEATURES
    num_classes = FID_INCEPTION_NUM_CLASSES
    feature_network_name = FID_INCEPTION_NAME
    preprocessing = PREPROCESSING

    def __init__(self):
        super().__init__()
        self.conv2d_1a_3x3 = FidInceptionConv(3, 32, kernel_size=3, stride=2)
        self.conv2d_2a_3x3 = FidInceptionConv(32, 32, kernel_size=3)
        self.conv2d_2b_3x3 = FidInceptionConv(32, 64, kernel_size=3, padding=1)
        self.conv2d_3b_1x1 = FidInceptionConv(64, 80, kernel_size=1)
        self.conv2d_4a_3x3 = FidInceptionConv(80, 192, kernel_size=3)
        self.mixed_5b = FidInceptionBlockA(192, pool_features=32)
        self.mixed_5c = FidInceptionBlockA(256, pool_features=64)
        self.mixed_5d = FidInceptionBlockA(288, pool_features=64)
        self.mixed_6a = FidInceptionBlockB(288)
        self.mixed_6b = FidInceptionBlockC(768, channels_7x7=128)
        self.mixed_6c = FidInceptionBlockC(768, channels_7x7=160)
        self.mixed_6d = FidInceptionBlockC(768, channels_7x7=160)
        self.mixed_6e = FidInceptionBlockC(768, channels_7x7=192)
        self.mixed_7a = FidInceptionBlockD(768)
        self.mixed_7b = FidInceptionBlockE(1280, pool="average")
        self.mixed_7c = FidInceptionBlockE(2048, pool="max")
        self.fc = nn.Linear(FID_INCEPTION_NUM_FEATURES, FID_INCEPTION_NUM_CLASSES)
        # Whether `fc` holds trained weights; pytorch-fid's `InceptionV3` wrapper files have no classifier.
        self.has_logits = True
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> "FidInceptionV3":
        """The feature network is frozen: batch norm always uses its running statistics."""
        return super().train(False)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """`uint8` `[0, 255]` or float `[0, 1]` images `(batch, 3, H, W)` -> float32 `(batch, 3, 299, 299)` in `[-1, 1]`."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"Expected RGB images of shape (batch, 3, height, width), got {tuple(images.shape)}.")
        if images.dtype == torch.uint8:
            images = images.float() / 255
        elif images.is_floating_point():
            images = images.float()
            if images.numel() and (images.min() < -1e-3 or images.max() > 1 + 1e-3):
                raise ValueError(
                    f"Float images must be in [0, 1], got values in [{float(images.min()):.3f}, "
                    f"{float(images.max()):.3f}]; convert images in [-1, 1] with `(images + 1) / 2`, or pass uint8."
                )
        else:
            raise ValueError(f"Images must be uint8 in [0, 255] or float in [0, 1], got dtype {images.dtype}.")
        size = (FID_INCEPTION_INPUT_SIZE, FID_INCEPTION_INPUT_SIZE)
        images = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
        return 2 * images - 1

    def forward_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Preprocessed `(batch, 3, 299, 299)` inputs in `[-1, 1]` -> pooled features `(batch, 2048)`."""
        hidden_states = self.conv2d_2b_3x3(self.conv2d_2a_3x3(self.conv2d_1a_3x3(pixel_values)))
        hidden_states = F.max_pool2d(hidden_states, kernel_size=3, stride=2)
        hidden_states = self.conv2d_4a_3x3(self.conv2d_3b_1x1(hidden_states))
        hidden_states = F.max_pool2d(hidden_states, kernel_size=3, stride=2)
        for block in (
            self.mixed_5b,
            self.mixed_5c,
            self.mixed_5d,
            self.mixed_6a,
            self.mixed_6b,
            self.mixed_6c,
            self.mixed_6d,
            self.mixed_6e,
            self.mixed_7a,
            self.mixed_7b,
            self.mixed_7c,
        ):
            hidden_states = block(hidden_states)
        return hidden_states.mean(dim=(2, 3))

    def features_and_logits(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """
        Pooled features and unbiased classifier logits of a batch of images.

        Args:
            images (`torch.Tensor` of shape `(batch_size, 3, height, width)`):
                `uint8` images in `[0, 255]` or float images in `[0, 1]`.

        Returns:
            `tuple(torch.FloatTensor, torch.FloatTensor | None)`: features of shape `(batch_size, 2048)` and logits of
            shape `(batch_size, 1008)` (float32); the logits are `None` when the loaded weights have no classifier.
        """
        with torch.autocast(device_type=images.device.type, enabled=False):
            features = self.forward_features(self.preprocess(images.to(self.fc.weight.device)))
            logits = features @ self.fc.weight.t() if self.has_logits else None
        return features, logits

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """
        Pooled 2048-d features of a batch of images.

        Args:
            images (`torch.Tensor` of shape `(batch_size, 3, height, width)`):
                `uint8` images in `[0, 255]` or float images in `[0, 1]`.

        Returns:
            `torch.FloatTensor` of shape `(batch_size, 2048)`.
        """
        return self.features_and_logits(images)[0]


def _canonical_key(key: str) -> str:
    """Our name of a tensor given under pytorch-fid's or torchvision's names."""
    match = _WRAPPER_KEY.match(key)
    if match:
        block, index, rest = int(match.group(1)), int(match.group(2)), match.group(3)
        # In the wrapper, the max pools of blocks 0 and 1 take the last index and have no parameters.
        if block < len(_WRAPPER_BLOCKS) and index < len(_WRAPPER_BLOCKS[block]):
            return f"{_WRAPPER_BLOCKS[block][index]}.{rest}"
        return key
    match = _TOP_LEVEL_KEY.match(key)
    if match:
        return f"{match.group(1).lower()}.{match.group(2)}"
    return key


def state_dict_sha256(module: nn.Module) -> str:
    """
    Hex sha256 of a network's weights, independent of the file format they were stored in.

    Hashes every tensor of `module.state_dict()` (persistent buffers included, `num_batches_tracked` excluded) in
    sorted key order: the key, the dtype, the shape and the raw bytes. Two networks with the same architecture names
    and identical weights get the same checksum, whether loaded from a `.pth` or a `.safetensors` file.

    Args:
        module (`nn.Module`):
            The network.

    Returns:
        `str`: 64 hex digits.
    """
    digest = hashlib.sha256()
    state_dict = module.state_dict()
    for key in sorted(state_dict):
        if _IGNORED_KEYS.search(key):
            continue
        tensor = state_dict[key].detach().cpu().contiguous()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def load_fid_inception(path_or_hub_id: str | os.PathLike, revision: str | None = None) -> FidInceptionV3:
    """
    Build a frozen [`FidInceptionV3`] from local weights or a Hugging Face Hub repository.

    Nothing ships with this package. The standard weights are pytorch-fid's release file
    `pt_inception-2015-12-05-6726825d.pth` (the TensorFlow `inception-2015-12-05` graph ported to PyTorch); save it
    next to your data or in a Hub repository. Accepted layouts:

    ```
    pt_inception-2015-12-05-6726825d.pth   # pytorch-fid: Conv2d_1a_3x3.conv.weight, ..., Mixed_7c.*, fc.weight, fc.bias
    fid_inception.safetensors              # FidInceptionV3().state_dict(): conv2d_1a_3x3.conv.weight, ..., fc.*
    inception_wrapper.pth                  # pytorch-fid InceptionV3().state_dict(): blocks.{0..3}.{i}.* (no fc:
                                           #   features only, the Inception Score is then unavailable)
    ```

    A folder or a Hub repository must hold exactly one weight file. The returned network carries its provenance:
    `weights_sha256` (the format-independent [`state_dict_sha256`] of the loaded weights, which results files and
    reference statistics record), `weights_files` (name and sha256 of each file read), `source` and
    `is_pytorch_fid_release` (whether the file's sha256 starts with the release's `6726825d`).

    Args:
        path_or_hub_id (`str` or `os.PathLike`):
            A weight file, a folder holding one, or the id of a Hub repository holding one.
        revision (`str`, *optional*, defaults to `None`):
            Branch, tag or commit of the Hub repository.

    Returns:
        [`FidInceptionV3`] with the loaded weights, frozen and in inference mode.

    Raises:
        `FileNotFoundError` or `OSError`: when the path does not exist and the Hub repository cannot be downloaded.
        `ValueError`: when tensors are missing, unknown or of the wrong shape (for example torchvision's
        1000-class ImageNet weights).

    Example:

    ```python
    >>> from vit_vqgan_hf.evaluation import load_fid_inception

    >>> inception = load_fid_inception("path/to/pt_inception-2015-12-05-6726825d.pth")  # doctest: +SKIP
    >>> inception.weights_sha256  # doctest: +SKIP
    ```
    """
    files = resolve_weight_files(path_or_hub_id, EXPECTED_LAYOUT, revision, single=True)
    state_dict = {}
    for key, tensor in read_state_dict(files[0], EXPECTED_LAYOUT).items():
        if _IGNORED_KEYS.search(key):
            continue
        state_dict[_canonical_key(key)] = tensor

    model = FidInceptionV3()
    expected = {key for key in model.state_dict() if not _IGNORED_KEYS.search(key)}
    classifier_keys = {"fc.weight", "fc.bias"}
    has_logits = bool(classifier_keys & state_dict.keys())
    required = expected if has_logits else expected - classifier_keys
    missing_keys = sorted(required - state_dict.keys())
    unexpected_keys = sorted(state_dict.keys() - expected)
    if missing_keys or unexpected_keys:
        raise ValueError(
            f"The weights in {str(files[0])!r} are not the FID InceptionV3. Missing: {missing_keys[:8]}"
            f"{' ...' if len(missing_keys) > 8 else ''} ({len(missing_keys)} in all). Unexpected: "
            f"{unexpected_keys[:8]}{' ...' if len(unexpected_keys) > 8 else ''} ({len(unexpected_keys)} in all). "
            f"Expected {EXPECTED_LAYOUT}."
        )
    own_state = model.state_dict()
    wrong_shapes = [
        f"{key}: {tuple(tensor.shape)} instead of {tuple(own_state[key].shape)}"
        for key, tensor in state_dict.items()
        if tuple(tensor.shape) != tuple(own_state[key].shape)
    ]
    if wrong_shapes:
        raise ValueError(
            f"The weights in {str(files[0])!r} have wrong shapes: {wrong_shapes[:4]}. Expected {EXPECTED_LAYOUT}."
        )
    model.load_state_dict({key: tensor.float() for key, tensor in state_dict.items()}, strict=False)
    model.has_logits = has_logits
    if not has_logits:
        # The classifier stays unused; zero it so that the checksum does not depend on its random initialization.
        nn.init.zeros_(model.fc.weight)
        nn.init.zeros_(model.fc.bias)
    file_sha256 = sha256_of_file(files[0])
    model.source = str(path_or_hub_id)
    model.weights_files = [{"name": files[0].name, "sha256": file_sha256}]
    model.is_pytorch_fid_release = file_sha256.startswith(PYTORCH_FID_WEIGHTS_SHA256_PREFIX)
    model.weights_sha256 = state_dict_sha256(model)
    return model


__all__ = [
    "FidInceptionBlockA",
    "FidInceptionBlockB",
    "FidInceptionBlockC",
    "FidInceptionBlockD",
    "FidInceptionBlockE",
    "FidInceptionConv",
    "FidInceptionV3",
    "load_fid_inception",
    "state_dict_sha256",
]
