"""`vit_vqgan_hf.evaluation.sampling`: the seed rule, the plan, how calls are cut and shared out over processes, and
images that do not depend on either; the same for completion sets."""

import dataclasses

import PIL.Image
import pytest
import torch

from tests.testing_utils import tiny_pipeline, write_image_folder
from vit_vqgan_hf import VimPipeline
from vit_vqgan_hf.evaluation import SamplingConfig, SamplingEngine
from vit_vqgan_hf.evaluation.sampling import (
    CompletionInputs,
    classes_per_call,
    completion_plan,
    completion_seed,
    image_seed,
    sampling_plan,
)
from vit_vqgan_hf.models.vit_vqgan import create_image_processor


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
    with pytest.raises(ValueError, match=r"`class_ids` \[3\] are out of range: the transformer knows 3 classes"):
        sampling_plan(SamplingConfig(class_ids=[0, 3]), 3)
    with pytest.raises(ValueError, match="unconditional: pass `unconditional=True`.$"):
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
    engine = SamplingEngine(tiny_pipeline(num_classes=0), SamplingConfig(unconditional=True, num_images=3))
    (call,) = engine.calls()
    sampled = engine.sample(call)
    assert sampled.items == [(None, 0), (None, 1), (None, 2)] and sampled.labels.tolist() == [-1, -1, -1]
    assert sampled.images.shape == (3, 3, 16, 16) and sampled.scores is None


# Completions


def test_completion_seeds_are_fixed_by_seed_name_class_and_index():
    assert completion_seed(0, "LABEL_0/a", 0, 0) == 4367303579786579814
    seeds = {completion_seed(0, name, c, i) for name in ("a", "b/a") for c in (None, 0, 1) for i in (0, 1)}
    assert len(seeds) == 12 and all(0 <= seed < 2**63 for seed in seeds)
    assert completion_seed(0, "a", None, 0) != image_seed(0, None, 0)


def test_completion_plan_takes_the_classes_of_the_folders_or_the_flags(pipe, tmp_path):
    folder = write_image_folder(tmp_path / "images", {"LABEL_2": [(16, 16)], "label_0": [(20, 24)]})
    (folder / "label_0" / "1.png").write_bytes(b"not a png")
    inputs = CompletionInputs.from_folder(folder, image_size=16)
    assert list(inputs.paths) == ["LABEL_2/0", "label_0/0"] and inputs.unreadable == ["label_0/1.png"]
    # The class folders name the classes, as `pipe.get_label_ids` reads names (case-insensitively).
    config = SamplingConfig(completion_images=str(folder), completions_per_image=2)
    assert completion_plan(config, inputs, pipe) == [
        ("LABEL_2/0", 2, 0),
        ("LABEL_2/0", 2, 1),
        ("label_0/0", 0, 0),
        ("label_0/0", 0, 1),
    ]
    # --class_ids: every image under each of them; --unconditional: the null token.
    config = SamplingConfig(completion_images=str(folder), class_ids=[1, 0])
    assert completion_plan(config, inputs, pipe) == [
        ("LABEL_2/0", 1, 0),
        ("LABEL_2/0", 0, 0),
        ("label_0/0", 1, 0),
        ("label_0/0", 0, 0),
    ]
    config = SamplingConfig(completion_images=str(folder), unconditional=True)
    assert completion_plan(config, inputs, pipe) == [("LABEL_2/0", None, 0), ("label_0/0", None, 0)]
    with pytest.raises(ValueError, match=r"`class_ids` \[3\] are out of range"):
        completion_plan(SamplingConfig(completion_images=str(folder), class_ids=[3]), inputs, pipe)

    flat = CompletionInputs.from_folder(write_image_folder(tmp_path / "flat", {"": [(16, 16)]}), image_size=16)
    with pytest.raises(ValueError, match="not all in class folders .*pass `class_ids` .* or `unconditional=True`"):
        completion_plan(SamplingConfig(completion_images=str(tmp_path / "flat")), flat, pipe)
    (tmp_path / "flat" / "0.jpg").write_bytes((tmp_path / "flat" / "0.png").read_bytes())
    with pytest.raises(ValueError, match=r"differ in their suffix only would share output names: \['0'\]"):
        CompletionInputs.from_folder(tmp_path / "flat", image_size=16)
    unknown = CompletionInputs.from_folder(write_image_folder(tmp_path / "unknown", {"cats": [(16, 16)]}), 16)
    with pytest.raises(ValueError, match="must be class names of the transformer .*Unknown class name 'cats'"):
        completion_plan(SamplingConfig(completion_images=str(tmp_path / "unknown")), unknown, pipe)


def test_completions_are_the_pipeline_completions_of_the_inputs(pipe, tmp_path):
    folder = write_image_folder(tmp_path / "images", {"label_1": [(24, 20)], "label_2": [(16, 16)]})
    config = SamplingConfig(completion_images=str(folder), num_prefix_rows=2, completions_per_image=2, seed=4)

    def completions_by_item(batch_size, num_processes):
        engine = SamplingEngine(pipe, dataclasses.replace(config, batch_size=batch_size))
        completions, inputs = {}, {}
        for rank in range(num_processes):
            for call in engine.calls(rank, num_processes):
                sampled = engine.sample(call)
                assert sampled.labels.tolist() == [class_id for _, class_id, _ in call.items]
                completions.update(zip(sampled.items, sampled.images))
                inputs.update((name, image) for (name, _, _), image in zip(sampled.items, sampled.inputs))
        return completions, inputs

    reference, inputs = completions_by_item(batch_size=4, num_processes=1)
    assert list(reference) == [("label_1/0", 1, 0), ("label_1/0", 1, 1), ("label_2/0", 2, 0), ("label_2/0", 2, 1)]
    for completions, _ in (completions_by_item(1, 1), completions_by_item(3, 2)):
        assert all(torch.equal(completions[item], image) for item, image in reference.items())
    # Each completion is the pipeline's completion of the PIL image, with its own seed; the input is the image as the
    # tokenizer's image processor prepares it.
    processor = create_image_processor(pipe.vqgan.config)
    for name, class_id, index in reference:
        image = PIL.Image.open(folder / f"{name}.png")
        generator = torch.Generator().manual_seed(completion_seed(4, name, class_id, index))
        expected = pipe(class_labels=class_id, image=image, num_prefix_rows=2, generator=generator, output_type="pt")
        assert torch.equal(reference[(name, class_id, index)], (expected.images[0] * 255).round().to(torch.uint8))
        pixels = processor(image, return_tensors="pt").pixel_values[0]
        assert torch.equal(inputs[name], ((pixels + 1) * 127.5).round().to(torch.uint8))


def test_completion_sets_refuse_rejection_and_rows_beyond_the_grid(pipe, tmp_path):
    folder = write_image_folder(tmp_path / "images", {"label_0": [(16, 16)]})
    with pytest.raises(ValueError, match="does not apply to `completion_images`"):
        SamplingEngine(pipe, SamplingConfig(completion_images=str(folder), acceptance_rate=0.5), torch.nn.Identity())
    with pytest.raises(ValueError, match=r"`num_prefix_rows` must lie in \[0, 4\]"):
        SamplingEngine(pipe, SamplingConfig(completion_images=str(folder), num_prefix_rows=5))
