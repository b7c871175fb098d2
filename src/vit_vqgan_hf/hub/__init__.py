# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Hugging Face Hub integration: model cards filled from a training run ([`create_model_card`]) and repository
creation and resumable folder uploads ([`create_hub_repo`], [`push_folder_to_hub`])."""

from .model_cards import LIBRARY_NAME, create_model_card
from .uploads import HUB_ERRORS, UPLOAD_IGNORE_PATTERNS, create_hub_repo, prepare_upload_folder, push_folder_to_hub


__all__ = [
    "HUB_ERRORS",
    "LIBRARY_NAME",
    "UPLOAD_IGNORE_PATTERNS",
    "create_hub_repo",
    "create_model_card",
    "prepare_upload_folder",
    "push_folder_to_hub",
]
