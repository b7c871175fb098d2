"""End-to-end tests of examples/sample.py on a tiny saved pipeline, as subprocesses or in this process (offline, CPU)."""

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from accelerate.state import AcceleratorState

from tests.conftest import fill_disk
from tests.testing_utils import PIPELINE_NUM_CLASSES, load_script, tiny_pipeline, write_image_folder
from vit_vqgan_hf import VimPipeline
from vit_vqgan_hf.cli import in_flag_terms, load_image_classifier
from vit_vqgan_hf.evaluation.sampling import image_seed
from vit_vqgan_hf.models.vit_vqgan import create_image_processor
from vit_vqgan_hf.utils.file_writes import OutputWriteError

from ..evaluation.helpers import save_tiny_classifier


SCRIPT = Path(__file__).parents[2] / "examples" / "sample.py"


def run_script(arguments, tmp_path, num_processes=1):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf_home"), "OMP_NUM_THREADS": "1"}
    if num_processes == 1:
        command = [sys.executable, str(SCRIPT), *arguments]
    else:
        env["ACCELERATE_USE_CPU"] = "true"
        launch = ["--multi_gpu", "--num_processes", str(num_processes), "--num_cpu_threads_per_process", "1"]
        launch += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
        command = [sys.executable, "-m", "accelerate.commands.launch", *launch, str(SCRIPT), *arguments]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-6000:]}"
    return result.stdout + result.stderr


def run_in_this_process(arguments):
    script = load_script(SCRIPT)
    args = script.parse_args(arguments)
    try:
        # As the script's entry point does: the library's errors name the flags.
        with in_flag_terms(args):
            script.main(args)
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)


def written_counts(log):
    return {int(rank): int(count) for rank, count in re.findall(r"process (\d+): wrote (\d+) images", log)}


def pixels(folder):
    return {path.name: np.asarray(PIL.Image.open(path)) for path in sorted(folder.glob("*.png"))}


def test_sharded_sampling_is_complete_resumable_and_independent_of_sharding(pipeline_dir, tmp_path, caplog):
    arguments = ["--pipeline", str(pipeline_dir), "--num_images_per_class", "3", "--class_ids", "0", "2"]
    arguments += ["--batch_size", "2", "--seed", "7"]
    sharded = tmp_path / "sharded"
    log = run_script([*arguments, "--output_dir", str(sharded)], tmp_path, num_processes=2)

    expected_names = [f"{class_id:04d}_{index:05d}.png" for class_id in (0, 2) for index in range(3)]
    images = pixels(sharded)
    assert list(images) == expected_names
    # Each image was written by exactly one of the two processes.
    assert written_counts(log) == {0: 3, 1: 3}
    assert not list(sharded.glob(".*"))
    archive = np.load(sharded / "samples_6x16x16x3.npz")
    assert archive["arr_0"].dtype == np.uint8 and archive["arr_0"].shape == (6, 16, 16, 3)
    np.testing.assert_array_equal(archive["arr_0"], np.stack([images[name] for name in expected_names]))
    np.testing.assert_array_equal(archive["arr_1"], [0, 0, 0, 2, 2, 2])

    # A rerun fills in what is missing only, here on one process with another batch size: the images do not depend
    # on the sharding or the batching.
    for name in expected_names[1:3]:
        (sharded / name).unlink()
    with caplog.at_level(logging.INFO):
        run_in_this_process([*arguments, "--batch_size", "4", "--output_dir", str(sharded), "--no_npz"])
    assert written_counts(caplog.text) == {0: 2}
    assert all(np.array_equal(pixels(sharded)[name], image) for name, image in images.items())


def test_unconditional_sampling(tmp_path):
    folder = tmp_path / "pipeline"
    tiny_pipeline(num_classes=0).save_pretrained(folder)
    output_dir = tmp_path / "samples"
    arguments = ["--pipeline", str(folder), "--output_dir", str(output_dir), "--unconditional", "--num_images", "3"]
    run_in_this_process(arguments)
    assert sorted(path.name for path in output_dir.glob("*.png")) == ["00000.png", "00001.png", "00002.png"]
    archive = np.load(output_dir / "samples_3x16x16x3.npz")
    assert archive["arr_0"].shape == (3, 16, 16, 3) and "arr_1" not in archive


