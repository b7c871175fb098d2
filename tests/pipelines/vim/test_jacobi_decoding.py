"""VimPipeline(decoding="speculative_jacobi") with the tiny pipeline (4x4 tokens): every option of sequential decoding
works with it, an image depends on its own generator only, and impossible settings are refused. Its distribution is
tested exactly in test_sampling_distribution.py."""

import pytest
import torch

from tests.testing_utils import tiny_pipeline

from .test_interrupt import calls_during
from .test_pipeline_vim import GRID, brightness_classifier, generators, no_forward_pass, tokens


# With branches of the first draft, the loop's longer path (plain speculative decoding: `jacobi_branches=0`, below).
SPECULATIVE = {"decoding": "speculative_jacobi", "jacobi_window": 4, "jacobi_branches": 3}


def test_window_of_one_is_sequential_sampling(pipe):
    request = {"class_labels": [0, 2], "guidance_scale": 2.0, "temperature": 0.8, "top_k": 9}
    sequential = tokens(pipe, generator=generators(0, 1), **request)
    window_1 = tokens(pipe, generator=generators(0, 1), decoding="speculative_jacobi", jacobi_window=1, **request)
    assert torch.equal(window_1, sequential)


@pytest.mark.parametrize("cache_implementation", ["preallocated", "static"])
@pytest.mark.parametrize("guidance_scale", [1.0, 2.0])
def test_greedy_decoding_gives_the_sequential_tokens(pipe, cache_implementation, guidance_scale):
    request = {"class_labels": [0, 1, 2], "do_sample": False, "guidance_scale": guidance_scale}
    sequential = tokens(pipe, **request)
    for window, branches in [(2, 0), (5, 0), (5, 3), (2 * GRID * GRID, 2)]:  # up to a window longer than the image
        speculative = tokens(
            pipe,
            decoding="speculative_jacobi",
            jacobi_window=window,
            jacobi_branches=branches,
            cache_implementation=cache_implementation,
            **request,
        )
        assert torch.equal(speculative, sequential)


@pytest.mark.parametrize("guidance_scale", [1.0, 2.0])
@pytest.mark.parametrize("branches", [0, 3])
def test_batch_equals_single_calls_and_seeds_are_deterministic(pipe, guidance_scale, branches):
    request = {"guidance_scale": guidance_scale, "top_p": 0.9, "output_type": "tokens", **SPECULATIVE}
    request["jacobi_branches"] = branches
    batch = pipe(class_labels=[0, 1, 2], generator=generators(0, 1, 2), **request).images
    singles = [pipe(class_labels=[label], generator=generators(label), **request).images for label in range(3)]
    assert torch.equal(batch, torch.cat(singles))
    again = pipe(class_labels=[0, 1, 2], generator=generators(0, 1, 2), max_batch_size=2, **request).images
    assert torch.equal(again, batch)
    other_seeds = pipe(class_labels=[0, 1, 2], generator=generators(3, 4, 5), **request).images
    assert not torch.equal(other_seeds, batch)


def test_static_cache_gives_the_preallocated_images(pipe):
    request = {"class_labels": [0, 2], "num_images_per_label": 2, "guidance_scale": 2.0, **SPECULATIVE}
    preallocated = tokens(pipe, generator=generators(*range(4)), cache_implementation="preallocated", **request)
    static = tokens(pipe, generator=generators(*range(4)), cache_implementation="static", **request)
    assert torch.equal(static, preallocated)


def test_completion_keeps_its_rows(pipe):
    image = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    kept = pipe.vqgan.encode(image).image_tokens[:, :2]
    completions = tokens(
        pipe, class_labels=[0, 1], image=image, num_prefix_rows=2, generator=generators(0, 1), **SPECULATIVE
    )
    assert torch.equal(completions[:, :2], kept)
    sequential = tokens(pipe, class_labels=[0, 1], image=image, num_prefix_rows=2, do_sample=False)
    greedy = tokens(pipe, class_labels=[0, 1], image=image, num_prefix_rows=2, do_sample=False, **SPECULATIVE)
    assert torch.equal(greedy, sequential)
    # Every row kept: nothing to sample.
    whole = tokens(
        pipe, class_labels=[0], image=image[:1], num_prefix_rows=GRID, generator=generators(0), **SPECULATIVE
    )
    assert torch.equal(whole, pipe.vqgan.encode(image[:1]).image_tokens)


