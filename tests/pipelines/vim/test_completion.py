"""Image completion with VimPipeline (`image`, `num_prefix_rows`): the kept rows are the image's tokens, the prefill is
one transformer call, and completions follow every sampling rule of whole images (tiny real components, offline)."""

import numpy as np
import PIL.Image
import pytest
import torch

from tests.testing_utils import tiny_pipeline
from vit_vqgan_hf.models.vit_vqgan import create_image_processor

from .test_pipeline_vim import GRID, brightness_classifier, generators, no_forward_pass, tokens


def pixel_values(num_images, seed=0):
    return torch.rand(num_images, 3, 16, 16, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def encoded(pipe, pixels):
    with torch.no_grad():
        return pipe.vqgan.encode(pixels).image_tokens


def pil_images(num_images, size=(24, 20)):
    rng = np.random.default_rng(0)
    return [
        PIL.Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)) for _ in range(num_images)
    ]


def count_transformer_calls(pipe, **kwargs):
    """The pipeline's output and the input shape of every transformer call it made."""
    shapes = []
    hook = pipe.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: shapes.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True
    )
    try:
        output = pipe(output_type="tokens", **kwargs).images
    finally:
        hook.remove()
    return output, shapes


# The kept rows


@pytest.mark.parametrize("num_prefix_rows", [1, 2, 3])
def test_kept_rows_are_the_tokens_of_the_input(pipe, num_prefix_rows):
    pixels = pixel_values(3)
    completions = tokens(
        pipe, class_labels=[0, 1, 2], image=pixels, num_prefix_rows=num_prefix_rows, generator=generators(0, 1, 2)
    )
    expected = encoded(pipe, pixels)
    torch.testing.assert_close(completions[:, :num_prefix_rows], expected[:, :num_prefix_rows], rtol=0, atol=0)
    # The rest is sampled, not copied.
    assert not torch.equal(completions[:, num_prefix_rows:], expected[:, num_prefix_rows:])


def test_pil_images_are_prepared_like_the_tokenizer_image_processor(pipe):
    images = pil_images(2)  # 24x20: resized (shorter side to 16) and center-cropped
    completions = tokens(pipe, class_labels=[0, 2], image=images, num_prefix_rows=2, generator=generators(0, 1))
    processed = create_image_processor(pipe.vqgan.config)(images, return_tensors="pt").pixel_values
    assert torch.equal(completions[:, :2], encoded(pipe, processed)[:, :2])
    # The pixel values of the processor give the same completions: PIL images are that and nothing more.
    same = tokens(pipe, class_labels=[0, 2], image=processed, num_prefix_rows=2, generator=generators(0, 1))
    assert torch.equal(completions, same)
    # One PIL image, not in a list.
    single = tokens(pipe, class_labels=0, image=images[0], num_prefix_rows=2, generator=generators(0))
    assert torch.equal(single, completions[:1])


def test_whole_grid_kept_is_the_reconstruction_without_any_transformer_call(pipe):
    pixels = pixel_values(2)
    completions, calls = count_transformer_calls(pipe, class_labels=[0, 1], image=pixels, num_prefix_rows=GRID)
    assert calls == [] and torch.equal(completions, encoded(pipe, pixels))