@pytest.mark.slow
def test_compiled_sampling_writes_the_same_images(pipeline_dir, tmp_path):
    arguments = ["--pipeline", str(pipeline_dir), "--num_images_per_class", "2", "--class_ids", "1", "--no_npz"]
    run_script([*arguments, "--output_dir", str(tmp_path / "eager")], tmp_path)
    run_script([*arguments, "--output_dir", str(tmp_path / "compiled"), "--compile"], tmp_path)
    eager, compiled = pixels(tmp_path / "eager"), pixels(tmp_path / "compiled")
    assert list(compiled) == ["0001_00000.png", "0001_00001.png"]
    assert all(np.array_equal(compiled[name], image) for name, image in eager.items())


def test_settings_and_seeds(tmp_path):
    script = load_script(SCRIPT)
    args = script.parse_args(["--pipeline", "p", "--output_dir", str(tmp_path), "--class_ids", "3", "5"])
    settings = script.sampling_settings(args)
    script.check_settings(settings, tmp_path)  # nothing recorded yet
    (tmp_path / script.SETTINGS_FILE).write_text(json.dumps(settings))
    script.check_settings(settings, tmp_path)
    with pytest.raises(ValueError, match="records other sampling settings"):
        script.check_settings({**settings, "temperature": 0.5}, tmp_path)

    seeds = {image_seed(seed, class_id, index) for seed in (0, 1) for class_id in (None, 0, 1) for index in (0, 1)}
    assert len(seeds) == 12 and all(0 <= seed < 2**63 for seed in seeds)
    assert image_seed(0, 5, 2) == image_seed(0, 5, 2)
    with pytest.raises(SystemExit):
        script.parse_args(["--pipeline", "p", "--output_dir", "o", "--unconditional", "--class_ids", "1"])


@pytest.mark.parametrize(
    ("arguments", "flag"),
    [
        (["--guidance_scale", "0.5"], "--guidance_scale"),
        (["--unconditional", "--guidance_scale", "2"], "--guidance_scale"),
        (["--temperature", "0"], "--temperature"),
        (["--top_k", "0"], "--top_k"),
        (["--top_p", "0"], "--top_p"),
        (["--top_p", "1.5"], "--top_p"),
        (["--seed", "-1"], "--seed"),
        (["--acceptance_rate", "0"], "--acceptance_rate must lie in"),
        (["--acceptance_rate", "1.5"], "--acceptance_rate must lie in"),
        (["--acceptance_rate", "0.5"], "pass --classifier"),
        (["--classifier", "c"], "pass --acceptance_rate"),
        (["--unconditional", "--acceptance_rate", "0.5", "--classifier", "c"], "--unconditional"),
    ],
)
def test_invalid_sampling_settings_are_refused_before_loading(arguments, flag):
    script = load_script(SCRIPT)
    with pytest.raises(ValueError, match=flag):
        script.parse_args(["--pipeline", "p", "--output_dir", "o", *arguments])


@pytest.mark.parametrize("flag", ["--num_images_per_class", "--batch_size"])
def test_non_positive_counts_are_refused(flag, capsys):
    with pytest.raises(SystemExit):
        load_script(SCRIPT).parse_args(["--pipeline", "p", "--output_dir", "o", flag, "0"])
    assert f"{flag} must be positive, got 0" in capsys.readouterr().err


@pytest.mark.parametrize("output_dir", ["file", "file/samples"])
def test_output_dir_that_cannot_be_a_folder_fails_before_the_pipeline_is_loaded(output_dir, tmp_path):
    from accelerate.state import AcceleratorState

    (tmp_path / "file").write_text("not a folder")
    script = load_script(SCRIPT)
    # The pipeline does not exist: the error must come from --output_dir, before the pipeline is loaded.
    args = script.parse_args(["--pipeline", str(tmp_path / "missing"), "--output_dir", str(tmp_path / output_dir)])
    try:
        with pytest.raises(ValueError, match="--output_dir .* is a file"):
            script.main(args)
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)


