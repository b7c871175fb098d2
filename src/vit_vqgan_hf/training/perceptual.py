# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""LPIPS perceptual distance with a VGG16 trunk, in plain PyTorch.

Zhang et al., "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric" (CVPR 2018): unit-normalize
the VGG16 activations after relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3, square their difference, weight the
channels with a learned 1x1 linear head, average over positions and sum over layers. The layout and constants follow
richzhang/PerceptualSimilarity `lpips/lpips.py` and `lpips/pretrained_networks.py`. torchvision is not used (it does
not import next to the pinned torch), and nothing is downloaded on construction: [`load_lpips`] reads the weights from
a path or a Hub repository the user names.
"""

import importlib.util
import os
import re
from pathlib import Path

import huggingface_hub
import torch
from huggingface_hub import hf_hub_download
from torch import nn

from ..utils.weight_files import read_state_dict, resolve_weight_files, sha256_of_file


# lpips `ScalingLayer`: maps inputs in [-1, 1] to the ImageNet statistics VGG16 was trained with.
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)

# VGG16 "D": number of 3x3 convs per block and the widths of torchvision's `vgg16()`.
VGG16_CONVS_PER_BLOCK = (2, 2, 3, 3, 3)
VGG16_CHANNELS = (64, 128, 256, 512, 512)
# Indices of the convs inside torchvision's `vgg16().features` (ReLUs and max-pools have no parameters).
VGG16_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
# The last conv of each block, whose output width is that block's width.
VGG16_BLOCK_LAST_CONV = (2, 7, 14, 21, 28)

# Other names of the same tensors: the lpips package's heads (`lin{k}.model.1` behind a dropout, `lin{k}.model.0`
# without) and the trunk inside a full `lpips.LPIPS` state dict (`net.slice{k}.{i}` keeps torchvision's index i).
KEY_ALIASES = (
    (re.compile(r"^lin(\d)\.model\.[01]\.weight$"), r"heads.\1.weight"),
    (re.compile(r"^net\.slice\d\.(\d+)\.(weight|bias)$"), r"features.\1.\2"),
)
# Tensors of the accepted formats that LPIPS does not use: the classifiers of torchvision (`classifier.*`) and of timm
# (`pre_logits.*`, `head.fc.*`), and lpips' scaling constants.
IGNORED_KEYS = re.compile(
    r"^(classifier\.\d+\.(weight|bias)|pre_logits\.fc[12]\.(weight|bias)|head\.fc\.(weight|bias)|"
    r"scaling_layer\.(shift|scale))$"
)

# `load_lpips("lpips-vgg16")`: the paper's LPIPS-VGG16 assembled from its two public sources, with nothing to assemble
# by hand. The trunk is torchvision's ImageNet VGG16 (`IMAGENET1K_V1`) as timm publishes it in safetensors (its
# `features.*` keep torchvision's indices), downloaded once into the huggingface_hub cache; the calibrated heads are
# `weights/v0.1/vgg.pth` of the `lpips` wheel, found without importing the package (which imports torchvision).
LPIPS_VGG16 = "lpips-vgg16"
VGG16_TRUNK_REPO = "timm/vgg16.tv_in1k"
VGG16_TRUNK_FILE = "model.safetensors"
LPIPS_HEADS_FILE = ("weights", "v0.1", "vgg.pth")

EXPECTED_LAYOUT = (
    "a file or a folder with the VGG16 trunk and the five LPIPS linear heads: either one merged file with the keys "
    "`features.{0,2,5,...,28}.{weight,bias}` and `heads.{0..4}.weight` (`LpipsVgg16().state_dict()`), or a folder "
    "holding torchvision's `vgg16()` state dict (e.g. `vgg16.pth`) and the lpips package's `weights/v0.1/vgg.pth` "
    "(e.g. `lpips_vgg.pth`); weight files end in .safetensors, .pth, .pt or .bin; or `lpips-vgg16` for the trunk of "
    f"the Hub repository {VGG16_TRUNK_REPO} and the heads of the installed `lpips` package"
)


class LpipsVgg16(nn.Module):
    """
    LPIPS distance with a VGG16 trunk, for inputs in `[-1, 1]`.

    The trunk is `features[:30]` of torchvision's `vgg16()` with the same module indices, so torchvision state dicts
    load unchanged; the heads are bias-free 1x1 convs named `heads.{0..4}`. The lpips package puts a dropout in front of
    each head; it is left out because the network is only used frozen. There is no layer whose behaviour depends on
    `train()`/`eval()`. Parameters are trainable after construction (the trunk randomly initialized, the heads at one);
    [`load_lpips`] returns the network with `requires_grad_(False)`, and gradients still flow to the images.

    Args:
        channels (`tuple[int, ...]`, *optional*, defaults to `(64, 128, 256, 512, 512)`):
            Widths of the five VGG16 blocks. Only tests with small random networks change them.

    Example:

    ```python
    >>> import torch
    >>> from vit_vqgan_hf.training import LpipsVgg16

    >>> lpips = LpipsVgg16(channels=(4, 8, 8, 16, 16)).requires_grad_(False)
    >>> images = torch.rand(2, 3, 32, 32) * 2 - 1
    >>> lpips(images, images)
    tensor([0., 0.])
    ```
    """

    def __init__(self, channels: tuple[int, ...] = VGG16_CHANNELS):
        super().__init__()
        if len(channels) != len(VGG16_CONVS_PER_BLOCK):
            raise ValueError(f"`channels` needs one width per VGG16 block (5), got {channels}.")
        self.shift = nn.Buffer(torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.scale = nn.Buffer(torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1), persistent=False)
        layers = []
        self.tap_indices = []
        in_channels = 3
        for block_index, (width, num_convs) in enumerate(zip(channels, VGG16_CONVS_PER_BLOCK)):
            if block_index > 0:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            for _ in range(num_convs):
                layers += [nn.Conv2d(in_channels, width, kernel_size=3, padding=1), nn.ReLU()]
                in_channels = width
            # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3: the last ReLU of each block.
            self.tap_indices.append(len(layers) - 1)
        self.features = nn.Sequential(*layers)
        self.heads = nn.ModuleList(nn.Conv2d(width, 1, kernel_size=1, bias=False) for width in channels)
        for head in self.heads:
            # Until trained heads are loaded, weigh every channel alike: lpips' uncalibrated baseline (`lpips=False`).
            nn.init.ones_(head.weight)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """
        LPIPS distance between two batches of images.

        Args:
            input (`torch.FloatTensor` of shape `(batch_size, 3, height, width)`):
                Images in `[-1, 1]`, for example reconstructions.
            target (`torch.FloatTensor` of shape `(batch_size, 3, height, width)`):
                Images in `[-1, 1]`.

        Returns:
            `torch.FloatTensor` of shape `(batch_size,)`: the distance of every pair (0 for identical images).
        """
        batch_size = input.shape[0]
        hidden_states = (torch.cat([input, target]) - self.shift) / self.scale
        heads_by_tap = dict(zip(self.tap_indices, self.heads))
        distance = 0
        for index, layer in enumerate(self.features):
            hidden_states = layer(hidden_states)
            if index not in heads_by_tap:
                continue
            # Unit-normalize every position's feature vector (lpips `normalize_tensor`), in float32 so that the
            # epsilon survives bfloat16 autocast.
            features = hidden_states.float()
            features = features / (features.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            squared_difference = (features[:batch_size] - features[batch_size:]).pow(2)
            head = heads_by_tap[index]
            distance = distance + head(squared_difference.to(head.weight.dtype)).float().mean(dim=(1, 2, 3))
        return distance


def _installed_lpips_heads() -> Path:
    """The `weights/v0.1/vgg.pth` heads inside the installed `lpips` package, located without importing it."""
    spec = importlib.util.find_spec("lpips")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    if not folders:
        raise FileNotFoundError(
            f"`{LPIPS_VGG16}` takes the LPIPS heads from the `lpips` package, which is not installed. Install it without "
            "its dependencies, `pip install lpips` with pip's no-deps option (they would install torchvision, which does "
            "not import "
            "next to this torch), or pass the path of LPIPS-VGG16 weights instead. Expected "
            f"{EXPECTED_LAYOUT}."
        )
    heads = Path(folders[0], *LPIPS_HEADS_FILE)
    if not heads.is_file():
        raise FileNotFoundError(f"The installed `lpips` package has no {'/'.join(LPIPS_HEADS_FILE)} ({heads}).")
    return heads


def lpips_vgg16_files(revision: str | None = None) -> list[Path]:
    """
    The two weight files of `load_lpips("lpips-vgg16")`: timm's safetensors of torchvision's ImageNet VGG16 from the
    Hub (cached by huggingface_hub; the snapshot folder in the path names the commit) and the heads of the `lpips`
    package.
    """
    heads = _installed_lpips_heads()
    try:
        trunk = hf_hub_download(VGG16_TRUNK_REPO, VGG16_TRUNK_FILE, revision=revision)
    except Exception as error:  # offline, no network, missing file: all mean "no trunk here"
        offline = " (offline mode is on: HF_HUB_OFFLINE=1)" if huggingface_hub.constants.HF_HUB_OFFLINE else ""
        raise OSError(
            f"`{LPIPS_VGG16}` takes the VGG16 trunk from the Hub repository {VGG16_TRUNK_REPO} ({VGG16_TRUNK_FILE}), "
            f"which could not be downloaded{offline} ({type(error).__name__}: {error}). Download it once where the Hub "
            "can be reached (it is cached), or pass the path of LPIPS-VGG16 weights instead (or train without the "
            "perceptual loss, a perceptual weight of 0)."
        ) from error
    return [Path(trunk), heads]


def load_lpips(path_or_hub_id: str | os.PathLike | list, revision: str | None = None) -> LpipsVgg16:
    """
    Build a frozen [`LpipsVgg16`] from local weights or a Hugging Face Hub repository.

    Nothing ships with this package: the VGG16 trunk (ImageNet-trained, from torchvision) and the LPIPS heads (inside
    the `lpips` wheel as `lpips/weights/v0.1/vgg.pth`) must be provided. `"lpips-vgg16"` takes both from their public
    sources ([`lpips_vgg16_files`]: the Hub repository `timm/vgg16.tv_in1k`, downloaded once, and the installed
    `lpips` package, installed without its dependencies). Accepted layouts otherwise:

    ```
    lpips_vgg16/                   # a folder: every *.safetensors / *.pth / *.pt / *.bin in it is read and merged
    ├── vgg16.pth                  # torchvision `vgg16(weights="IMAGENET1K_V1").state_dict()`:
    │                              #   features.{0,2,5,7,10,12,14,17,19,21,24,26,28}.{weight,bias} (classifier.* ignored)
    └── lpips_vgg.pth              # the lpips package's heads: lin{0..4}.model.1.weight
    lpips_vgg16.safetensors        # or one merged file: features.* and heads.{0..4}.weight
    ```

    A full `lpips.LPIPS(net="vgg").state_dict()` (`net.slice{k}.{i}.*`, `lin{k}.model.1.weight`) is accepted too. A
    merged file for the Hub can be written with `safetensors.torch.save_file(load_lpips(folder).state_dict(), path)`.
    The block widths are read from the weights.

    Args:
        path_or_hub_id (`str`, `os.PathLike` or `list`):
            `"lpips-vgg16"`, a weight file, a list of weight files, a folder of weight files, or the id of a Hub
            repository holding them.
        revision (`str`, *optional*, defaults to `None`):
            Branch, tag or commit of the Hub repository (of the VGG16 trunk for `"lpips-vgg16"`).

    Returns:
        [`LpipsVgg16`] with the loaded weights and `requires_grad_(False)`; `source` and `weights_files` (name, path
        and sha256 of every file read) record where they came from.

    Raises:
        `FileNotFoundError` or `OSError`: when the path does not exist and the Hub repository cannot be downloaded.
        `ValueError`: when tensors are missing, unknown, given twice or of the wrong shape.

    Example:

    ```python
    >>> from vit_vqgan_hf.training import load_lpips

    >>> lpips = load_lpips("path/to/lpips_vgg16")  # doctest: +SKIP
    ```
    """
    if path_or_hub_id == LPIPS_VGG16:
        files = lpips_vgg16_files(revision)
    else:
        files = resolve_weight_files(path_or_hub_id, EXPECTED_LAYOUT, revision)
    state_dict = {}
    for file in files:
        for key, tensor in read_state_dict(file, EXPECTED_LAYOUT).items():
            if IGNORED_KEYS.match(key):
                continue
            for pattern, replacement in KEY_ALIASES:
                key = pattern.sub(replacement, key)
            if key in state_dict:
                raise ValueError(f"LPIPS tensor {key!r} is given twice (again in {str(file)!r}).")
            state_dict[key] = tensor

    expected_keys = {f"features.{index}.{name}" for index in VGG16_CONV_INDICES for name in ("weight", "bias")}
    expected_keys |= {f"heads.{index}.weight" for index in range(len(VGG16_CHANNELS))}
    missing_keys = sorted(expected_keys - state_dict.keys())
    unexpected_keys = sorted(state_dict.keys() - expected_keys)
    if missing_keys or unexpected_keys:
        raise ValueError(
            f"The LPIPS weights in {str(path_or_hub_id)!r} do not match a VGG16 trunk plus LPIPS heads. "
            f"Missing: {missing_keys}. Unexpected: {unexpected_keys}. Expected {EXPECTED_LAYOUT}."
        )

    channels = tuple(state_dict[f"features.{index}.weight"].shape[0] for index in VGG16_BLOCK_LAST_CONV)
    model = LpipsVgg16(channels=channels)
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as error:
        raise ValueError(f"The LPIPS weights in {str(path_or_hub_id)!r} have wrong shapes: {error}") from error
    model.source = str(path_or_hub_id)
    model.weights_files = [{"name": file.name, "path": str(file), "sha256": sha256_of_file(file)} for file in files]
    return model.requires_grad_(False)


__all__ = ["LPIPS_VGG16", "LpipsVgg16", "load_lpips", "lpips_vgg16_files"]
