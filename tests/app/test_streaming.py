"""The preview callback of the Generate tab on a real tiny pipeline: when it decodes, what the previews show, that it
does not change the samples, and that it stops the pipeline."""

import threading

import numpy as np
import pytest
import torch
from vim_app.generation import check_request, stream_generation
from vim_app.streaming import TokenPreviewCallback, mask_unsampled

from vit_vqgan_hf import VimPipeline


NUM_TOKENS = 64
GRID = 8


@pytest.fixture(scope="module")
def pipe(tiny_models):
    pipeline = VimPipeline.from_pretrained(tiny_models.pipeline)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def generators(count, seed=0):
    return [torch.Generator().manual_seed(seed + index) for index in range(count)]


def test_previews_every_k_tokens_and_final_tokens_are_the_pipelines(pipe):
    previews = []
    callback = TokenPreviewCallback(pipe.vqgan, NUM_TOKENS, on_preview=previews.append, every=16)
    images = pipe(class_labels=[1], num_images_per_label=2, generator=generators(2), callback_on_step_end=callback)
    assert [preview.num_sampled for preview in previews] == [16, 32, 48]  # not 64: the pipeline decodes the last
    assert all(preview.pixels.shape == (2, 16, 16, 3) and preview.pixels.dtype == np.uint8 for preview in previews)
    # Watching changes nothing: the same tokens and images as the pipeline alone.
    expected_tokens = pipe(class_labels=[1], num_images_per_label=2, generator=generators(2), output_type="tokens")
    torch.testing.assert_close(callback.image_tokens.view(2, GRID, GRID), expected_tokens.images)
    expected = pipe(class_labels=[1], num_images_per_label=2, generator=generators(2)).images
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(images.images, expected))


def test_partial_decode_fills_the_rest_with_the_first_token(pipe):
    callback = TokenPreviewCallback(pipe.vqgan, NUM_TOKENS, on_preview=lambda preview: None, every=1)
    tokens = torch.randint(0, 32, (2, NUM_TOKENS))
    partial = callback.decode_partial(tokens[:, :20])
    filled = tokens.clone()
    filled[:, 20:] = tokens[:, :1]
    pixels = ((pipe.vqgan.decode_tokens(filled.view(2, GRID, GRID)) + 1) * 127.5).round().clamp(0, 255)
    np.testing.assert_array_equal(partial, pixels.to(torch.uint8).permute(0, 2, 3, 1).numpy())


def test_mask_covers_exactly_the_unsampled_tokens():
    pixels = np.full((1, 16, 16, 3), 7, dtype=np.uint8)
    masked = mask_unsampled(pixels, num_sampled=11, token_grid_size=8)  # row 0 whole, row 1 up to column 2
    sampled = np.zeros((8, 8), dtype=bool)
    sampled.flat[:11] = True
    sampled_pixels = sampled.repeat(2, axis=0).repeat(2, axis=1)
    assert (masked[0][sampled_pixels] == 7).all()
    assert set(np.unique(masked[0][~sampled_pixels])) == {150, 200}  # the checkerboard's two grays
    assert masked[0, 2, 6, 0] != masked[0, 2, 8, 0]  # neighbouring unsampled tokens differ


def test_auto_interval_follows_the_budget(pipe):
    def count_previews(budget):
        previews = []
        callback = TokenPreviewCallback(
            pipe.vqgan, NUM_TOKENS, on_preview=previews.append, budget=budget, min_interval=0.0
        )
        pipe(class_labels=[0], generator=generators(1), callback_on_step_end=callback)
        return len(previews)

    # A budget no decode can exceed previews every token but the last; one no decode can meet, only the first.
    assert count_previews(budget=1e9) == NUM_TOKENS - 1
    assert count_previews(budget=1e-9) == 1


def test_stop_event_interrupts_the_pipeline(pipe):
    stop = threading.Event()
    callback = TokenPreviewCallback(
        pipe.vqgan, NUM_TOKENS, on_preview=lambda preview: stop.set(), every=16, stop_event=stop
    )
    images = pipe(class_labels=[0], generator=generators(1), callback_on_step_end=callback).images
    assert callback.stopped_at == 17  # the step after the preview that "pressed" stop
    assert images == [] and pipe.interrupt


def test_stream_generation_ends_with_the_final_images(pipe):
    request = check_request(pipe, "square", 2, 5, 1.0, 1.0, 0, 1.0, max_images=4)
    updates = list(stream_generation(pipe, request, threading.Event(), preview_every=16, update_interval=0.0))
    assert [update.finished for update in updates][-1] and not any(update.finished for update in updates[:-1])
    assert all(len(update.images) == 2 for update in updates)
    final = updates[-1]
    expected = pipe(class_labels=[1], num_images_per_label=2, generator=generators(2, seed=5), output_type="tokens")
    torch.testing.assert_close(final.image_tokens, expected.images)
    assert final.num_previews == 3


def test_stream_generation_stopped_before_the_first_token(pipe):
    request = check_request(pipe, "square", 1, 0, 1.0, 1.0, 0, 1.0, max_images=4)
    stop = threading.Event()
    stop.set()
    (update,) = stream_generation(pipe, request, stop, update_interval=0.0)
    assert update.stopped and not update.finished and update.images == []


def test_stream_generation_raises_the_pipelines_errors(pipe):
    request = check_request(pipe, "square", 1, 0, 1.0, 1.0, 0, 1.0, max_images=4)
    request.temperature = -1.0  # past the app's checks: the pipeline's own refusal comes back
    with pytest.raises(ValueError, match="temperature"):
        list(stream_generation(pipe, request, threading.Event()))


def test_bf16_pipeline_the_apps_gpu_setting(tiny_models):
    from vim_app.loading import load_pipeline

    bf16 = load_pipeline(str(tiny_models.pipeline), torch.device("cpu"), torch.bfloat16)
    assert bf16.transformer.dtype == bf16.vqgan.dtype == torch.bfloat16
    request = check_request(bf16, "circle", 2, 0, 2.0, 1.0, 0, 1.0, max_images=4)
    updates = list(stream_generation(bf16, request, threading.Event(), preview_every=16, update_interval=0.0))
    assert updates[-1].finished and len(updates[-1].images) == 2 and updates[-1].images[0].size == (16, 16)
    assert all(update.images[0].size == (16, 16) for update in updates)


def test_parallel_decoding_streams_several_tokens_per_call(pipe):
    request = check_request(pipe, "square", 2, 5, 1.0, 1.0, 0, 1.0, max_images=4, parallel_decoding=True)
    updates = list(stream_generation(pipe, request, threading.Event(), preview_every=16, update_interval=0.0))
    final = updates[-1]
    expected = pipe(
        class_labels=[1],
        num_images_per_label=2,
        generator=generators(2, seed=5),
        decoding="speculative_jacobi",
        output_type="tokens",
    )
    torch.testing.assert_close(final.image_tokens, expected.images)
    # Fewer calls than tokens; each preview comes at the first call past a multiple of 16 tokens.
    assert final.finished and 0 < final.num_calls < NUM_TOKENS
    previews = [update.num_sampled for update in updates[:-1]]
    assert previews == sorted(previews) and [count // 16 for count in previews] == [1, 2, 3][: len(previews)]
    assert all(0 < update.num_calls <= update.num_sampled for update in updates[:-1])