def test_processes_that_form_no_group_are_refused_before_loading(tmp_path):
    # Without ACCELERATE_USE_CPU on a machine without GPUs, `--multi_gpu` starts two processes that each set up a
    # one-process run: both would sample every image. The pipeline does not exist: the launch check comes first.
    if torch.cuda.is_available():
        pytest.skip("On a GPU machine --multi_gpu forms a real process group.")
    env = {key: value for key, value in os.environ.items() if key != "ACCELERATE_USE_CPU"}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"), OMP_NUM_THREADS="1")
    launch = ["--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no"]
    launch += ["--dynamo_backend", "no", "--main_process_port", "0"]
    arguments = ["--pipeline", str(tmp_path / "missing"), "--output_dir", str(tmp_path / "samples")]
    command = [sys.executable, "-m", "accelerate.commands.launch", *launch, str(SCRIPT), *arguments]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "`accelerate launch` started 2 processes, but each set up a run of 1" in result.stderr
    assert "ACCELERATE_USE_CPU=true" in result.stderr
    assert "is no local file or folder" not in result.stderr  # the missing pipeline was never looked up


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    return save_tiny_classifier(tmp_path_factory.mktemp("classifier"), num_labels=PIPELINE_NUM_CLASSES)


def png_scores(folder):
    return {path.name: float(PIL.Image.open(path).info["classifier_score"]) for path in sorted(folder.glob("*.png"))}


def test_rejection_sampling_keeps_the_best_candidates_of_a_run_without_it(pipeline_dir, classifier_dir, tmp_path):
    common = ["--pipeline", str(pipeline_dir), "--class_ids", "0", "2", "--seed", "5"]
    run_in_this_process([*common, "--num_images_per_class", "4", "--no_npz", "--output_dir", str(tmp_path / "plain")])
    rejection = ["--num_images_per_class", "2", "--acceptance_rate", "0.5", "--classifier", str(classifier_dir)]
    run_in_this_process([*common, *rejection, "--batch_size", "3", "--output_dir", str(tmp_path / "kept")])

    kept, plain = pixels(tmp_path / "kept"), pixels(tmp_path / "plain")
    assert list(kept) == ["0000_00000.png", "0000_00001.png", "0002_00000.png", "0002_00001.png"]
    np.testing.assert_array_equal(np.load(tmp_path / "kept" / "samples_4x16x16x3.npz")["arr_1"], [0, 0, 2, 2])
    settings = json.loads((tmp_path / "kept" / "sample_settings.json").read_text())
    assert (settings["acceptance_rate"], settings["classifier"], settings["candidates_per_class"]) == (
        0.5,
        str(classifier_dir),
        4,
    )
    # Candidate j of a class is image j of the run without rejection: the kept images are the two of four that the
    # classifier scores highest (on the decoded float pixels, as the pipeline does), best first, each PNG carrying its
    # score.
    classifier = load_image_classifier(classifier_dir)
    pipeline = VimPipeline.from_pretrained(pipeline_dir)
    pipeline.set_progress_bar_config(disable=True)
    scores = png_scores(tmp_path / "kept")
    for class_id in (0, 2):
        generator = [torch.Generator().manual_seed(image_seed(5, class_id, j)) for j in range(4)]
        candidates = pipeline(class_labels=[class_id], num_images_per_label=4, generator=generator, output_type="pt")
        with torch.no_grad():
            candidate_scores = classifier(candidates.images * 2 - 1).softmax(-1)[:, class_id]
        best = candidate_scores.argsort(descending=True)[:2].tolist()
        for index, candidate in enumerate(best):
            name = f"{class_id:04d}_{index:05d}.png"
            np.testing.assert_array_equal(kept[name], plain[f"{class_id:04d}_{candidate:05d}.png"])
            assert scores[name] == pytest.approx(candidate_scores[candidate].item(), rel=1e-5)
    recorded = json.loads((tmp_path / "kept" / "classifier_scores.json").read_text())
    assert recorded["scores"] == scores and recorded["candidates_per_class"] == 4


