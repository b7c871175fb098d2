# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""The key/value caches of `VimPipeline`'s token loops that transformers does not have: the package's one use of
transformers' cache internals, the reason for the `transformers<5.40` pin in setup.cfg."""

import torch
from transformers import Cache
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


class RowwiseCacheLayer(PreallocatedCacheLayer):
    """
    A [`PreallocatedCacheLayer`] in which each row (sequence) of the batch has its own length. An update writes the new
    keys and values of every row at that row's own positions (`write_positions`, `(batch_size, num_new_tokens)`), and
    the attention reads the first `key_length` entries of all rows under a mask that hides what lies past each row's
    tokens. Speculative decoding needs it: each image accepts its own number of drafts per transformer call, and the
    entries of rejected drafts stay in the buffers, hidden, until the row's next tokens overwrite them.
    `key_length` is either the longest row (the fewest keys) or the whole buffer (the same shapes at every call, for a
    compiled transformer). Set both through [`RowwiseCache.set_positions`]. A row's slot need not be its token's
    position: speculative decoding writes alternative tokens of one position to spare slots past the window, and moves
    the one it keeps to its position's slot with [`RowwiseCache.copy_slot`].
    """

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        index = self.write_positions[:, None, :, None].expand_as(key_states)
        self.key_buffer.scatter_(2, index, key_states)
        self.value_buffer.scatter_(2, index, value_states)
        self.keys, self.values = self.key_buffer[:, :, : self.key_length], self.value_buffer[:, :, : self.key_length]
        return self.keys, self.values

    def get_seq_length(self) -> torch.Tensor:
        # A device tensor, as transformers' `StaticLayer` returns: rows differ, and an int would cost a host sync.
        return self.write_positions[:, 0].max()


class RowwiseCache(Cache):
    """
    A cache of [`RowwiseCacheLayer`]s, one per transformer layer, allocated for `batch_size` rows up front: the layers'
    buffers are views of one key and one value tensor `(num_layers, batch_size, num_heads, max_cache_len, head_dim)`,
    so that a slot is copied in every layer at once. They are made before any call, as a compiled transformer (CUDA
    graphs) needs.
    """

    def __init__(self, num_layers: int, max_cache_len: int, batch_size, num_heads, head_dim, dtype, device):
        super().__init__(layers=[RowwiseCacheLayer(max_cache_len) for _ in range(num_layers)])
        shape = (num_layers, batch_size, num_heads, max_cache_len, head_dim)
        self.key_storage = torch.zeros(shape, dtype=dtype, device=device)
        self.value_storage = torch.zeros_like(self.key_storage)
        for index, layer in enumerate(self.layers):
            layer.device, layer.is_initialized = device, True
            layer.key_buffer, layer.value_buffer = self.key_storage[index], self.value_storage[index]

    def set_positions(self, write_positions: torch.LongTensor, key_length: int) -> None:
        """Before a transformer call: where each row's new tokens go, and how many entries the attention reads."""
        for layer in self.layers:
            layer.write_positions, layer.key_length = write_positions, key_length

    def copy_slot(self, source: torch.LongTensor, destination: torch.LongTensor) -> None:
        """In every layer, copy each row's keys and values at slot `source[row]` to slot `destination[row]`
        (`(batch_size,)` each; a row whose two slots are equal keeps its entries)."""
        rows = torch.arange(len(source), device=source.device)
        for storage in (self.key_storage, self.value_storage):
            storage[:, rows, :, destination] = storage[:, rows, :, source]


__all__ = ["PreallocatedCacheLayer", "RowwiseCache", "RowwiseCacheLayer"]
