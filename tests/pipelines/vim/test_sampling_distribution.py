"""The distribution of VimPipeline's samples, tested exactly: on a VIM small enough to enumerate (3 codes, a 2x2 token
grid: 81 possible images), the probability of every token grid is computed from the model, and the counts of many
samples must pass a chi-square goodness-of-fit test against it, for sequential and speculative Jacobi decoding (with
and without branches of the first draft, with guidance). The
test has the power to see an error: the same number of samples from speculative decoding without the residual
correction (a rejected draft replaced by a token from `p`) fails it."""

import itertools

import pytest
import torch

from tests.testing_utils import (
    PIPELINE_TOKENIZER,
    PIPELINE_TRANSFORMER,
    tiny_pipeline,
    tiny_tokenizer,
    tiny_transformer,
)
from vit_vqgan_hf import VimPipeline


CODEBOOK_SIZE, GRID, NUM_SAMPLES = 3, 2, 12_000


class VimPipelineWithoutResidual(VimPipeline):
    """Speculative decoding that draws the token at a rejected draft from `p`, not from the residual: biased."""

    @staticmethod
    def jacobi_residual(p, q):
        return p


@pytest.fixture(scope="module")
def small_pipe():
    tokenizer = tiny_tokenizer(**{**PIPELINE_TOKENIZER, "image_size": 4 * GRID, "codebook_size": CODEBOOK_SIZE})
    transformer = {**PIPELINE_TRANSFORMER, "codebook_size": CODEBOOK_SIZE, "token_grid_size": GRID}
    pipe = tiny_pipeline(tokenizer, tiny_transformer(**transformer, num_hidden_layers=1))
    # Random weights predict almost uniform tokens, for which every sampler looks right: sharper, context-dependent
    # distributions make the drafts of speculative decoding disagree with `p`, so a missing correction shows.
    with torch.no_grad():
        pipe.transformer.lm_head.weight.mul_(30)
        pipe.transformer.model.embed_tokens.weight.mul_(3)
    pipe.max_images_per_call = NUM_SAMPLES  # one call of 12,000 tiny 2x2 grids
    return pipe


def grid_probabilities(
    pipe, class_id: int, temperature: float = 1.0, top_k: int | None = None, guidance_scale: float = 1.0
) -> torch.Tensor:
    """The model's probability of each of the `CODEBOOK_SIZE ** (GRID * GRID)` token grids (in `itertools.product`
    order), under the processed (and guided) distributions, from one call over all the grids (two with guidance)."""
    grids = torch.tensor(list(itertools.product(range(CODEBOOK_SIZE), repeat=GRID * GRID)))
    config = pipe.transformer.config
    prefix_ids = [config.class_token_id(class_id)] + ([config.null_class_token_id] if guidance_scale > 1 else [])
    prefix = torch.tensor(prefix_ids).repeat_interleave(len(grids))[:, None]
    with torch.no_grad():
        logits = pipe.transformer(torch.cat([prefix, grids.repeat(len(prefix_ids), 1)], dim=1)).logits
    logits = pipe.guide(logits[:, :-1].float(), guidance_scale)
    processor = pipe.prepare_logits_processor(temperature, top_k, None)
    log_probabilities = processor(grids, logits.flatten(0, 1)).log_softmax(dim=-1).view_as(logits)
    return log_probabilities.gather(2, grids[..., None]).sum(dim=(1, 2)).exp().double()


def chi_square_p_value(samples: torch.LongTensor, probabilities: torch.Tensor) -> float:
    """Pearson's goodness-of-fit p-value of the sampled grids against `probabilities`; grids expected fewer than 5
    times are pooled into one cell (a grid of probability 0 that is sampled gives p = 0)."""
    weights = CODEBOOK_SIZE ** torch.arange(GRID * GRID - 1, -1, -1)
    counts = torch.bincount((samples.flatten(1) * weights).sum(dim=1), minlength=len(probabilities)).double()
    expected = probabilities * len(samples)
    if bool((counts[expected == 0] > 0).any()):
        return 0.0
    kept = expected >= 5
    counts = torch.cat([counts[kept], counts[~kept].sum()[None]])
    expected = torch.cat([expected[kept], expected[~kept].sum()[None]])
    counts, expected = counts[expected > 0], expected[expected > 0]
    statistic = ((counts - expected) ** 2 / expected).sum()
    degrees_of_freedom = len(counts) - 1
    return float(torch.special.gammaincc(torch.tensor(degrees_of_freedom / 2.0), statistic / 2))


def sample(pipe, seed: int, **kwargs) -> torch.LongTensor:
    generator = torch.Generator().manual_seed(seed)
    return pipe(
        class_labels=[1], num_images_per_label=NUM_SAMPLES, generator=generator, output_type="tokens", **kwargs
    ).images


@pytest.mark.parametrize(
    "decoding",
    [
        {},
        {"decoding": "speculative_jacobi", "jacobi_window": 3},
        {"decoding": "speculative_jacobi", "jacobi_window": 3, "jacobi_branches": 2},  # both other codes
        {"decoding": "speculative_jacobi", "jacobi_window": 5, "jacobi_branches": 2, "cache_implementation": "static"},
        {"decoding": "speculative_jacobi", "jacobi_window": 4, "jacobi_branches": 1, "guidance_scale": 2.0},
    ],
)
def test_samples_follow_the_model(small_pipe, decoding):
    probabilities = grid_probabilities(small_pipe, class_id=1, guidance_scale=decoding.get("guidance_scale", 1.0))
    assert chi_square_p_value(sample(small_pipe, 0, **decoding), probabilities) > 0.01


def test_samples_follow_the_processed_distributions(small_pipe):
    settings = {"temperature": 0.7, "top_k": 2}
    probabilities = grid_probabilities(small_pipe, class_id=1, **settings)
    samples = sample(small_pipe, 1, decoding="speculative_jacobi", jacobi_window=4, **settings)
    assert chi_square_p_value(samples, probabilities) > 0.01


def test_the_test_sees_a_missing_residual_correction(small_pipe):
    biased = VimPipelineWithoutResidual(vqgan=small_pipe.vqgan, transformer=small_pipe.transformer)
    biased.set_progress_bar_config(disable=True)
    biased.max_images_per_call = NUM_SAMPLES
    probabilities = grid_probabilities(small_pipe, class_id=1)
    assert chi_square_p_value(sample(biased, 0, decoding="speculative_jacobi", jacobi_window=3), probabilities) < 1e-6


def test_branches_save_calls(small_pipe):
    """On this VIM's sharp distributions, images need fewer calls with branches than without (same seeds)."""

    def mean_calls_per_image(**decoding):
        calls = []

        def record(pipeline, step, timestep, callback_kwargs):
            calls.append(callback_kwargs["num_tokens"].clone())
            return {}

        generator = torch.Generator().manual_seed(0)
        small_pipe(
            class_labels=[1],
            num_images_per_label=2000,
            max_batch_size=2000,
            generator=generator,
            output_type="tokens",
            decoding="speculative_jacobi",
            jacobi_window=3,
            callback_on_step_end=record,
            callback_on_step_end_tensor_inputs=["num_tokens"],
            **decoding,
        )
        # An image's calls: those that ran while it still lacked tokens (the first call ran for every image).
        unfinished = torch.stack([torch.full_like(calls[0], 0), *calls[:-1]]) < GRID * GRID
        return float(unfinished.sum(dim=0).double().mean())

    without, with_branches = mean_calls_per_image(), mean_calls_per_image(jacobi_branches=2)
    assert with_branches < 0.95 * without