def test_unconditional_pil_output_and_rejection_sampling(pipe):
    images = pipe(generator=generators(0, 1), num_images_per_label=2, **SPECULATIVE).images
    assert len(images) == 2 and images[0].size == (16, 16)
    output = pipe(
        class_labels=[0, 1],
        num_images_per_label=1,
        acceptance_rate=0.5,
        classifier=brightness_classifier,
        generator=generators(*range(4)),
        output_type="pt",
        **SPECULATIVE,
    )
    candidates = pipe(class_labels=[0, 0, 1, 1], generator=generators(*range(4)), output_type="pt", **SPECULATIVE)
    brightness = candidates.images.mean(dim=(1, 2, 3))
    best = [int(brightness[:2].argmax()), 2 + int(brightness[2:].argmin())]
    assert torch.allclose(output.images, candidates.images[best])


def test_callback_runs_once_per_call_with_the_tokens_every_image_has(pipe):
    seen = []

    def record(pipeline, step, timestep, callback_kwargs):
        seen.append((step, callback_kwargs["image_tokens"].clone(), callback_kwargs["num_tokens"].clone()))
        assert callback_kwargs["logits"].shape == (2, 4, pipe.transformer.config.codebook_size)
        return {}

    request = {"class_labels": [0, 1], "generator": generators(0, 1), **SPECULATIVE}
    output, calls = calls_during(
        pipe,
        callback_on_step_end=record,
        callback_on_step_end_tensor_inputs=["image_tokens", "logits", "num_tokens"],
        output_type="tokens",
        **request,
    )
    steps = [step for step, _, _ in seen]
    assert len(seen) == calls and steps == sorted(set(steps)) and steps[-1] == GRID * GRID - 1
    final = output.images.flatten(1)
    for step, image_tokens, num_tokens in seen:
        assert image_tokens.shape == (2, step + 1) and torch.equal(image_tokens, final[:, : step + 1])
        assert int(num_tokens.min()) == step + 1 and int(num_tokens.max()) <= GRID * GRID


def interrupt_at(stop_step):
    """Interrupts the pipeline at the first call whose `step` reaches `stop_step`, and records the steps."""
    steps = []

    def callback(pipeline, step, timestep, callback_kwargs):
        steps.append(step)
        pipeline._interrupt = step >= stop_step
        return {}

    callback.steps = steps
    return callback


def test_interrupt_stops_after_the_current_call(pipe):
    callback = interrupt_at(0)  # the first call accepts at least token 0 of every image
    output, calls = calls_during(
        pipe, class_labels=[0, 1], generator=generators(0, 1), callback_on_step_end=callback, **SPECULATIVE
    )
    assert output.images == [] and pipe.interrupt
    assert calls == len(callback.steps) == 1
    # The next call runs whole.
    assert len(pipe(class_labels=[0], generator=generators(0), **SPECULATIVE).images) == 1


def test_one_host_sync_per_call(pipe, host_syncs):
    calls_after = []

    def record(pipeline, step, timestep, callback_kwargs):
        calls_after.append(sum(host_syncs.values()))
        return {}

    host_syncs.clear()
    pipe(
        class_labels=[0, 2],
        generator=generators(0, 1),
        output_type="tokens",
        callback_on_step_end=record,
        **SPECULATIVE,
    )
    # The prompt's values are checked once where they enter; then one read of the token counts per call.
    assert calls_after == [calls_after[0] + index for index in range(len(calls_after))] and calls_after[0] <= 2