def test_rejection_sampling_is_independent_of_sharding_and_resumable(pipeline_dir, classifier_dir, tmp_path):
    arguments = ["--pipeline", str(pipeline_dir), "--num_images_per_class", "2", "--class_ids", "0", "1", "2"]
    arguments += ["--acceptance_rate", "0.5", "--classifier", str(classifier_dir), "--seed", "9", "--no_npz"]
    # Batches of 3: one call samples the 3 x 4 candidates.
    run_in_this_process([*arguments, "--batch_size", "3", "--output_dir", str(tmp_path / "one")])
    reference = pixels(tmp_path / "one")
    assert len(reference) == 6

    # Two processes with batches of 4 (a class per call): the calls [0], [1], [2] are shared out whole, round robin, so
    # each image is written once, by the process of its class.
    log = run_script(
        [*arguments, "--batch_size", "4", "--output_dir", str(tmp_path / "two")], tmp_path, num_processes=2
    )
    assert written_counts(log) == {0: 4, 1: 2}
    assert pixels(tmp_path / "two").keys() == reference.keys()
    assert all(np.array_equal(pixels(tmp_path / "two")[name], image) for name, image in reference.items())
    scores = json.loads((tmp_path / "two" / "classifier_scores.json").read_text())["scores"]
    # Scored in other batches than on one process: equal up to float rounding.
    assert scores == pytest.approx(json.loads((tmp_path / "one" / "classifier_scores.json").read_text())["scores"])

    # A resumed run samples the class with a missing image again and writes that image only.
    (tmp_path / "one" / "0001_00001.png").unlink()
    untouched = {path.name: path.stat().st_mtime_ns for path in (tmp_path / "one").glob("*.png")}
    run_in_this_process([*arguments, "--batch_size", "4", "--output_dir", str(tmp_path / "one")])
    assert all(np.array_equal(pixels(tmp_path / "one")[name], image) for name, image in reference.items())
    assert all((tmp_path / "one" / name).stat().st_mtime_ns == mtime for name, mtime in untouched.items())
    # Another acceptance rate, or none, would mix other images into the folder.
    for other in (["--acceptance_rate", "0.25"], ["--acceptance_rate", "1.0"]):
        with pytest.raises(ValueError, match="records other sampling settings"):
            run_in_this_process([*arguments, *other, "--output_dir", str(tmp_path / "one")])


def test_rejection_sampling_refuses_other_classes_and_unconditional_pipelines(pipeline_dir, tmp_path):
    four_labels = save_tiny_classifier(tmp_path / "four_labels", num_labels=PIPELINE_NUM_CLASSES + 1)
    arguments = ["--num_images_per_class", "1", "--acceptance_rate", "0.5", "--classifier", str(four_labels)]
    arguments += ["--output_dir", str(tmp_path / "samples")]
    with pytest.raises(ValueError, match="has 4 labels, but the VIM's transformer has 3 classes"):
        run_in_this_process(["--pipeline", str(pipeline_dir), *arguments])
    assert not list((tmp_path / "samples").glob("*.png"))

    unconditional = tmp_path / "unconditional"
    tiny_pipeline(num_classes=0).save_pretrained(unconditional)
    with pytest.raises(ValueError, match="unconditional: pass --unconditional \\(and no --acceptance_rate"):
        run_in_this_process(["--pipeline", str(unconditional), *arguments])


# Image completion


@pytest.fixture(scope="module")
def completion_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("completion_images")
    return write_image_folder(folder, {"label_0": [(20, 24), (16, 16)], "label_2": [(16, 16)]})


