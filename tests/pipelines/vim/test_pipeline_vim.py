"""Tests of VimPipeline with tiny real components (offline, CPU): a 16x16 tokenizer with 4x4 tokens, so every image is
16 transformer steps."""

import ast
import contextlib
import inspect
import json
import re

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import ImagePipelineOutput

from tests.testing_utils import (
    PIPELINE_CODEBOOK_SIZE,
    PIPELINE_GRID,
    PIPELINE_NUM_CLASSES,
    PIPELINE_TRANSFORMER,
    tiny_pipeline,
    tiny_transformer,
)
from vit_vqgan_hf import VimConfig, VimPipeline, VimPipelineOutput
from vit_vqgan_hf.models.vim.imagenet_classes import IMAGENET_CLASSES


# The shared tiny pipeline's sizes.
CODEBOOK_SIZE, GRID, NUM_CLASSES = PIPELINE_CODEBOOK_SIZE, PIPELINE_GRID, PIPELINE_NUM_CLASSES


def generators(*seeds):
    return [torch.Generator().manual_seed(seed) for seed in seeds]


def tokens(pipe, **kwargs):
    return pipe(output_type="tokens", **kwargs).images


@contextlib.contextmanager
def no_forward_pass(pipe):
    """Fails the test when a model of the pipeline (or the tokenizer's encoder or decoder) runs inside the block."""
    calls = []
    modules = (pipe.transformer, pipe.vqgan, pipe.vqgan.encoder, pipe.vqgan.decoder)
    hooks = [module.register_forward_pre_hook(lambda *_: calls.append(1)) for module in modules]
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()
    assert calls == []


# Outputs


def test_contract_call_returns_pil_images(pipe):
    output = pipe(class_labels=[1], generator=torch.Generator().manual_seed(0))
    assert isinstance(output, ImagePipelineOutput) and isinstance(output, VimPipelineOutput)
    assert len(output.images) == 1 and isinstance(output.images[0], PIL.Image.Image)
    assert output.images[0].size == (16, 16) and output.images[0].mode == "RGB"
    assert output.scores is None


