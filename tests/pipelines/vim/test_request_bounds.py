"""The work of one VimPipeline call is bounded: batches of `max_batch_size` (by default sized to a key/value cache
budget) keep the working memory that of one batch, and requests beyond `max_images_per_call` images or rejection
candidates are refused before any compute, also under an address-space limit (`resource.setrlimit`)."""

import subprocess
import sys
import textwrap

import pytest
import torch

from tests.testing_utils import REPO_ROOT

from .test_interrupt import calls_during
from .test_pipeline_vim import brightness_classifier


def test_requests_beyond_the_images_per_call_are_refused_before_compute(pipe):
    with pytest.raises(ValueError, match=r"1 label x 1000000 images = 1000000 images, more than `pipe.max_images_per"):
        calls_during(pipe, class_labels=0, num_images_per_label=10**6)
    with pytest.raises(ValueError, match=r"3 labels x 1 images / acceptance_rate 1e-09 = 3000000000 candidates"):
        pipe(class_labels=[0, 1, 2], acceptance_rate=1e-9, classifier=brightness_classifier)
    # Completions count one per pair of image and label.
    images = torch.zeros(2, 3, 16, 16)
    pipe.max_images_per_call = 7
    try:
        with pytest.raises(ValueError, match=r"2 labels x 4 images = 8 images"):
            pipe(class_labels=0, image=images, num_images_per_label=4)
        assert len(pipe(class_labels=None, num_images_per_label=7, output_type="tokens").images) == 7
    finally:
        del pipe.max_images_per_call


def test_the_default_batch_keeps_the_cache_within_its_budget(pipe):
    config = pipe.transformer.config
    per_image = 2 * config.num_hidden_layers * config.max_position_embeddings * config.hidden_size * 4
    pipe.max_cache_bytes = 3 * per_image
    try:
        assert pipe.default_batch_size(guidance_scale=1.0) == 3 and pipe.default_batch_size(guidance_scale=2.0) == 1
        batches = []
        hook = pipe.transformer.register_forward_pre_hook(lambda module, args, kwargs: batches.append(
            len(kwargs["input_ids"])), with_kwargs=True)  # fmt: skip
        try:
            generator = [torch.Generator().manual_seed(seed) for seed in range(7)]
            chunked = pipe(class_labels=0, num_images_per_label=7, generator=generator, output_type="tokens").images
        finally:
            hook.remove()
        assert max(batches) == 3
    finally:
        del pipe.max_cache_bytes
    generator = [torch.Generator().manual_seed(seed) for seed in range(7)]
    whole = pipe(class_labels=0, num_images_per_label=7, generator=generator, max_batch_size=7, output_type="tokens")
    assert torch.equal(chunked, whole.images)


# Run in a fresh process: peak resident memory (ru_maxrss) only grows, and an address-space limit stays with the
# process. A transformer of 4 layers of width 512 over the 8x8 tokens of the tiny tokenizer: its key/value cache is
# 1 MiB per image, more than anything else a call holds per image.
MEMORY_SCRIPT = textwrap.dedent(
    """
    import resource, sys
    import torch
    from tests.testing_utils import tiny_pipeline, tiny_tokenizer, tiny_transformer

    torch.set_num_threads(1)
    transformer = tiny_transformer(hidden_size=512, num_hidden_layers=4, num_attention_heads=4, intermediate_size=512)
    pipe = tiny_pipeline(tokenizer=tiny_tokenizer(), transformer=transformer)

    def peak_mib():
        # VmHWM, the high-water mark of this process's own memory: `ru_maxrss` would start at the parent's peak, which
        # Linux carries across fork and exec (a test process that compiled a model first reads 600 MiB everywhere).
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024

    def sample(num_images, max_batch_size, **kwargs):
        generator = torch.Generator().manual_seed(0)
        return pipe(class_labels=0, num_images_per_label=num_images, max_batch_size=max_batch_size,
                    generator=generator, output_type="pt", **kwargs).images

    if sys.argv[1] == "batches":
        sample(8, 8)
        peaks = [peak_mib()]
        sample(64, 8)
        peaks.append(peak_mib())
        sample(64, 64)
        peaks.append(peak_mib())
        print(*peaks)
    else:
        limit = 4 * 2**30
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        try:
            sample(10**6, None)
        except ValueError as error:
            print("refused:", error)

        def stop_after_first_batch(pipeline, step, timestep, callback_kwargs):
            if step == pipeline.num_image_tokens - 1:
                pipeline._interrupt = True
            return {}

        pipe.max_images_per_call = 10**6  # lifted: the call runs in batches, stopped after the first one
        images = sample(10**6, 16, callback_on_step_end=stop_after_first_batch)
        print("sampled:", len(images))
    """
)


def run_memory_script(mode: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, mode], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow  # two fresh processes (~20 s)
def test_a_large_call_in_batches_peaks_like_one_batch_and_a_huge_one_stays_bounded():
    eight, sixty_four_by_eight, sixty_four_at_once = map(float, run_memory_script("batches").split())
    # 64 images in batches of 8 need no more memory than 8 images (their outputs add 0.8 MiB); the same 64 at once
    # hold 64 caches of 1 MiB, which shows the measurement would see it.
    assert sixty_four_by_eight - eight < 8
    assert sixty_four_at_once - sixty_four_by_eight > 40

    output = run_memory_script("limit")
    assert "refused: The request asks for 1 label x 1000000 images" in output
    assert "sampled: 16" in output
