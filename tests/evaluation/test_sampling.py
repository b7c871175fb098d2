"""`vit_vqgan_hf.evaluation.sampling`: the seed rule, the plan, how calls are cut and shared out over processes, and
images that do not depend on either."""

import pytest
import torch

from vit_vqgan_hf import VimPipeline
from vit_vqgan_hf.evaluation import SamplingConfig, SamplingEngine
from vit_vqgan_hf.evaluation.sampling import classes_per_call, image_seed, sampling_plan

from ..pipelines.vim.test_pipeline_vim import make_pipeline, make_transformer


@pytest.fixture(scope="module")
def pipe():
    return make_pipeline()


def test_image_seeds_are_fixed_by_seed_class_and_index():
    # The rule itself is pinned: a resumed run, or a folder sampled with another version, must get the same seeds.
    assert image_seed(0, None, 0) == 6375474603054492659
    assert image_seed(7, 2, 5) == 4781028912254772024
    seeds = {image_seed(seed, class_id, index) for seed in (0, 1) for class_id in (None, 0, 1) for index in (0, 1)}
    assert len(seeds) == 12 and all(0 <= seed < 2**63 for seed in seeds)


def test_rejection_call_sizes():
    # The pipeline's rounding: 3 / 0.3 is 10 candidates, not 11.
    cases = {(3, 0.3): 10, (50, 0.5): 100, (2, 0.6): 4, (1, 1.0): 1}
    assert {case: VimPipeline.num_rejection_candidates(*case) for case in cases} == cases
    # Whole classes that fill whole batches (100 candidates in batches of 16: 4 classes, 25 batches), within bounds.
    cases = {(100, 16): 4, (4, 4): 1, (4, 3): 3, (999, 16): 1, (101, 64): 20}
    assert {case: classes_per_call(*case) for case in cases} == cases


def test_plan_in_class_order_and_its_errors():
    config = SamplingConfig(num_images_per_class=2, class_ids=[2, 0])
    assert sampling_plan(config, 3) == [(2, 0), (2, 1), (0, 0), (0, 1)]
    assert sampling_plan(SamplingConfig(num_images_per_class=1), 2) == [(0, 0), (1, 0)]
    assert sampling_plan(SamplingConfig(unconditional=True, num_images=2), 3) == [(None, 0), (None, 1)]
    with pytest.raises(ValueError, match=r"--class_ids \[3\] are out of range: the transformer knows 3 classes"):
        sampling_plan(SamplingConfig(class_ids=[0, 3]), 3)
    with pytest.raises(ValueError, match="unconditional: pass --unconditional.$"):
        sampling_plan(SamplingConfig(), 0)


@pytest.mark.parametrize("num_processes", [1, 2, 3])
def test_rounds_hold_the_plan_in_order_in_batches(pipe, num_processes):
    engine = SamplingEngine(pipe, SamplingConfig(num_images_per_class=3, batch_size=2))
    rounds = engine.rounds(num_processes)
    assert all(len(calls) == num_processes for calls in rounds)
    # Gathered round by round in process order, the images come in plan order.
    assert [item for calls in rounds for call in calls for item in call.items] == engine.plan
    assert all(len(call.items) <= 2 for calls in rounds for call in calls)
    # A short last round is split evenly: 9 images on 2 processes in batches of 2 are 5 and 4.
    counts = [sum(len(calls[rank].items) for calls in rounds) for rank in range(num_processes)]
    assert max(counts) - min(counts) <= 1
    # Resuming samples what is missing only.
    missing = engine.plan[1:2] + engine.plan[5:]
    assert [item for calls in engine.rounds(num_processes, missing) for c in calls for item in c.items] == missing


def test_rejection_calls_hold_whole_classes_round_robin(pipe):
    config = SamplingConfig(num_images_per_class=2, acceptance_rate=0.5, batch_size=4)
    with pytest.raises(ValueError, match="needs a classifier"):
        SamplingEngine(pipe, config)
    engine = SamplingEngine(pipe, config, classifier=torch.nn.Identity())
    # 4 candidates a class in batches of 4: one class a call; on two processes the last round has one call.
    assert [[call.class_ids for call in calls] for calls in engine.rounds(2)] == [[[0], [1]], [[2], None]]
    assert [call.items for call in engine.calls(1, 2)] == [[(1, 0), (1, 1)], []]
    # A class with a missing image is sampled again whole; the others are not.
    assert [call.class_ids for call in engine.calls(0, 1, missing=[(2, 1)])] == [[2]]
    assert len(engine.generators(engine.calls()[0])) == 4


def test_images_do_not_depend_on_processes_or_batching(pipe):
    def images_by_item(batch_size, num_processes):
        engine = SamplingEngine(pipe, SamplingConfig(num_images_per_class=2, batch_size=batch_size, seed=3))
        images = {}
        for rank in range(num_processes):
            for call in engine.calls(rank, num_processes):
                sampled = engine.sample(call)
                assert sampled.images.dtype == torch.uint8 and sampled.labels.tolist() == [c for c, _ in call.items]
                images.update(zip(sampled.items, sampled.images))
        return images

    reference = images_by_item(batch_size=6, num_processes=1)
    assert len(reference) == 6 and next(iter(reference.values())).shape == (3, 16, 16)
    for images in (images_by_item(batch_size=1, num_processes=1), images_by_item(batch_size=2, num_processes=2)):
        assert images.keys() == reference.keys()
        assert all(torch.equal(images[item], image) for item, image in reference.items())


def test_unconditional_sampling_uses_the_null_token():
    engine = SamplingEngine(
        make_pipeline(make_transformer(num_classes=0)), SamplingConfig(unconditional=True, num_images=3)
    )
    (call,) = engine.calls()
    sampled = engine.sample(call)
    assert sampled.items == [(None, 0), (None, 1), (None, 2)] and sampled.labels.tolist() == [-1, -1, -1]
    assert sampled.images.shape == (3, 3, 16, 16) and sampled.scores is None
