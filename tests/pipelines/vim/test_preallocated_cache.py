"""The transformers internals that `PreallocatedCacheLayer` builds on, listed in its docstring: the reason setup.cfg
pins transformers below 5.40. A release that changes them fails here, with what changed, instead of in sampling."""

import inspect

import torch
import transformers
from transformers import Cache, DynamicCache
from transformers.cache_utils import DynamicLayer

from tests.testing_utils import tiny_transformer
from vit_vqgan_hf.pipelines.vim.preallocated_cache import PreallocatedCacheLayer, RowwiseCache


def changed(what: str) -> str:
    return (
        f"transformers {transformers.__version__} changed {what}, which PreallocatedCacheLayer "
        "(src/vit_vqgan_hf/pipelines/vim/preallocated_cache.py) builds on. setup.cfg pins transformers <5.40 for these "
        "DynamicLayer internals: adapt the class (its docstring lists them) before moving the pin."
    )


def states(length: int, batch_size: int = 2, num_heads: int = 3, head_dim: int = 4) -> torch.Tensor:
    return torch.randn(batch_size, num_heads, length, head_dim)


def test_dynamic_layer_hooks_keep_their_signatures():
    for method in ("update", "lazy_initialization"):
        parameters = list(inspect.signature(getattr(DynamicLayer, method)).parameters)
        assert parameters[:3] == ["self", "key_states", "value_states"], changed(
            f"`DynamicLayer.{method}` {parameters}"
        )
    layer = DynamicLayer()
    assert (layer.keys, layer.values, layer.is_initialized) == (None, None, False), changed("`DynamicLayer.__init__`")


def test_dynamic_layer_reads_its_length_from_the_keys():
    layer = DynamicLayer()
    layer.update(states(3), states(3))
    assert layer.is_initialized and layer.device == torch.device("cpu"), changed("`DynamicLayer.lazy_initialization`")
    layer.keys = layer.keys[:, :, :2]
    assert layer.get_seq_length() == 2, changed("`DynamicLayer.get_seq_length` (no longer `keys.shape[-2]`)")
    assert layer.get_mask_sizes(1) == (3, 0), changed("`DynamicLayer.get_mask_sizes` (no longer from the length)")


def test_cache_routes_updates_to_the_given_layers():
    cache = Cache(layers=[PreallocatedCacheLayer(8), PreallocatedCacheLayer(8)])
    prompt_keys, step_keys = states(3), states(1)
    cache.update(prompt_keys, states(3), 1)
    assert cache.layers[1].is_initialized and not cache.layers[0].is_initialized, changed("`Cache(layers=...)`")
    keys, _ = cache.update(step_keys, states(1), 1)
    assert torch.equal(keys, torch.cat([prompt_keys, step_keys], dim=2)), changed("`Cache.update`")
    assert keys.data_ptr() == cache.layers[1].key_buffer.data_ptr(), changed("`Cache.update` (copies the keys)")
    assert cache.get_seq_length(1) == 4 and cache.layers[1].get_mask_sizes(1) == (5, 0), changed("the cache length")


def test_cached_logits_equal_uncached_logits():
    model = tiny_transformer(hidden_size=24, num_attention_heads=2, token_grid_size=3)
    config = model.config
    input_ids = torch.cat(
        [torch.tensor([[config.class_token_id(1)], [config.null_class_token_id]]), torch.randint(0, 256, (2, 9))], 1
    )
    cache = Cache(
        layers=[PreallocatedCacheLayer(config.max_position_embeddings) for _ in range(config.num_hidden_layers)]
    )
    reference = DynamicCache(config=config)
    with torch.no_grad():
        uncached = model(input_ids, use_cache=False).logits
        steps, reference_steps = [], []
        for start, end in [(0, 4), *((position, position + 1) for position in range(4, input_ids.shape[1]))]:
            steps.append(model(input_ids[:, start:end], cache=cache, use_cache=True).logits)
            reference_steps.append(model(input_ids[:, start:end], cache=reference, use_cache=True).logits)
    cached = torch.cat(steps, dim=1)
    assert torch.equal(cached, torch.cat(reference_steps, dim=1)), changed("the cache's keys and values")
    torch.testing.assert_close(
        cached,
        uncached,
        rtol=1e-5,
        atol=1e-5,
        msg=lambda message: f"{changed('the logits through the cache')}\n{message}",
    )


