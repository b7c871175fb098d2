# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""The key/value cache layer of `VimPipeline`'s uncompiled token loop: the package's one use of transformers' cache
internals, the reason for the `transformers<5.40` pin in setup.cfg."""

import torch
from transformers.cache_utils import DynamicLayer


class PreallocatedCacheLayer(DynamicLayer):
    """
    A `DynamicLayer` whose keys and values live in buffers allocated once for `max_cache_len` tokens: each update
    writes the new states in place and exposes the filled part as a view. The length of a VIM sequence is known in
    advance, and `DynamicLayer`'s concatenation copies the whole cache at every step (on a CPU, a fresh allocation that
    costs more than the attention itself at 1024 tokens and batch 16).

    It relies on these internals of `transformers.cache_utils` (tests/pipelines/vim/test_preallocated_cache.py checks
    them, so that a transformers release that changes them fails there, not in sampling):

    - `Cache(layers=[...])` keeps the given layers and `Cache.update(key_states, value_states, layer_idx)` returns
      `layers[layer_idx].update(key_states, value_states)`, the keys and values to attend over;
    - `DynamicLayer.__init__()` takes no argument and sets `keys = values = None` and `is_initialized = False`;
      `update` calls `lazy_initialization(key_states, value_states)` first when not `is_initialized`, and that sets
      `device`, `keys`, `values` and `is_initialized = True`;
    - `DynamicLayer.get_seq_length()` and `get_mask_sizes()`, which the model and the causal mask read, take the
      length from `keys.shape[-2]`, so exposing the filled part as `keys` keeps them right.
    """

    def __init__(self, max_cache_len: int):
        super().__init__()
        self.max_cache_len = max_cache_len

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.device = key_states.device
        batch_size, num_heads, _, head_dim = key_states.shape
        self.key_buffer = key_states.new_empty(batch_size, num_heads, self.max_cache_len, head_dim)
        self.value_buffer = value_states.new_empty(batch_size, num_heads, self.max_cache_len, value_states.shape[-1])
        self.keys, self.values = self.key_buffer[:, :, :0], self.value_buffer[:, :, :0]
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        start = self.keys.shape[-2]
        end = start + key_states.shape[-2]
        self.key_buffer[:, :, start:end] = key_states
        self.value_buffer[:, :, start:end] = value_states
        self.keys, self.values = self.key_buffer[:, :, :end], self.value_buffer[:, :, :end]
        return self.keys, self.values


__all__ = ["PreallocatedCacheLayer"]