@pytest.mark.parametrize("output_type", ["pil", "np", "pt", "tokens"])
def test_output_types(pipe, output_type):
    output = pipe(
        class_labels=[0, 2], num_images_per_label=2, generator=generators(0, 1, 2, 3), output_type=output_type
    )
    images = output.images
    if output_type == "pil":
        assert len(images) == 4 and all(image.size == (16, 16) for image in images)
    elif output_type == "np":
        assert isinstance(images, np.ndarray) and images.shape == (4, 16, 16, 3) and images.dtype == np.float32
        assert 0 <= images.min() and images.max() <= 1
    elif output_type == "pt":
        assert isinstance(images, torch.Tensor) and images.shape == (4, 3, 16, 16) and images.dtype == torch.float32
        assert 0 <= images.min() and images.max() <= 1
    else:
        assert images.dtype == torch.long and images.shape == (4, GRID, GRID)
        assert 0 <= images.min() and images.max() < CODEBOOK_SIZE
    # Every output type shows the same samples: the decoded pixels of the tokens.
    expected = tokens(pipe, class_labels=[0, 2], num_images_per_label=2, generator=generators(0, 1, 2, 3))
    if output_type == "tokens":
        assert torch.equal(images, expected)
        return
    with torch.no_grad():
        decoded = (pipe.vqgan.decode_tokens(expected) / 2 + 0.5).clamp(0, 1)
    if output_type == "pt":
        torch.testing.assert_close(images, decoded)
    elif output_type == "np":
        np.testing.assert_allclose(images, decoded.permute(0, 2, 3, 1).numpy(), atol=1e-6, rtol=0)
    else:
        expected_pixels = (decoded.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        np.testing.assert_array_equal(np.stack([np.asarray(image) for image in images]), expected_pixels)


def test_return_dict_false_gives_tuples(pipe):
    (images,) = pipe(class_labels=1, output_type="tokens", return_dict=False)
    assert images.shape == (1, GRID, GRID)
    classifier = brightness_classifier
    images, scores = pipe(
        class_labels=1, acceptance_rate=0.5, classifier=classifier, output_type="tokens", return_dict=False
    )
    assert images.shape == (1, GRID, GRID) and scores.shape == (1,)


# Randomness


def test_same_seed_same_images_and_other_seed_differs(pipe):
    first = tokens(pipe, class_labels=[0, 1], generator=torch.Generator().manual_seed(0))
    assert torch.equal(first, tokens(pipe, class_labels=[0, 1], generator=torch.Generator().manual_seed(0)))
    assert not torch.equal(first, tokens(pipe, class_labels=[0, 1], generator=torch.Generator().manual_seed(1)))


def test_batch_equals_single_calls(pipe):
    batch = tokens(pipe, class_labels=[2, 0], num_images_per_label=2, generator=generators(5, 6, 7, 8))
    singles = [
        tokens(pipe, class_labels=[label], generator=generators(seed))
        for label, seed in zip([2, 2, 0, 0], [5, 6, 7, 8])
    ]
    assert torch.equal(batch, torch.cat(singles))


@pytest.mark.parametrize("guidance_scale", [1.0, 3.0])
def test_max_batch_size_does_not_change_images(pipe, guidance_scale):
    request = {"class_labels": [0, 1, 2], "num_images_per_label": 2, "guidance_scale": guidance_scale}
    whole = tokens(pipe, generator=generators(*range(6)), **request)
    assert torch.equal(whole, tokens(pipe, generator=generators(*range(6)), max_batch_size=4, **request))
    # A single generator is split per image up front, so chunking does not change its images either.
    whole = tokens(pipe, generator=torch.Generator().manual_seed(3), **request)
    assert torch.equal(whole, tokens(pipe, generator=torch.Generator().manual_seed(3), max_batch_size=1, **request))


def test_greedy_matches_generate(pipe):
    config = pipe.transformer.config
    greedy = tokens(pipe, class_labels=[0, 2], do_sample=False)
    prefix = torch.tensor([[config.class_token_id(0)], [config.class_token_id(2)]])
    expected = pipe.transformer.generate(prefix, do_sample=False)[:, 1:]
    assert torch.equal(greedy.flatten(1), expected)
    # Unconditional: the null token is the prefix.
    greedy = tokens(pipe, class_labels=None, do_sample=False)
    expected = pipe.transformer.generate(torch.tensor([[config.null_class_token_id]]), do_sample=False)[:, 1:]
    assert torch.equal(greedy.flatten(1), expected)
    # top_k=1 and a tiny top_p leave only the most likely token: sampling becomes greedy.
    greedy = tokens(pipe, class_labels=[0, 2], do_sample=False)
    assert torch.equal(tokens(pipe, class_labels=[0, 2], top_k=1, generator=generators(0, 1)), greedy)
    assert torch.equal(tokens(pipe, class_labels=[0, 2], top_p=1e-6, generator=generators(0, 1)), greedy)


@pytest.mark.parametrize("guidance_scale", [1.0, 3.0])
def test_static_cache_gives_the_same_images(pipe, guidance_scale):
    request = {"class_labels": [0, 2], "num_images_per_label": 2, "guidance_scale": guidance_scale}
    preallocated = tokens(pipe, generator=generators(*range(4)), cache_implementation="preallocated", **request)
    static = tokens(pipe, generator=generators(*range(4)), cache_implementation="static", **request)
    assert torch.equal(static, preallocated)
    greedy = tokens(pipe, class_labels=[0, 2], do_sample=False)
    assert torch.equal(tokens(pipe, class_labels=[0, 2], do_sample=False, cache_implementation="static"), greedy)


def test_static_cache_has_fixed_shapes(pipe):
    # Every step must present the same shapes, or a compiled transformer would recompile at each token.
    shapes = set()
    hook = pipe.transformer.register_forward_hook(lambda module, args, output: shapes.add(output.logits.shape))
    try:
        tokens(pipe, class_labels=[1], cache_implementation="static", generator=generators(0))
    finally:
        hook.remove()
    assert shapes == {torch.Size([1, 1, CODEBOOK_SIZE])}
    cache = pipe.prepare_cache(3, "static", torch.device("cpu"))
    assert cache.layers[0].keys.shape == (3, 2, GRID * GRID + 1, 12)


def test_compiled_transformer_defaults_to_the_static_cache():
    pipe = tiny_pipeline()
    assert not pipe.transformer_is_compiled
    pipe.transformer.compile()  # compiled lazily: nothing runs here
    assert pipe.transformer_is_compiled
    created = []
    original = pipe.prepare_cache

    def spy(batch_size, cache_implementation, device):
        created.append(cache_implementation)
        return original(batch_size, cache_implementation, device)

    pipe.prepare_cache = spy
    with torch.compiler.set_stance("force_eager"):  # the choice of cache, without the compile time of a fast test
        tokens(pipe, class_labels=[1], generator=generators(0))
    assert created == ["static"]


@pytest.mark.slow
def test_compiled_transformer_gives_the_same_images():
    pipe = tiny_pipeline()
    expected = tokens(pipe, class_labels=[0, 2], guidance_scale=2.0, generator=generators(0, 1))
    pipe.transformer.compile(fullgraph=True)
    with torch._dynamo.config.patch(error_on_recompile=True):  # one graph for every step of a batch size
        compiled = tokens(pipe, class_labels=[0, 2], guidance_scale=2.0, generator=generators(0, 1))
    assert torch.equal(compiled, expected)


@pytest.mark.parametrize("cache_implementation", ["preallocated", "static"])
@pytest.mark.parametrize("guidance_scale", [1.0, 2.0])
@pytest.mark.parametrize("num_prefix_rows", [None, 2])
def test_decoding_steps_make_no_host_sync(pipe, host_syncs, cache_implementation, guidance_scale, num_prefix_rows):
    # Values are checked once per call, on the prompt: no later step waits on the device (tests/conftest.py counts).
    # A completion also reads its pixels' range once, where they enter (the tokenizer's encode).
    syncs_after_step = []

    def record(pipeline, step, timestep, callback_kwargs):
        syncs_after_step.append(sum(host_syncs.values()))
        return {}

    completion = {}
    if num_prefix_rows is not None:
        completion = {"image": torch.rand(2, 3, 16, 16) * 2 - 1, "num_prefix_rows": num_prefix_rows}
    host_syncs.clear()
    pipe(
        class_labels=[0, 2],
        guidance_scale=guidance_scale,
        temperature=0.7,
        top_k=5,
        top_p=0.9,
        generator=generators(0, 1),
        output_type="tokens",
        cache_implementation=cache_implementation,
        callback_on_step_end=record,
        **completion,
    )
    assert len(syncs_after_step) == GRID * GRID - (num_prefix_rows or 0) * GRID
    assert syncs_after_step[-1] == syncs_after_step[0] == sum(host_syncs.values()) <= 1 + bool(completion)


def first_token_logits(pipe, prefix_id, num_images=1):
    with torch.no_grad():
        return pipe.transformer(torch.full((num_images, 1), prefix_id)).logits[:, -1]


def test_samples_follow_the_model_distribution(pipe):
    """The first token of 3000 images, against the softmax of the first logits (inverse-CDF sampling is exact)."""
    config = pipe.transformer.config
    # A sharper distribution than the random init gives makes the check stronger.
    temperature = 0.25
    first = tokens(
        pipe,
        class_labels=[1],
        num_images_per_label=3000,
        temperature=temperature,
        generator=torch.Generator().manual_seed(0),
    )
    counts = torch.bincount(first[:, 0, 0], minlength=CODEBOOK_SIZE).float()
    probabilities = (first_token_logits(pipe, config.class_token_id(1))[0] / temperature).softmax(-1)
    expected = 3000 * probabilities
    assert (counts - expected).abs().max() < 4 * expected.clamp(min=1).sqrt().max() + 5
    # top_k: only the k most likely tokens occur.
    first = tokens(
        pipe, class_labels=[1], num_images_per_label=300, top_k=3, generator=torch.Generator().manual_seed(1)
    )
    allowed = set(probabilities.topk(3).indices.tolist())
    assert set(first[:, 0, 0].tolist()) <= allowed and len(set(first[:, 0, 0].tolist())) > 1


# Classifier-free guidance


def test_guidance_uses_guided_logits(pipe):
    config = pipe.transformer.config
    seen = {}

    def record(pipeline, step, timestep, callback_kwargs):
        seen.setdefault(step, callback_kwargs["logits"].clone())
        return {}

    guidance_scale = 2.5
    pipe(
        class_labels=[2],
        guidance_scale=guidance_scale,
        generator=generators(0),
        output_type="tokens",
        callback_on_step_end=record,
        callback_on_step_end_tensor_inputs=["logits"],
    )
    conditional = first_token_logits(pipe, config.class_token_id(2))
    unconditional = first_token_logits(pipe, config.null_class_token_id)
    torch.testing.assert_close(seen[0], unconditional + guidance_scale * (conditional - unconditional))


def test_guidance_scale_one_is_off_and_other_scales_change_images(pipe):
    request = {"class_labels": [0, 1, 2], "num_images_per_label": 2}
    unguided = tokens(pipe, generator=generators(*range(6)), **request)
    assert torch.equal(tokens(pipe, generator=generators(*range(6)), guidance_scale=1.0, **request), unguided)
    guided = tokens(pipe, generator=generators(*range(6)), guidance_scale=30.0, **request)
    assert not torch.equal(guided, unguided)


def test_unconditional_model():
    pipe = tiny_pipeline(num_classes=0, class_dropout_prob=0.0)
    images = tokens(pipe, num_images_per_label=3, generator=generators(0, 1, 2))
    assert images.shape == (3, GRID, GRID)
    with pytest.raises(ValueError, match="unconditional"):
        pipe(class_labels=[0])
    with pytest.raises(ValueError, match="guidance.*needs `class_labels`"):
        pipe(guidance_scale=2.0)


# Rejection sampling


def brightness_classifier(pixel_values):
    """Scores images by mean brightness: class 0 likes bright images, class 1 dark ones, class 2 is indifferent."""
    brightness = pixel_values.mean(dim=(1, 2, 3))
    return torch.stack([20 * brightness, -20 * brightness, torch.zeros_like(brightness)], dim=1)


def test_rejection_sampling_keeps_the_best_candidates(pipe):
    class_labels, num_images, acceptance_rate = [0, 1], 2, 0.4
    num_candidates = 5  # ceil(2 / 0.4)
    seeds = range(len(class_labels) * num_candidates)
    output = pipe(
        class_labels=class_labels,
        num_images_per_label=num_images,
        acceptance_rate=acceptance_rate,
        classifier=brightness_classifier,
        generator=generators(*seeds),
        output_type="pt",
    )
    assert output.images.shape == (4, 3, 16, 16) and output.scores.shape == (4,)

    # The candidates are the images of a plain call with the same generators.
    candidates = pipe(
        class_labels=class_labels, num_images_per_label=num_candidates, generator=generators(*seeds), output_type="pt"
    ).images
    class_ids = torch.tensor(class_labels).repeat_interleave(num_candidates)
    scores = brightness_classifier(candidates * 2 - 1).softmax(-1)[torch.arange(len(class_ids)), class_ids]
    for row, label_scores in enumerate(scores.view(len(class_labels), num_candidates)):
        best = label_scores.topk(num_images).indices + row * num_candidates
        kept = slice(row * num_images, (row + 1) * num_images)
        torch.testing.assert_close(output.scores[kept], scores[best])
        torch.testing.assert_close(output.images[kept], candidates[best])
        assert output.scores[kept][0] >= output.scores[kept][1]
    # Class 0 kept its brightest candidates, class 1 its darkest.
    assert output.images[:2].mean() >= candidates[:num_candidates].mean()
    assert output.images[2:].mean() <= candidates[num_candidates:].mean()


def test_acceptance_rate_one_is_off(pipe):
    plain = tokens(pipe, class_labels=[0], generator=generators(0))
    output = pipe(class_labels=[0], acceptance_rate=1.0, classifier=brightness_classifier, generator=generators(0))
    assert output.scores is None
    assert torch.equal(tokens(pipe, class_labels=[0], acceptance_rate=1.0, generator=generators(0)), plain)


# Class names


def imagenet_pipeline():
    return tiny_pipeline(num_classes=1000, id2label=dict(enumerate(IMAGENET_CLASSES)))


def test_imagenet_class_names():
    assert len(IMAGENET_CLASSES) == 1000
    known = {0: "tench", 1: "goldfish", 207: "golden retriever", 281: "tabby", 980: "volcano", 999: "toilet tissue"}
    for class_id, name in known.items():
        assert IMAGENET_CLASSES[class_id].split(",")[0] == name
    for preset in ("base", "large"):
        config = VimConfig.from_preset(preset)
        assert config.id2label[207] == "golden retriever" and len(config.id2label) == 1000
    assert VimConfig.from_preset("base", num_classes=10).id2label[0] == "LABEL_0"
    assert VimConfig.from_preset("large", num_classes=0).id2label == {}


def test_get_label_ids():
    pipe = imagenet_pipeline()
    assert pipe.get_label_ids("golden retriever") == [207]
    assert pipe.get_label_ids(["tench", "Tinca tinca", "tench, Tinca tinca", "goldfish"]) == [0, 0, 0, 1]
    assert pipe.get_label_ids(["tabby cat", "Tabby", "  volcano "]) == [281, 281, 980]
    # A name that is the first synonym of one class wins over other classes' later synonyms.
    assert pipe.get_label_ids("partridge") == [86]
    with pytest.raises(ValueError, match=r"Unknown class name 'volcanoe'.*'volcano'"):
        pipe.get_label_ids("volcanoe")
    with pytest.raises(ValueError, match=r"'crane' is ambiguous.*134.*517"):
        pipe.get_label_ids("crane")
    # Names work in `class_labels` too, mixed with ids.
    mixed = tokens(pipe, class_labels=["goldfish", 207], do_sample=False)
    assert torch.equal(mixed, tokens(pipe, class_labels=[1, 207], do_sample=False))


def test_default_labels_of_a_tiny_model(pipe):
    assert pipe.get_label_ids(["LABEL_0", "label_2"]) == [0, 2]


# Invalid inputs


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"class_labels": [3]}, "Class label 3 is out of range"),
        ({"class_labels": [-1]}, "out of range"),
        ({"class_labels": "no such class"}, "Unknown class name"),
        ({"class_labels": [1.5]}, "must hold class ids"),
        ({"class_labels": []}, "empty"),
        ({"num_images_per_label": 0}, "`num_images_per_label` must be a positive integer"),
        ({"guidance_scale": 0.5}, r"`guidance_scale` must be >= 1"),
        ({"class_labels": None, "guidance_scale": 2.0}, "needs `class_labels`"),
        ({"temperature": 0.0}, "`temperature` must be > 0.*do_sample=False"),
        ({"temperature": -1.0}, "`temperature` must be > 0"),
        ({"top_k": 0}, "`top_k` must be a positive integer"),
        ({"top_p": 0.0}, r"`top_p` must be in \(0, 1\]"),
        ({"top_p": 1.5}, r"`top_p` must be in \(0, 1\]"),
        ({"acceptance_rate": 0.0, "classifier": brightness_classifier}, "`acceptance_rate` must be in"),
        ({"acceptance_rate": 1.5, "classifier": brightness_classifier}, "`acceptance_rate` must be in"),
        ({"acceptance_rate": 0.5}, "needs a `classifier`"),
        ({"classifier": brightness_classifier}, "pass `acceptance_rate`"),
        ({"class_labels": None, "acceptance_rate": 0.5, "classifier": brightness_classifier}, "needs `class_labels`"),
        ({"output_type": "latent"}, "`output_type` must be one of"),
        ({"max_batch_size": 0}, "`max_batch_size` must be a positive integer"),
        ({"generator": [torch.Generator()] * 3}, "Got 3 generators for 2 sampled images"),
        ({"callback_on_step_end_tensor_inputs": ["cache"]}, "may only name"),
        ({"cache_implementation": "paged"}, "`cache_implementation` must be one of"),
        # Types whose mistake would pass a comparison and fail later, deep in sampling, or give a wrong result.
        ({"guidance_scale": float("nan")}, "`guidance_scale` must be a finite number >= 1, got nan"),
        ({"top_k": "5"}, "`top_k` must be a positive integer or None, got '5'"),
        ({"top_k": 2.5}, "`top_k` must be a positive integer or None, got 2.5"),
        ({"num_images_per_label": "2"}, "`num_images_per_label` must be a positive integer, got '2'"),
        ({"max_batch_size": 2.0}, "`max_batch_size` must be a positive integer or None, got 2.0"),
        ({"do_sample": "False"}, "`do_sample` must be True or False, got str 'False'"),
        ({"generator": "seed"}, "`generator` must be a torch.Generator, a list of them .* got str 'seed'"),
        ({"generator": 0}, "`generator` must be a torch.Generator.*got int 0"),
        ({"generator": [torch.Generator(), 1]}, "`generator` must be a torch.Generator.*got int 1 in the list"),
        ({"callback_on_step_end": "print"}, "`callback_on_step_end` must be callable or None, got str"),
        ({"callback_on_step_end_tensor_inputs": "logits"}, "`callback_on_step_end_tensor_inputs` must be a list"),
        ({"acceptance_rate": 0.5, "classifier": "resnet"}, "`classifier` must be callable or None, got str"),
    ],
)
def test_invalid_inputs_raise(pipe, arguments, message):
    arguments = {"class_labels": [0, 1], **arguments}
    # The error comes before any computation: neither model runs.
    with no_forward_pass(pipe), pytest.raises(ValueError, match=message):
        pipe(**arguments)


