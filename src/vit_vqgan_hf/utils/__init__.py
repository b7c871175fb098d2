# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Helpers shared by the layers above the models, which may not import each other: the tokenizer's pixel losses
(minimized in training, reported in evaluation), the weight files of pretrained feature networks (LPIPS, the FID
Inception), loading what a user named and checking a device (the scripts and the app), and the expected failures of
the command-line tools. The models never import this package: their modeling files ship alone as Hub remote code."""

from .errors import EXPECTED_ERRORS, InputError, command_line_errors
from .loading import HUB_ERRORS, check_device, load_pretrained
from .pixel_losses import l2_loss, logit_laplace_loss
from .weight_files import WEIGHT_FILE_SUFFIXES, read_state_dict, resolve_weight_files, sha256_of_file


__all__ = [
    "EXPECTED_ERRORS",
    "HUB_ERRORS",
    "InputError",
    "WEIGHT_FILE_SUFFIXES",
    "check_device",
    "command_line_errors",
    "load_pretrained",
    "l2_loss",
    "logit_laplace_loss",
    "read_state_dict",
    "resolve_weight_files",
    "sha256_of_file",
]
