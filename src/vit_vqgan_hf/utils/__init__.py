# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Helpers shared by the training and evaluation layers, which may not import each other: the tokenizer's pixel
losses (minimized in training, reported in evaluation) and the weight files of pretrained feature networks (LPIPS,
the FID Inception). The models never import this package: their modeling files ship alone as Hub remote code."""

from .pixel_losses import l2_loss, logit_laplace_loss
from .weight_files import WEIGHT_FILE_SUFFIXES, read_state_dict, resolve_weight_files, sha256_of_file


__all__ = [
    "WEIGHT_FILE_SUFFIXES",
    "l2_loss",
    "logit_laplace_loss",
    "read_state_dict",
    "resolve_weight_files",
    "sha256_of_file",
]
