"""examples/evaluate_tokenizer.py and examples/evaluate_generation.py: one process in this process, two processes
through `accelerate launch` (gloo on CPU), and the same numbers from both."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate.state import AcceleratorState
from safetensors.torch import save_file

from tests.testing_utils import load_script, tiny_tokenizer, write_image_folder
from vit_vqgan_hf.evaluation import GenerationEvaluator, ReferenceStatistics, results_to_model_index
from vit_vqgan_hf.evaluation.results import PROTOCOL_FIELDS
from vit_vqgan_hf.training import LpipsVgg16

from .helpers import TinyFeatureNetwork, save_tiny_classifier


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load_example(name):
    return load_script(EXAMPLES / f"{name}.py")


@pytest.fixture
def fresh_accelerate_state():
    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def run_in_this_process(name, argv, **kwargs):
    script = load_example(name)
    script.main(script.parse_args(argv), **kwargs)


def launch_two_processes(name, argv):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        str(Path(sys.executable).parent / "accelerate"),
        "launch",
        "--multi_gpu",
        "--num_processes=2",
        "--num_machines=1",
        "--num_cpu_threads_per_process=1",
        "--mixed_precision=no",
        "--dynamo_backend=no",
        f"--main_process_port={port}",
        str(EXAMPLES / f"{name}.py"),
        *argv,
    ]
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "HF_HUB_OFFLINE": "1"}
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-5000:]


def assert_same_metrics(first, second):
    assert first.keys() == second.keys()
    for name, value in first.items():
        assert second[name] == pytest.approx(value, rel=1e-5, abs=1e-7), name


def test_tokenizer_evaluation_on_one_and_two_processes(tmp_path, pytorch_fid_weights_file, fresh_accelerate_state):
    tiny_tokenizer().save_pretrained(tmp_path / "tokenizer")
    # 5 images of two sizes (resized to the tokenizer's 32x32); batches of 2 leave a last batch of 1, which accelerate
    # pads on the second process; usage groups of 2 images cross batch boundaries on two processes.
    write_image_folder(tmp_path / "data" / "validation", {"cat": [(36, 40)] * 3, "dog": [(32, 32)] * 2})
    (tmp_path / "data" / "train").mkdir()
    lpips = LpipsVgg16(channels=(4, 8, 8, 12, 12))
    save_file({key: value.contiguous() for key, value in lpips.state_dict().items()}, tmp_path / "lpips.safetensors")
    argv = [
        f"--tokenizer={tmp_path / 'tokenizer'}",
        f"--train_data_dir={tmp_path / 'data'}",
        "--batch_size=2",
        "--usage_group_size=2",
        f"--lpips_model={tmp_path / 'lpips.safetensors'}",
    ]
    run_in_this_process(
        "evaluate_tokenizer",
        [*argv, f"--inception_model={pytorch_fid_weights_file}", f"--output_dir={tmp_path / 'one'}"],
    )
    # Two processes without the Inception (its features are gathered like every other per-image value; the
    # generation test below runs it on two processes): rFID and IS are skipped with a note.
    launch_two_processes("evaluate_tokenizer", [*argv, f"--output_dir={tmp_path / 'two'}"])

    one = json.loads((tmp_path / "one" / "results.json").read_text())
    two = json.loads((tmp_path / "two" / "results.json").read_text())
    assert (tmp_path / "one" / "codebook_usage.png").is_file() and (tmp_path / "two" / "codebook_usage.png").is_file()
    expected_metrics = {"psnr", "ssim", "lpips", "l1", "l2", "logit_laplace", "rfid", "inception_score"}
    assert expected_metrics <= one["metrics"].keys() and not one["skipped"]
    assert two["skipped"] == {
        name: "no feature network given (`feature_network`)" for name in ("rfid", "inception_score")
    }
    without_inception = {name: value for name, value in one["metrics"].items() if name not in two["skipped"]}
    without_inception.pop("inception_score_std")
    assert_same_metrics(without_inception, two["metrics"])
    assert one["details"]["codebook_usage_per_group"] == pytest.approx(two["details"]["codebook_usage_per_group"])
    protocol, other = one["protocol"], two["protocol"]
    assert set(PROTOCOL_FIELDS) <= protocol.keys()
    assert protocol["num_samples"] == other["num_samples"] == 5
    assert (
        protocol["class_balance"]["images_per_class"]
        == {"cat": 3, "dog": 2}
        == other["class_balance"]["images_per_class"]
    )
    assert protocol["codebook_usage"] == other["codebook_usage"]
    assert (
        protocol["codebook_usage"]["num_usage_groups"] == 2
        and protocol["codebook_usage"]["images_in_partial_group"] == 1
    )
    assert protocol["feature_network"]["weights_files"][0]["name"] == pytorch_fid_weights_file.name
    assert other["feature_network"] is None
    assert protocol["image_size"] == 32 and "center-cropped" in protocol["resize"]
    assert protocol["data"]["source"]["split_folder_used"]
    assert (protocol["distributed"]["num_processes"], other["distributed"]["num_processes"]) == (1, 2)
    entry = results_to_model_index(one, "tiny-tokenizer", dataset="toy")[0]["results"][0]
    assert {"fid", "psnr", "codebook_usage"} <= {metric["type"] for metric in entry["metrics"]}


def test_tokenizer_evaluation_records_the_squash_resize(tmp_path, fresh_accelerate_state):
    tiny_tokenizer().save_pretrained(tmp_path / "tokenizer")
    write_image_folder(tmp_path / "data", {"cat": [(36, 40)] * 2})
    argv = [f"--tokenizer={tmp_path / 'tokenizer'}", f"--train_data_dir={tmp_path / 'data'}", "--usage_group_size=2"]
    for resize in ("center_crop", "squash"):
        run_in_this_process("evaluate_tokenizer", [*argv, f"--resize={resize}", f"--output_dir={tmp_path / resize}"])
    center_crop, squash = (
        json.loads((tmp_path / name / "results.json").read_text()) for name in ("center_crop", "squash")
    )
    assert "PIL bilinear" in squash["protocol"]["resize"] and "center-cropped" in center_crop["protocol"]["resize"]
    assert squash["metrics"]["psnr"] != center_crop["metrics"]["psnr"]


def test_generation_evaluation_from_a_pipeline_on_one_and_two_processes(
    tmp_path, pipeline_dir, pytorch_fid_weights_file, fresh_accelerate_state
):
    write_image_folder(tmp_path / "reference", {"0": [(16, 16)] * 2, "1": [(16, 16)] * 2})
    # 3 classes x 2 images in batches of 2: on two processes, the second round has a batch on the first process only.
    argv = [
        f"--pipeline={pipeline_dir}",
        "--images_per_class=2",
        "--batch_size=2",
        "--seed=7",
        f"--inception_model={pytorch_fid_weights_file}",
        "--kid_subsets=3",
    ]
    stats = tmp_path / "reference_stats.npz"
    run_in_this_process(
        "evaluate_generation",
        [
            *argv,
            f"--reference={tmp_path / 'reference'}",
            f"--save_reference_stats={stats}",
            f"--output_dir={tmp_path / 'one'}",
        ],
    )
    launch_two_processes(
        "evaluate_generation", [*argv, f"--reference_stats={stats}", f"--output_dir={tmp_path / 'two'}"]
    )

    one = json.loads((tmp_path / "one" / "results.json").read_text())
    two = json.loads((tmp_path / "two" / "results.json").read_text())
    assert {"fid", "inception_score", "kid", "precision", "recall"} <= one["metrics"].keys() and not one["skipped"]
    assert_same_metrics(one["metrics"], two["metrics"])
    protocol, other = one["protocol"], two["protocol"]
    # The reference as images and as the statistics file saved from them: one checksum of its mean and covariance.
    assert protocol["reference"]["statistics_sha256"] == other["reference"]["statistics_sha256"]
    assert one["task"] == "class-conditional-image-generation" and set(PROTOCOL_FIELDS) <= protocol.keys()
    expected_balance = {"0": 2, "1": 2, "2": 2}
    assert (
        protocol["class_balance"]["images_per_class"] == expected_balance == other["class_balance"]["images_per_class"]
    )
    assert protocol["sampling"]["temperature"] == 1.0 and protocol["sampling"]["classes"] == "all"
    assert protocol["image_size"] == 16
    assert "SeedSequence([7, class_id + 1, index])" in protocol["seeds"]["sampling"]
    saved = protocol["reference"]["saved_statistics"]
    assert protocol["reference"]["kind"] == "images" and protocol["reference"]["num_images"] == 4
    assert other["reference"]["kind"] == "statistics" and other["reference"]["file_sha256"] == saved["file_sha256"]
    assert other["reference"]["reference"]["class_balance"]["images_per_class"] == {"0": 2, "1": 2}


def test_generation_script_with_a_small_feature_network(tmp_path, fresh_accelerate_state):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "samples.npz", arr_0=rng.integers(0, 256, (6, 12, 12, 3), dtype=np.uint8))
    (tmp_path / "sample_settings.json").write_text(json.dumps({"seed": 3, "temperature": 1.0}))
    write_image_folder(tmp_path / "reference", {"a": [(12, 12)] * 5})
    stats = tmp_path / "stats.npz"
    argv = ["--inception_model=unused", f"--samples={tmp_path / 'samples.npz'}", "--batch_size=4"]
    run_in_this_process(
        "evaluate_generation",
        [
            *argv,
            f"--reference={tmp_path / 'reference'}",
            f"--save_reference_stats={stats}",
            "--reference_stats_without_features",
            f"--output_dir={tmp_path / 'one'}",
        ],
        feature_network=TinyFeatureNetwork(),
    )
    results = json.loads((tmp_path / "one" / "results.json").read_text())
    assert results["task"] == "unconditional-image-generation" and results["protocol"]["num_samples"] == 6
    assert results["protocol"]["feature_network"]["name"] == "TinyFeatureNetwork"
    assert results["protocol"]["sampling"]["temperature"] == 1.0 and results["protocol"]["seeds"]["sampling"] == 3
    assert results["protocol"]["image_size"] == 12
    assert ReferenceStatistics.load(stats).features is None

    AcceleratorState._reset_state(reset_partial_state=True)
    run_in_this_process(
        "evaluate_generation",
        [*argv, f"--reference_stats={stats}", f"--output_dir={tmp_path / 'two'}"],
        feature_network=TinyFeatureNetwork(),
    )
    again = json.loads((tmp_path / "two" / "results.json").read_text())
    # Features against statistics of 5 images in 6 dimensions (a singular covariance): equal up to round-off.
    assert again["metrics"]["fid"] == pytest.approx(results["metrics"]["fid"], rel=1e-6)
    assert set(again["skipped"]) == {"kid", "precision_recall"}

    AcceleratorState._reset_state(reset_partial_state=True)
    with pytest.raises(ValueError, match="was computed with the feature network"):
        run_in_this_process(
            "evaluate_generation",
            [*argv, f"--reference_stats={stats}", f"--output_dir={tmp_path / 'three'}"],
            feature_network=TinyFeatureNetwork(seed=2),
        )


TOKENIZER_ARGV = ["--tokenizer=t", "--train_data_dir=x", "--output_dir=o"]
GENERATION_ARGV = ["--pipeline=p", "--reference=r", "--inception_model=i", "--output_dir=o"]


@pytest.mark.parametrize(
    ("name", "argv", "flag"),
    [
        ("evaluate_tokenizer", ["--batch_size=0"], "--batch_size"),
        ("evaluate_tokenizer", ["--usage_group_size=0"], "--usage_group_size"),
        ("evaluate_tokenizer", ["--inception_score_splits=0"], "--inception_score_splits"),
        ("evaluate_tokenizer", ["--resolution=0"], "--resolution"),
        ("evaluate_tokenizer", ["--max_eval_samples=0"], "--max_eval_samples"),
        ("evaluate_tokenizer", ["--dataloader_num_workers=-1"], "--dataloader_num_workers"),
        ("evaluate_generation", ["--images_per_class=0"], "--images_per_class"),
        ("evaluate_generation", ["--batch_size=0"], "--batch_size"),
        ("evaluate_generation", ["--num_samples=0"], "--num_samples"),
        ("evaluate_generation", ["--max_reference_features=0"], "--max_reference_features"),
        ("evaluate_generation", ["--kid_subsets=0"], "--kid_subsets"),
        ("evaluate_generation", ["--kid_subset_size=1"], "--kid_subset_size"),
        ("evaluate_generation", ["--precision_recall_k=0"], "--precision_recall_k"),
        ("evaluate_generation", ["--inception_score_splits=0"], "--inception_score_splits"),
        ("evaluate_generation", ["--resolution=0"], "--resolution"),
        ("evaluate_generation", ["--top_k=0"], "--top_k"),
        ("evaluate_generation", ["--temperature=0"], "--temperature"),
        ("evaluate_generation", ["--guidance_scale=0.5"], "--guidance_scale"),
        ("evaluate_generation", ["--unconditional", "--guidance_scale=2"], "--guidance_scale"),
        ("evaluate_generation", ["--class_ids", "0", "-1"], "--class_ids"),
        ("evaluate_generation", ["--dataloader_num_workers=-1"], "--dataloader_num_workers"),
        ("evaluate_generation", ["--acceptance_rate=0"], "--acceptance_rate must lie in"),
        ("evaluate_generation", ["--acceptance_rate=1.5"], "--acceptance_rate must lie in"),
        ("evaluate_generation", ["--acceptance_rate=0.5"], "pass --classifier"),
        ("evaluate_generation", ["--classifier=c"], "pass --acceptance_rate"),
        ("evaluate_generation", ["--unconditional", "--acceptance_rate=0.5", "--classifier=c"], "--unconditional"),
    ],
)
def test_invalid_values_are_refused_before_loading(name, argv, flag):
    base = TOKENIZER_ARGV if name == "evaluate_tokenizer" else GENERATION_ARGV
    with pytest.raises(ValueError, match=flag):
        load_example(name).parse_args([*base, *argv])


def test_rejection_sampling_needs_a_pipeline():
    argv = ["--samples=s.npz", "--reference=r", "--inception_model=i", "--output_dir=o", "--acceptance_rate=0.5"]
    with pytest.raises(ValueError, match="--acceptance_rate samples from --pipeline"):
        load_example("evaluate_generation").parse_args([*argv, "--classifier=c"])


def test_reference_stats_are_saved_from_reference_images_only():
    argv = ["--pipeline=p", "--reference_stats=s.npz", "--save_reference_stats=t.npz", "--inception_model=i"]
    with pytest.raises(ValueError, match="--save_reference_stats saves the statistics of --reference images"):
        load_example("evaluate_generation").parse_args([*argv, "--output_dir=o"])


@pytest.mark.parametrize("name", ["evaluate_tokenizer", "evaluate_generation"])
@pytest.mark.parametrize("output_dir", ["file", "file/results"])
def test_output_dir_that_cannot_be_a_folder_fails_before_loading(name, output_dir, tmp_path, fresh_accelerate_state):
    (tmp_path / "file").write_text("not a folder")
    # Nothing to evaluate exists: the error must come from --output_dir, before any network or image is loaded.
    missing = str(tmp_path / "missing")
    if name == "evaluate_tokenizer":
        argv = [f"--tokenizer={missing}", f"--train_data_dir={missing}"]
    else:
        argv = [f"--pipeline={missing}", f"--reference={missing}", f"--inception_model={missing}"]
    with pytest.raises(ValueError, match="--output_dir .* is a file"):
        run_in_this_process(name, [*argv, f"--output_dir={tmp_path / output_dir}"])


@pytest.mark.parametrize(
    ("stats", "message"),
    [("file/stats.npz", "--save_reference_stats \\(its folder\\) .* is a file"), ("folder.npz", "is a folder")],
)
def test_save_reference_stats_that_cannot_be_written_fails_before_loading(
    stats, message, tmp_path, fresh_accelerate_state
):
    (tmp_path / "file").write_text("not a folder")
    (tmp_path / "folder.npz").mkdir()
    missing = str(tmp_path / "missing")
    argv = [f"--pipeline={missing}", f"--reference={missing}", f"--inception_model={missing}"]
    argv += [f"--save_reference_stats={tmp_path / stats}", f"--output_dir={tmp_path / 'out'}"]
    with pytest.raises(ValueError, match=message):
        run_in_this_process("evaluate_generation", argv)


def test_generation_evaluation_with_rejection_sampling(tmp_path, pipeline_dir, fresh_accelerate_state):
    classifier = save_tiny_classifier(tmp_path / "classifier", num_labels=3)
    write_image_folder(tmp_path / "reference", {"a": [(16, 16)] * 4})
    argv = [f"--pipeline={pipeline_dir}", "--images_per_class=2", "--acceptance_rate=0.5", "--seed=3"]
    argv += [f"--classifier={classifier}", f"--reference={tmp_path / 'reference'}", "--inception_model=unused"]
    argv += ["--metrics", "fid", "inception_score"]
    # 4 candidates per class: one class per call in batches of 4, three classes in one call in batches of 3.
    for batch_size in (4, 3):
        AcceleratorState._reset_state(reset_partial_state=True)
        run_in_this_process(
            "evaluate_generation",
            [*argv, f"--batch_size={batch_size}", f"--output_dir={tmp_path / str(batch_size)}"],
            feature_network=TinyFeatureNetwork(),
        )
    results = json.loads((tmp_path / "4" / "results.json").read_text())
    protocol = results["protocol"]
    assert protocol["class_balance"]["images_per_class"] == {"0": 2, "1": 2, "2": 2}
    assert protocol["sampling"]["acceptance_rate"] == 0.5
    rejection = protocol["sampling"]["rejection_sampling"]
    assert rejection["candidates_per_class"] == 4 and rejection["classifier"]["name_or_path"] == str(classifier)
    assert "candidate j of a class (4 per class) uses image (class_id, j)'s seed" in protocol["seeds"]["sampling"]
    # The calls' composition does not change the kept samples.
    other = json.loads((tmp_path / "3" / "results.json").read_text())
    assert_same_metrics(results["metrics"], other["metrics"])

    AcceleratorState._reset_state(reset_partial_state=True)
    four_labels = save_tiny_classifier(tmp_path / "four_labels", num_labels=4)
    with pytest.raises(ValueError, match="has 4 labels, but the VIM's transformer has 3 classes"):
        run_in_this_process(
            "evaluate_generation",
            [*argv, f"--classifier={four_labels}", f"--output_dir={tmp_path / 'mismatch'}"],
            feature_network=TinyFeatureNetwork(),
        )


class RecordingFeatureNetwork(TinyFeatureNetwork):
    """The tiny feature network, keeping every batch of uint8 images it is fed."""

    def __init__(self):
        super().__init__()
        self.batches = []

    def features_and_logits(self, images):
        self.batches.append(images.detach().cpu().clone())
        return super().features_and_logits(images)


@pytest.mark.parametrize("rejection", [False, True], ids=["plain", "rejection"])
def test_sample_py_and_in_process_sampling_evaluate_the_same_images(
    tmp_path, pipeline_dir, rejection, fresh_accelerate_state
):
    settings = [f"--pipeline={pipeline_dir}", "--num_images_per_class=2", "--class_ids", "0", "2"]
    settings += ["--seed=11", "--temperature=0.9"]
    if rejection:
        classifier = save_tiny_classifier(tmp_path / "classifier", num_labels=3)
        settings += ["--acceptance_rate=0.5", f"--classifier={classifier}"]
    samples = tmp_path / "samples"
    run_in_this_process("sample", [*settings, "--batch_size=3", f"--output_dir={samples}"])

    # Reference statistics of the same network, so that the evaluations feed it their samples only.
    stats = tmp_path / "reference_stats.npz"
    evaluator = GenerationEvaluator(RecordingFeatureNetwork())
    evaluator.update(torch.randint(0, 256, (5, 3, 16, 16), dtype=torch.uint8), real=True)
    evaluator.reference_statistics().save(stats)

    def evaluated_images(argv, name):
        AcceleratorState._reset_state(reset_partial_state=True)
        network = RecordingFeatureNetwork()
        argv += [f"--reference_stats={stats}", "--inception_model=unused", "--metrics", "fid"]
        run_in_this_process("evaluate_generation", [*argv, f"--output_dir={tmp_path / name}"], feature_network=network)
        return torch.cat(network.batches)

    from_folder = evaluated_images([f"--samples={samples}"], "folder")
    from_npz = evaluated_images([f"--samples={samples / 'samples_4x16x16x3.npz'}"], "npz")
    # Sampled in process, in other batches than sample.py's.
    in_process = evaluated_images([*settings, "--batch_size=2"], "pipeline")

    assert in_process.dtype == torch.uint8 and in_process.shape == (4, 3, 16, 16)
    assert in_process.numpy().tobytes() == from_folder.numpy().tobytes() == from_npz.numpy().tobytes()
    results = json.loads((tmp_path / "pipeline" / "results.json").read_text())
    assert results["protocol"]["class_balance"]["images_per_class"] == {"0": 2, "2": 2}
    recorded = json.loads((tmp_path / "folder" / "results.json").read_text())["protocol"]["sampling"]
    # The settings sample.py recorded next to its images are the ones the in-process evaluation records.
    assert {key: results["protocol"]["sampling"][key] for key in recorded if key != "source"} == {
        key: value for key, value in recorded.items() if key != "source"
    }
