"""Helpers of the evaluation tests: a small random feature network, pytorch-fid names, image folders."""

import re

import numpy as np
import torch
from PIL import Image
from torch import nn


class TinyFeatureNetwork(nn.Module):
    """A small random feature network with the contract of the FID Inception: uint8 images -> features, logits."""

    num_features = 6

    def __init__(self, seed: int = 0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv2d(3, self.num_features, kernel_size=3, stride=2)
        self.classifier = nn.Linear(self.num_features, 5)
        for parameter in self.parameters():
            parameter.data = torch.randn(parameter.shape, generator=generator)

    def features_and_logits(self, images):
        features = self.conv(images.float() / 255).relu().mean(dim=(2, 3))
        return features, self.classifier(features)

    def forward(self, images):
        return self.features_and_logits(images)[0]


def pytorch_fid_name(key: str) -> str:
    """Our Inception parameter name -> pytorch-fid's (torchvision's capitalized top-level module names)."""
    return re.sub(r"^(conv2d|mixed)_", lambda match: match.group(1).capitalize() + "_", key)


def write_image_folder(root, sizes_per_class, seed=0):
    """`root/<class>/<i>.png` with random RGB images; `sizes_per_class` maps class name -> list of (width, height)."""
    rng = np.random.default_rng(seed)
    for class_name, sizes in sizes_per_class.items():
        folder = root / class_name
        folder.mkdir(parents=True, exist_ok=True)
        for index, (width, height) in enumerate(sizes):
            Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(folder / f"{index}.png")
    return root