@pytest.mark.parametrize(
    "arguments",
    [
        {"temperature": "1"},
        {"temperature": None},
        {"guidance_scale": "2"},
        {"top_p": "0.9"},
        {"acceptance_rate": "0.5"},
    ],
)
def test_numbers_of_the_wrong_type_fail_their_comparison_before_compute(pipe, arguments):
    with no_forward_pass(pipe), pytest.raises(TypeError, match="not supported between instances|must be real number"):
        pipe(class_labels=[0, 1], **arguments)


def test_check_inputs_takes_keyword_arguments(pipe):
    with pytest.raises(TypeError, match="takes 1 positional argument"):
        pipe.check_inputs([0], 1)


def test_guidance_and_unconditional_need_a_trained_null_token():
    pipe = tiny_pipeline(class_dropout_prob=0.0)
    with pytest.raises(ValueError, match="label dropout"):
        pipe(class_labels=[0], guidance_scale=2.0)
    with pytest.raises(ValueError, match="not trained on"):
        pipe(class_labels=None)
    assert tokens(pipe, class_labels=[0], generator=generators(0)).shape == (1, GRID, GRID)


def test_mismatched_components_raise(pipe):
    transformer = tiny_transformer(**{**PIPELINE_TRANSFORMER, "token_grid_size": 3})
    with pytest.raises(ValueError, match="3x3 tokens.*4x4 tokens"):
        VimPipeline(vqgan=pipe.vqgan, transformer=transformer)


