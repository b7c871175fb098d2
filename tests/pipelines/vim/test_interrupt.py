"""Stopping VimPipeline from a `callback_on_step_end` (`pipeline._interrupt`, diffusers' convention): no transformer
call after the interrupting step, only finished batches come back, and the next call runs whole."""

import torch

from .test_pipeline_vim import GRID, brightness_classifier, generators


def interrupt_at(stop_step):
    """A callback that interrupts the pipeline once token `stop_step` of a batch is sampled, and records the steps."""
    steps = []

    def callback(pipeline, step, timestep, callback_kwargs):
        steps.append(step)
        if step == stop_step:
            pipeline._interrupt = True
        return {}

    callback.steps = steps
    return callback


def calls_during(pipe, **kwargs):
    """The pipeline's output and how many times it called the transformer."""
    calls = []
    hook = pipe.transformer.register_forward_pre_hook(lambda module, args: calls.append(1))
    try:
        output = pipe(**kwargs)
    finally:
        hook.remove()
    return output, len(calls)


def test_interrupt_stops_sampling_after_the_current_token(pipe):
    callback = interrupt_at(5)
    output, calls = calls_during(
        pipe, class_labels=[0, 1], generator=generators(0, 1), callback_on_step_end=callback, output_type="pil"
    )
    assert callback.steps == list(range(6)) and calls == 6
    assert output.images == [] and pipe.interrupt


def test_interrupt_returns_the_batches_finished_before(pipe):
    whole = pipe(class_labels=[0, 1, 2, 0], generator=generators(0, 1, 2, 3), output_type="pt").images
    # Interrupted in the second batch of two images: the first batch's images come back, as sampled in a whole run.
    steps_before = []

    def callback(pipeline, step, timestep, callback_kwargs):
        steps_before.append(step)
        if len(steps_before) == GRID * GRID + 3:
            pipeline._interrupt = True
        return {}

    output, calls = calls_during(
        pipe,
        class_labels=[0, 1, 2, 0],
        generator=generators(0, 1, 2, 3),
        max_batch_size=2,
        callback_on_step_end=callback,
        output_type="pt",
    )
    assert calls == GRID * GRID + 3
    assert output.images.shape == (2, 3, 16, 16) and torch.equal(output.images, whole[:2])
    tokens = pipe(
        class_labels=[0, 1, 2, 0],
        generator=generators(0, 1, 2, 3),
        max_batch_size=2,
        callback_on_step_end=interrupt_at(GRID * GRID - 1),  # the last token of the first batch: it is finished
        output_type="tokens",
    ).images
    assert tokens.shape == (2, GRID, GRID)


def test_interrupt_with_rejection_sampling_returns_no_image(pipe):
    output = pipe(
        class_labels=[0, 1],
        generator=generators(0, 1, 2, 3),
        acceptance_rate=0.5,
        classifier=brightness_classifier,
        max_batch_size=2,
        callback_on_step_end=interrupt_at(GRID * GRID - 1),  # the first of two batches of candidates finishes
        output_type="pt",
    )
    assert output.images.shape[0] == 0 and output.scores is None


def test_a_call_after_an_interrupted_one_runs_whole(pipe):
    pipe(class_labels=[1], generator=generators(7), callback_on_step_end=interrupt_at(0), output_type="tokens")
    assert pipe.interrupt
    after = pipe(class_labels=[1], generator=generators(7), output_type="tokens").images
    assert not pipe.interrupt
    assert torch.equal(after, pipe(class_labels=[1], generator=generators(7), output_type="tokens").images)
    assert after.shape == (1, GRID, GRID)


def test_an_interrupted_completion_keeps_no_image(pipe):
    pixels = torch.zeros(1, 3, 16, 16)
    callback = interrupt_at(GRID * 2)
    output = pipe(class_labels=[2], image=pixels, num_prefix_rows=2, callback_on_step_end=callback, output_type="np")
    # A completion's first step is the first token it does not keep.
    assert callback.steps == [GRID * 2] and output.images.shape[0] == 0