def test_rowwise_cache_writes_each_row_at_its_own_positions():
    cache = RowwiseCache(1, 10, batch_size=2, num_heads=3, head_dim=4, dtype=torch.float32, device="cpu")
    first, second = states(3), states(2)
    cache.set_positions(torch.tensor([[0, 1, 2], [0, 1, 2]]), key_length=3)
    cache.update(first, first, 0)
    # Row 0 keeps 3 tokens, row 1 only 1 (its other two were rejected drafts): the next tokens go after each row's own.
    cache.set_positions(torch.tensor([[3, 4], [1, 2]]), key_length=5)
    keys, values = cache.update(second, second, 0)
    assert keys.shape == (2, 3, 5, 4) and values.shape == (2, 3, 5, 4)
    torch.testing.assert_close(keys[0], torch.cat([first[0], second[0]], dim=1))
    torch.testing.assert_close(keys[1, :, :3], torch.cat([first[1, :, :1], second[1]], dim=1))
    # A device tensor, never an int: reading a row length would sync, and the rows differ.
    assert isinstance(cache.get_seq_length(), torch.Tensor)


def test_rowwise_cache_copies_a_slot_per_row():
    cache = RowwiseCache(2, 6, batch_size=2, num_heads=3, head_dim=4, dtype=torch.float32, device="cpu")
    written = states(6)
    cache.set_positions(torch.arange(6).expand(2, 6), key_length=6)
    for layer_index in range(2):
        cache.update(written + layer_index, -written, layer_index)
    # Row 0 moves slot 5 to slot 1 (a branch taken); row 1 copies slot 2 onto itself (nothing taken).
    cache.copy_slot(torch.tensor([5, 2]), torch.tensor([1, 2]))
    expected = written.clone()
    expected[0, :, 1] = written[0, :, 5]
    for layer_index, layer in enumerate(cache.layers):
        torch.testing.assert_close(layer.key_buffer, expected + layer_index)
        torch.testing.assert_close(layer.value_buffer, -expected)


def test_rowwise_cached_logits_equal_uncached_logits():
    # Row 1 keeps 2 of its first 3 tokens (the third, a rejected draft, stays in the buffer, hidden, until overwritten):
    # afterwards each row attends to its own tokens only, under the pipeline's mask, as without a cache.
    model = tiny_transformer()
    config = model.config
    sequences = torch.tensor([[config.class_token_id(1), 5, 6, 7, 8], [config.class_token_id(2), 9, 10, 11, 12]])
    rejected = 3
    head_dim = config.hidden_size // config.num_attention_heads
    cache = RowwiseCache(config.num_hidden_layers, 12, 2, config.num_attention_heads, head_dim, torch.float32, "cpu")
    calls = [
        (torch.tensor([[*sequences[0, :3]], [*sequences[1, :2], rejected]]), torch.tensor([[0, 1, 2], [0, 1, 2]])),
        (torch.tensor([[*sequences[0, 3:], rejected], [*sequences[1, 2:]]]), torch.tensor([[3, 4, 5], [2, 3, 4]])),
    ]
    with torch.no_grad():
        expected = model(sequences).logits
        for input_ids, positions in calls:
            key_length = int(positions.max()) + 1
            visible = torch.arange(key_length) <= positions[:, None, :, None]
            mask = torch.where(visible, 0.0, torch.finfo(torch.float32).min)
            cache.set_positions(positions, key_length)
            logits = model(
                input_ids, position_ids=positions.clamp(max=4), attention_mask=mask, cache=cache, use_cache=True
            ).logits
    torch.testing.assert_close(logits[0, :2], expected[0, 3:], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logits[1], expected[1, 2:], atol=1e-5, rtol=1e-5)