def test_completions_are_written_next_to_their_inputs_sharded_and_resumable(
    pipeline_dir, completion_folder, tmp_path, caplog
):
    arguments = ["--pipeline", str(pipeline_dir), "--completion_images", str(completion_folder)]
    arguments += ["--num_prefix_rows", "2", "--completions_per_image", "2", "--batch_size", "2", "--seed", "3"]
    output_dir = tmp_path / "completions"
    log = run_script([*arguments, "--output_dir", str(output_dir)], tmp_path, num_processes=2)

    completions = [
        f"{name}_{class_id:04d}_{index:05d}.png"
        for name, class_id in (("label_0/0", 0), ("label_0/1", 0), ("label_2/0", 2))
        for index in range(2)
    ]
    inputs = ["label_0/0_input.png", "label_0/1_input.png", "label_2/0_input.png"]
    written = sorted(str(path.relative_to(output_dir)) for path in output_dir.rglob("*.png"))
    assert written == sorted(completions + inputs)
    assert sum(written_counts(log).values()) == 6 and not list(output_dir.rglob(".*.png"))
    # Each input as the tokenizer sees it: label_0/0's 20x24 is resized and cropped to 16x16 by the tokenizer's processor.
    processor = create_image_processor(VimPipeline.from_pretrained(pipeline_dir).vqgan.config)
    expected = processor(PIL.Image.open(completion_folder / "label_0" / "0.png"), return_tensors="pt").pixel_values[0]
    expected = ((expected + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(np.asarray(PIL.Image.open(output_dir / "label_0" / "0_input.png")), expected)
    archive = np.load(output_dir / "samples_6x16x16x3.npz")
    np.testing.assert_array_equal(archive["arr_1"], [0, 0, 0, 0, 2, 2])
    settings = json.loads((output_dir / "sample_settings.json").read_text())
    assert (settings["completion_images"], settings["num_prefix_rows"], settings["completions_per_image"]) == (
        str(completion_folder),
        2,
        2,
    )

    # A rerun on one process, with another batch size, writes the missing completions only, the same pixels.
    reference = {name: np.asarray(PIL.Image.open(output_dir / name)) for name in completions}
    for name in completions[1:4]:
        (output_dir / name).unlink()
    with caplog.at_level(logging.INFO):
        run_in_this_process([*arguments, "--batch_size", "4", "--output_dir", str(output_dir), "--no_npz"])
    assert written_counts(caplog.text) == {0: 3}
    assert all(
        np.array_equal(np.asarray(PIL.Image.open(output_dir / name)), image) for name, image in reference.items()
    )
    # Other kept rows would mix other completions into the folder.
    with pytest.raises(ValueError, match="records other sampling settings"):
        run_in_this_process([*arguments, "--num_prefix_rows", "1", "--output_dir", str(output_dir)])


def test_completions_under_flagged_classes_or_unconditional(pipeline_dir, completion_folder, tmp_path):
    common = ["--pipeline", str(pipeline_dir), "--completion_images", str(completion_folder), "--no_npz"]
    run_in_this_process([*common, "--class_ids", "1", "2", "--output_dir", str(tmp_path / "classes")])
    names = sorted(str(path.relative_to(tmp_path / "classes")) for path in (tmp_path / "classes").rglob("*_0000?.png"))
    assert names == [f"{name}_{c:04d}_00000.png" for name in ("label_0/0", "label_0/1", "label_2/0") for c in (1, 2)]
    run_in_this_process([*common, "--unconditional", "--output_dir", str(tmp_path / "unconditional")])
    assert (tmp_path / "unconditional" / "label_2" / "0_00000.png").exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--num_prefix_rows", "2"], "--num_prefix_rows and --completions_per_image need --completion_images"),
        (["--completions_per_image", "3"], "need --completion_images"),
        (["--completion_images", "d", "--num_prefix_rows", "-1"], "--num_prefix_rows must be at least 0, got -1"),
        (["--completion_images", "d", "--completions_per_image", "0"], "--completions_per_image must be positive"),
        (["--completion_images", "d", "--unconditional", "--num_images", "3"], "--num_images counts whole images"),
        (
            ["--completion_images", "d", "--acceptance_rate", "0.5", "--classifier", "c"],
            "does not go with --completion_images",
        ),
    ],
)
def test_invalid_completion_flags_are_usage_errors(arguments, message, capsys):
    with pytest.raises(SystemExit):
        load_script(SCRIPT).parse_args(["--pipeline", "p", "--output_dir", "o", *arguments])
    assert message in capsys.readouterr().err