def test_classifier_output_is_checked(pipe):
    with pytest.raises(ValueError, match="fewer than the class id 2"):
        pipe(class_labels=[2], acceptance_rate=0.5, classifier=lambda pixels: torch.zeros(len(pixels), 2))


# Callbacks and progress bar


def test_callback_on_step_end_is_called_every_step(pipe):
    calls = []

    def force_code_7(pipeline, step, timestep, callback_kwargs):
        image_tokens = callback_kwargs["image_tokens"]
        calls.append((step, timestep, tuple(image_tokens.shape)))
        image_tokens[:, -1] = 7
        return {"image_tokens": image_tokens}

    images = tokens(
        pipe, class_labels=[0, 1], num_images_per_label=2, max_batch_size=3, callback_on_step_end=force_code_7
    )
    # Two chunks (3 and 1 images) of 16 steps each.
    steps = GRID * GRID
    expected = [(step, step, (3, step + 1)) for step in range(steps)]
    expected += [(step, step, (1, step + 1)) for step in range(steps)]
    assert calls == expected
    assert (images == 7).all()


def test_progress_bar(capsys):
    pipe = tiny_pipeline()
    pipe(class_labels=[0], output_type="tokens", max_batch_size=1, num_images_per_label=2)
    assert capsys.readouterr().err == ""
    pipe.set_progress_bar_config(disable=False)
    pipe(class_labels=[0], output_type="tokens", max_batch_size=1, num_images_per_label=2)
    assert "32/32" in capsys.readouterr().err


