"""Helpers of the evaluation tests: a small random feature network, pytorch-fid names, a tiny image classifier."""

import re

import torch
from torch import nn
from transformers import ConvNextImageProcessorPil, ResNetConfig, ResNetForImageClassification


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


# Classifier rejection sampling: a tiny ResNet and an image processor saved like microsoft/resnet-101's (ConvNeXT's
# processor: shorter side to int(shortest_edge / crop_pct), central crop of shortest_edge), with a distinct mean/std.
CLASSIFIER_PROCESSOR = {"size": {"shortest_edge": 12}, "crop_pct": 0.875, "image_std": [0.2, 0.25, 0.3]}
CLASSIFIER_PROCESSOR["image_mean"] = [0.4, 0.5, 0.6]


def save_tiny_classifier(folder, num_labels=3, image_processor=None):
    """A random ResNet classifier of `num_labels` labels with its image processor in `folder`."""
    torch.manual_seed(0)
    config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 12], depths=[1, 1], layer_type="basic")
    config.num_labels = num_labels
    ResNetForImageClassification(config).save_pretrained(folder)
    (image_processor or ConvNextImageProcessorPil(**CLASSIFIER_PROCESSOR)).save_pretrained(folder)
    return folder