def test_rows_beyond_the_grid_are_refused_before_anything_is_written(pipeline_dir, completion_folder, tmp_path):
    arguments = ["--pipeline", str(pipeline_dir), "--completion_images", str(completion_folder)]
    with pytest.raises(ValueError, match=r"--num_prefix_rows must lie in \[0, 4\]"):
        run_in_this_process([*arguments, "--num_prefix_rows", "5", "--output_dir", str(tmp_path / "out")])
    assert not (tmp_path / "out" / "sample_settings.json").exists()


def test_a_full_disk_names_the_sample_and_leaves_no_partial_file(small_tmpfs):
    script = load_script(SCRIPT)
    fill_disk(small_tmpfs)
    path = small_tmpfs / "class_0" / "image_0.png"
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)  # incompressible
    with pytest.raises(
        OutputWriteError, match=rf"Writing a sample to {path} failed .*; \d+ bytes .*Removed the partial"
    ):
        script.save_png(noise, path, process_index=0)
    assert [file.name for file in path.parent.iterdir()] == []


def test_speculative_decoding_is_recorded_and_samples_what_the_pipeline_does(pipeline_dir, tmp_path):
    arguments = ["--pipeline", str(pipeline_dir), "--num_images_per_class", "2", "--class_ids", "1", "--no_npz"]
    arguments += ["--decoding", "speculative_jacobi", "--jacobi_window", "3", "--output_dir", str(tmp_path / "out")]
    run_in_this_process(arguments)
    settings = json.loads((tmp_path / "out" / "sample_settings.json").read_text())
    recorded = (settings["decoding"], settings["jacobi_window"], settings["jacobi_branches"])
    assert recorded == ("speculative_jacobi", 3, 0)
    pipeline = VimPipeline.from_pretrained(pipeline_dir)
    generator = [torch.Generator().manual_seed(image_seed(0, 1, index)) for index in range(2)]
    expected = pipeline(
        class_labels=[1, 1], generator=generator, decoding="speculative_jacobi", jacobi_window=3, output_type="np"
    ).images
    written = pixels(tmp_path / "out")
    assert all(np.array_equal(written[f"0001_{index:05d}.png"], (expected[index] * 255).round()) for index in range(2))
    # Recorded settings name the decoding: a rerun with the other one is refused.
    with pytest.raises(ValueError, match="records other sampling settings"):
        run_in_this_process([*arguments[:-6], "--output_dir", str(tmp_path / "out")])
    with pytest.raises(ValueError, match="records other sampling settings"):  # and its branches
        run_in_this_process([*arguments, "--jacobi_branches", "2"])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--jacobi_window", "3"], "--jacobi_window sizes the window of --decoding speculative_jacobi"),
        (["--jacobi_branches", "3"], "--jacobi_branches is an option of --decoding speculative_jacobi"),
        (
            ["--decoding", "speculative_jacobi", "--jacobi_window", "2", "--jacobi_branches", "1"],
            "--jacobi_branches needs a --jacobi_window of 3 or more",
        ),
        (["--decoding", "jacobi"], "invalid choice: 'jacobi'"),
    ],
)
def test_invalid_decoding_flags_are_usage_errors(arguments, message, capsys):
    with pytest.raises(SystemExit):
        load_script(SCRIPT).parse_args(["--pipeline", "p", "--output_dir", "o", *arguments])
    assert message in capsys.readouterr().err


def test_window_below_one_is_refused():
    with pytest.raises(ValueError, match="--jacobi_window must be at least 1"):
        load_script(SCRIPT).parse_args(
            ["--pipeline", "p", "--output_dir", "o", "--decoding", "speculative_jacobi", "--jacobi_window", "0"]
        )