def test_num_prefix_rows_defaults_to_half_the_grid(pipe):
    pixels = pixel_values(1)
    default = tokens(pipe, class_labels=[1], image=pixels, generator=generators(3))
    assert torch.equal(
        default, tokens(pipe, class_labels=[1], image=pixels, num_prefix_rows=GRID // 2, generator=generators(3))
    )


# The prefill


@pytest.mark.parametrize("guidance_scale", [1.0, 2.0])
def test_prefill_is_one_transformer_call(pipe, guidance_scale):
    pixels, num_kept = pixel_values(2), 3 * GRID
    request = {"class_labels": [0, 1], "guidance_scale": guidance_scale, "generator": generators(0, 1)}
    _, calls = count_transformer_calls(pipe, image=pixels, num_prefix_rows=3, **request)
    rows = 4 if guidance_scale > 1 else 2
    # One call per sampled token: the first reads the prefix token and the kept tokens at once.
    assert calls == [(rows, 1 + num_kept)] + [(rows, 1)] * (GRID * GRID - num_kept - 1)
    # Whole images: one call per token too.
    _, calls = count_transformer_calls(pipe, **request)
    assert calls == [(rows, 1)] * (GRID * GRID)


@pytest.mark.parametrize("cache_implementation", ["preallocated", "static"])
@pytest.mark.parametrize("num_prefix_rows", [1, 3])
def test_greedy_completion_matches_generate(pipe, cache_implementation, num_prefix_rows):
    # transformers' `generate` from the prompt [class token, kept tokens] is the reference of the prefilled cache.
    pixels, num_kept = pixel_values(2), num_prefix_rows * GRID
    config = pipe.transformer.config
    completions = tokens(
        pipe,
        class_labels=[2, 0],
        image=pixels,
        num_prefix_rows=num_prefix_rows,
        do_sample=False,
        cache_implementation=cache_implementation,
    )
    prompt = torch.cat(
        [
            torch.tensor([[config.class_token_id(2)], [config.class_token_id(0)]]),
            encoded(pipe, pixels).flatten(1)[:, :num_kept],
        ],
        dim=1,
    )
    expected = pipe.transformer.generate(prompt, do_sample=False)[:, 1:]
    assert torch.equal(completions.flatten(1), expected)


@pytest.mark.parametrize("cache_implementation", ["preallocated", "static"])
@pytest.mark.parametrize("guidance_scale", [1.0, 3.0])
def test_no_kept_rows_is_generation(pipe, cache_implementation, guidance_scale):
    request = {"guidance_scale": guidance_scale, "cache_implementation": cache_implementation}
    for labels, seeds in (([0, 2], (0, 1)), (1, (4,))):
        completions = tokens(
            pipe,
            class_labels=labels,
            image=pixel_values(len(seeds)),
            num_prefix_rows=0,
            generator=generators(*seeds),
            **request,
        )
        assert torch.equal(completions, tokens(pipe, class_labels=labels, generator=generators(*seeds), **request))
    # From one generator too: the noise of every image is drawn the same way.
    completions = tokens(
        pipe,
        class_labels=[0, 1],
        image=pixel_values(2),
        num_prefix_rows=0,
        generator=torch.Generator().manual_seed(5),
        **request,
    )
    assert torch.equal(
        completions, tokens(pipe, class_labels=[0, 1], generator=torch.Generator().manual_seed(5), **request)
    )


def test_static_cache_completes_like_the_preallocated_one(pipe):
    request = {"class_labels": [0, 2], "image": pixel_values(2), "num_prefix_rows": 2, "guidance_scale": 2.0}
    preallocated = tokens(pipe, generator=generators(0, 1), cache_implementation="preallocated", **request)
    assert torch.equal(
        tokens(pipe, generator=generators(0, 1), cache_implementation="static", **request), preallocated
    )


# Images, labels and randomness


@pytest.mark.parametrize("guidance_scale", [1.0, 2.5])
def test_batch_equals_single_calls(pipe, guidance_scale):
    pixels = pixel_values(3)
    request = {"num_prefix_rows": 2, "guidance_scale": guidance_scale}
    batch = tokens(
        pipe, class_labels=[2, 0, 1], image=pixels, num_images_per_label=2, generator=generators(*range(6)), **request
    )
    singles = [
        tokens(pipe, class_labels=label, image=pixels[index : index + 1], generator=generators(seed), **request)
        for index, label, seed in zip([0, 0, 1, 1, 2, 2], [2, 2, 0, 0, 1, 1], range(6))
    ]
    assert torch.equal(batch, torch.cat(singles))
    chunked = tokens(
        pipe,
        class_labels=[2, 0, 1],
        image=pixels,
        num_images_per_label=2,
        generator=generators(*range(6)),
        max_batch_size=4,
        **request,
    )
    assert torch.equal(chunked, batch)


def test_images_pair_with_labels(pipe):
    pixels = pixel_values(2)
    kept = encoded(pipe, pixels)[:, :2]
    # One label for every image.
    one_label = tokens(pipe, class_labels=1, image=pixels, num_prefix_rows=2, generator=generators(0, 1))
    assert torch.equal(
        one_label, tokens(pipe, class_labels=[1, 1], image=pixels, num_prefix_rows=2, generator=generators(0, 1))
    )
    # One image under every label: its completions come label by label.
    per_label = tokens(
        pipe,
        class_labels=[0, 1, 2],
        image=pixels[:1],
        num_prefix_rows=2,
        num_images_per_label=2,
        generator=generators(*range(6)),
    )
    assert per_label.shape == (6, GRID, GRID) and torch.equal(per_label[:, :2], kept[:1].expand(6, -1, -1))
    expected = tokens(
        pipe,
        class_labels=[0, 0, 1, 1, 2, 2],
        image=pixels[[0] * 6],
        num_prefix_rows=2,
        generator=generators(*range(6)),
    )
    assert torch.equal(per_label, expected)
    # Unconditional completions: the null token goes with every image.
    unconditional = tokens(
        pipe,
        class_labels=None,
        image=pixels,
        num_prefix_rows=2,
        num_images_per_label=2,
        generator=generators(*range(4)),
    )
    assert unconditional.shape == (4, GRID, GRID)
    assert torch.equal(unconditional[:, :2], kept.repeat_interleave(2, dim=0))
    single = tokens(pipe, class_labels=None, image=pixels[1:], num_prefix_rows=2, generator=generators(2))
    assert torch.equal(unconditional[2:3], single)


def test_unconditional_model_completes():
    pipe = tiny_pipeline(num_classes=0, class_dropout_prob=0.0)
    pixels = pixel_values(2)
    completions = tokens(pipe, image=pixels, num_prefix_rows=1, generator=generators(0, 1))
    assert torch.equal(completions[:, :1], encoded(pipe, pixels)[:, :1])


# Every other option


def test_rejection_sampling_ranks_the_completions_of_each_image(pipe):
    pixels = pixel_values(2)
    request = {"class_labels": [0, 1], "image": pixels, "num_prefix_rows": 2, "output_type": "pt"}
    output = pipe(
        num_images_per_label=1,
        acceptance_rate=0.5,
        classifier=brightness_classifier,
        generator=generators(*range(4)),
        **request,
    )
    candidates = pipe(num_images_per_label=2, generator=generators(*range(4)), **request).images
    scores = brightness_classifier(candidates * 2 - 1).softmax(-1)[torch.arange(4), torch.tensor([0, 0, 1, 1])]
    best = scores.view(2, 2).argmax(dim=1) + torch.tensor([0, 2])
    torch.testing.assert_close(output.images, candidates[best])
    torch.testing.assert_close(output.scores, scores[best])


def test_callback_and_progress_bar_count_the_sampled_tokens(capsys):
    pipe = tiny_pipeline()
    steps = []

    def record(pipeline, step, timestep, callback_kwargs):
        steps.append((step, tuple(callback_kwargs["image_tokens"].shape)))
        return {}

    pipe(class_labels=[0], image=pixel_values(1), num_prefix_rows=3, output_type="tokens", callback_on_step_end=record)
    assert steps == [(step, (1, step + 1)) for step in range(3 * GRID, GRID * GRID)]
    pipe.set_progress_bar_config(disable=False)
    pipe(class_labels=[0, 1], image=pixel_values(2), num_prefix_rows=3, max_batch_size=1, output_type="tokens")
    assert f"{2 * GRID}/{2 * GRID}" in capsys.readouterr().err


def test_pil_output(pipe):
    images = pipe(class_labels=[0], image=pil_images(1), num_prefix_rows=2, generator=generators(0)).images
    assert len(images) == 1 and images[0].size == (16, 16)


# Invalid inputs


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"num_prefix_rows": 5}, r"`num_prefix_rows` must be an integer in \[0, 4\].*got 5"),
        ({"num_prefix_rows": -1}, r"`num_prefix_rows` must be an integer in \[0, 4\]"),
        ({"num_prefix_rows": 1.0}, "`num_prefix_rows` must be an integer.*got 1.0"),
        ({"num_prefix_rows": True}, "`num_prefix_rows` must be an integer.*got True"),
        ({"image": None, "num_prefix_rows": 2}, "keeps rows of the tokens of an `image`: pass the `image`"),
        (
            {"image": pixel_values(2)[:, :, :8, :8]},
            r"must be a float tensor \(batch_size, 3, 16, 16\).*shape \(2, 3, 8, 8\)",
        ),
        ({"image": pixel_values(2)[0]}, r"must be a float tensor .*shape \(3, 16, 16\)"),
        ({"image": (pixel_values(2) * 127 + 128).to(torch.uint8)}, "must be a float tensor .*torch.uint8"),
        ({"image": pixel_values(2)[:0]}, r"shape \(0, 3, 16, 16\)"),
        ({"image": np.zeros((2, 16, 16, 3))}, "`image` must be a PIL image, a non-empty list of them.*got ndarray"),
        ({"image": []}, "`image` must be a PIL image, a non-empty list"),
        ({"image": [pil_images(1)[0], "cat.png"]}, "`image` must be a PIL image, a non-empty list"),
        ({"image": pixel_values(3)}, "Got 3 images to complete and 2 class labels"),
        ({"image": pixel_values(2) * 3}, r"must be scaled to \[-1, 1\]"),
        ({"image": pixel_values(2).fill_(float("nan"))}, "NaN"),
        ({"guidance_scale": 2.0, "class_labels": None}, "needs `class_labels`"),
        ({"generator": generators(0, 1)}, "Got 2 generators for 4 sampled images; pass one per image .*completion"),
    ],
)
def test_invalid_completion_inputs_raise_before_any_forward_pass(pipe, arguments, message):
    arguments = {"class_labels": [0, 1], "image": pixel_values(2), "num_prefix_rows": 2, **arguments}
    if "generator" in arguments:
        arguments["num_images_per_label"] = 2
    with no_forward_pass(pipe), pytest.raises(ValueError, match=message):
        pipe(**arguments)