# Serialization, precision, offloading


def test_save_and_load_round_trip(pipe, tmp_path):
    expected = pipe(class_labels=[0, 2], generator=generators(0, 1), output_type="np").images
    pipe.save_pretrained(tmp_path)
    assert {path.name for path in tmp_path.iterdir()} >= {"model_index.json", "vqgan", "transformer"}
    model_index = json.loads((tmp_path / "model_index.json").read_text())
    assert model_index["_class_name"] == "VimPipeline"
    assert model_index["transformer"] == ["vit_vqgan_hf.models.vim.modeling_vim", "VimForCausalLM"]
    assert model_index["vqgan"] == ["vit_vqgan_hf.models.vit_vqgan.modeling_vit_vqgan", "VitVqganModel"]

    reloaded = VimPipeline.from_pretrained(tmp_path)
    reloaded.set_progress_bar_config(disable=True)
    assert not reloaded.transformer.training and not reloaded.vqgan.training
    np.testing.assert_array_equal(
        reloaded(class_labels=[0, 2], generator=generators(0, 1), output_type="np").images, expected
    )

    bfloat16 = VimPipeline.from_pretrained(tmp_path, dtype=torch.bfloat16)
    bfloat16.set_progress_bar_config(disable=True)
    assert bfloat16.transformer.dtype == bfloat16.vqgan.dtype == torch.bfloat16
    images = bfloat16(class_labels=[0, 2], guidance_scale=2.0, generator=generators(0, 1), output_type="pt").images
    assert images.dtype == torch.float32 and images.shape == (2, 3, 16, 16) and torch.isfinite(images).all()


def test_offload_declaration(pipe):
    assert VimPipeline.model_cpu_offload_seq == "transformer->vqgan"
    assert set(pipe.components) == {"vqgan", "transformer"}


# Documentation


def test_documented_defaults_match_the_signature():
    docstring = VimPipeline.__call__.__doc__
    parameters = inspect.signature(VimPipeline.__call__).parameters
    for name, parameter in parameters.items():
        if name == "self":
            continue
        match = re.search(rf"^\s+{name} \((.+)\):$", docstring, flags=re.MULTILINE)
        assert match, f"{name} is not documented"
        default = re.search(r"defaults to (.+)$", match.group(1))
        assert default, f"{name}: no documented default"
        assert ast.literal_eval(default.group(1).strip("`")) == parameter.default, name
    assert "Examples:" in docstring and ">>>" in docstring and "Returns:" in docstring