def test_branches_predict_after_the_accepted_tokens_only(pipe):
    """One call over a prompt, a window of drafts and two branches of the first draft (the tree mask): each branch's
    logits are those of the prompt followed by that branch alone; after its slot is copied to its position's, the cache
    continues the branch."""
    model, config = pipe.transformer, pipe.transformer.config
    prompt = torch.tensor([[config.class_token_id(1), 5, 9, 2]])  # the last accepted token at slot 3
    drafts, branches = torch.tensor([[7, 1, 4]]), torch.tensor([[11, 6]])  # the window [2, 7, 1, 4]: slots 3..6
    window, num_window = 4, prompt.shape[1] + drafts.shape[1]
    cache = pipe.prepare_jacobi_cache(1, window + 2, "preallocated", "cpu")
    slots, last_slots = torch.arange(num_window + 2)[None], torch.tensor([[prompt.shape[1] - 1]])
    positions = torch.where(slots < num_window, slots, last_slots + 1)
    key_index = torch.arange(num_window + 2)
    zero, minimum = torch.tensor(0.0), torch.tensor(torch.finfo(torch.float32).min)
    mask = pipe.jacobi_attention_mask(slots, last_slots, num_window, key_index, zero, minimum)
    cache.set_positions(slots, num_window + 2)
    with torch.no_grad():
        input_ids = torch.cat([prompt, drafts, branches], dim=1)
        logits = model(input_ids, position_ids=positions, attention_mask=mask, cache=cache, use_cache=True).logits
        window_logits = model(torch.cat([prompt, drafts], dim=1)).logits
        torch.testing.assert_close(logits[:, :num_window], window_logits, atol=1e-4, rtol=1e-4)
        for index in range(branches.shape[1]):
            branch_logits = model(torch.cat([prompt, branches[:, index : index + 1]], dim=1)).logits[:, -1]
            torch.testing.assert_close(logits[:, num_window + index], branch_logits, atol=1e-4, rtol=1e-4)
        # Branch 1 taken: its keys and values move to the first draft's slot, and the next token reads them.
        cache.copy_slot(torch.tensor([num_window + 1]), torch.tensor([prompt.shape[1]]))
        cache.set_positions(torch.tensor([[prompt.shape[1] + 1]]), prompt.shape[1] + 2)
        next_logits = model(
            torch.tensor([[3]]), position_ids=torch.tensor([[prompt.shape[1] + 1]]), cache=cache
        ).logits
        expected = model(torch.cat([prompt, branches[:, 1:], torch.tensor([[3]])], dim=1)).logits[:, -1]
        torch.testing.assert_close(next_logits[:, -1], expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"decoding": "speculative_jacobi", "jacobi_window": 0}, "`jacobi_window` must be a positive integer"),
        ({"decoding": "speculative_jacobi", "jacobi_window": 2.0}, "`jacobi_window` must be a positive integer"),
        ({"jacobi_window": 4}, "sizes the window of `decoding=.speculative_jacobi.`"),
        ({"decoding": "jacobi"}, "`decoding` must be one of"),
        (
            {"decoding": "speculative_jacobi", "jacobi_branches": -1},
            "`jacobi_branches` must be a non-negative integer",
        ),
        (
            {"decoding": "speculative_jacobi", "jacobi_branches": 2.0},
            "`jacobi_branches` must be a non-negative integer",
        ),
        ({"jacobi_branches": 3}, "an option of `decoding=.speculative_jacobi.`"),
        (
            {"decoding": "speculative_jacobi", "jacobi_window": 2, "jacobi_branches": 1},
            "a `jacobi_window` of 3 or more",
        ),
    ],
)
def test_impossible_settings_are_refused(pipe, request_, message):
    with no_forward_pass(pipe), pytest.raises(ValueError, match=message):
        pipe(class_labels=[0], **request_)


def test_dynamic_cache_is_a_deprecated_name(pipe):
    with pytest.warns(FutureWarning, match="preallocated"):
        dynamic = tokens(pipe, class_labels=[0], generator=generators(0), cache_implementation="dynamic")
    preallocated = tokens(pipe, class_labels=[0], generator=generators(0), cache_implementation="preallocated")
    assert torch.equal(dynamic, preallocated)


@pytest.mark.slow
def test_compiled_transformer_gives_the_same_images():
    pipe = tiny_pipeline()
    request = {"class_labels": [0, 2], "guidance_scale": 2.0, **SPECULATIVE}
    expected = tokens(pipe, generator=generators(0, 1), cache_implementation="static", **request)
    torch._dynamo.reset()  # graphs of other tests' models would count as recompilations here, and ours in theirs
    pipe.transformer.compile(fullgraph=True)
    # A whole image's first call reads as many tokens as the later ones (the prefix and `window - 1` drafts), and the
    # static cache keeps the key length: one graph for every call of a batch size.
    try:
        with torch._dynamo.config.patch(error_on_recompile=True):
            compiled = tokens(pipe, generator=generators(0, 1), **request)
    finally:
        torch._dynamo.reset()
    assert torch.equal(compiled, expected)