def test_guidance_needs_a_trained_null_token_for_completions_too():
    pipe = tiny_pipeline(class_dropout_prob=0.0)
    with pytest.raises(ValueError, match="label dropout"):
        pipe(class_labels=[0], image=pixel_values(1), num_prefix_rows=2, guidance_scale=2.0)
    with pytest.raises(ValueError, match="not trained on"):
        pipe(class_labels=None, image=pixel_values(1), num_prefix_rows=2)


def test_a_tokenizer_in_training_mode_is_refused():
    pipe = tiny_pipeline()
    pipe.vqgan.train()
    with pytest.raises(ValueError, match=r"eval mode: call `pipe.vqgan.eval\(\)`"):
        pipe(class_labels=[0], image=pixel_values(1), num_prefix_rows=2)


def test_guidance_reads_the_kept_tokens_after_the_null_token_too(pipe):
    pixels, guidance_scale = pixel_values(1), 2.5
    seen = {}

    def record(pipeline, step, timestep, callback_kwargs):
        seen.setdefault(step, callback_kwargs["logits"].clone())
        return {}

    pipe(
        class_labels=[2],
        image=pixels,
        num_prefix_rows=2,
        guidance_scale=guidance_scale,
        generator=generators(0),
        output_type="tokens",
        callback_on_step_end=record,
        callback_on_step_end_tensor_inputs=["logits"],
    )
    config = pipe.transformer.config
    kept = encoded(pipe, pixels).flatten(1)[:, : 2 * GRID]
    with torch.no_grad():
        conditional, unconditional = (
            pipe.transformer(torch.cat([torch.tensor([[prefix_id]]), kept], dim=1)).logits[:, -1]
            for prefix_id in (config.class_token_id(2), config.null_class_token_id)
        )
    torch.testing.assert_close(seen[2 * GRID], unconditional + guidance_scale * (conditional - unconditional))


@pytest.mark.slow
def test_compiled_transformer_completes_like_the_eager_one():
    # The prefill is one more shape to compile (batch x (1 + kept tokens)); the steps after it share one graph.
    pipe = tiny_pipeline()
    request = {"class_labels": [0, 2], "image": pixel_values(2), "num_prefix_rows": 2, "guidance_scale": 2.0}
    expected = tokens(pipe, generator=generators(0, 1), **request)
    pipe.transformer.compile(fullgraph=True)
    assert torch.equal(tokens(pipe, generator=generators(0, 1), **request), expected)
