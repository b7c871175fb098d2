"""Tests of examples/linear_probe.py on a generated image folder, offline, on CPU."""

import json

import pytest
import torch
from PIL import Image

from tests.testing_utils import tiny_pipeline, tiny_transformer
from vit_vqgan_hf import VitVqganModel
from vit_vqgan_hf.evaluation.results import PROTOCOL_FIELDS

from .conftest import VIM_CLASSES, load_example


def save_pipeline(vim_data, path, num_hidden_layers=3):
    """A class-conditional VimPipeline of the session's tokenizer and a random 3-block VIM."""
    transformer = tiny_transformer(
        codebook_size=24,
        token_grid_size=4,
        num_classes=3,
        id2label=dict(enumerate(VIM_CLASSES)),
        hidden_size=32,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=2,
        intermediate_size=37,
    )
    tiny_pipeline(VitVqganModel.from_pretrained(vim_data.tokenizer), transformer).save_pretrained(path)
    return path


def probe_args(vim_data, output_dir):
    return ["--train_data_dir", vim_data.image_folder, "--cache_dir", vim_data.cache_dir, "--output_dir", output_dir]


def test_block_sweep_writes_results_and_plot(vim_data, tmp_path):
    # In-process (`main(parse_args(...))`): the command line is the same, without a second interpreter start.
    linear_probe = load_example("linear_probe.py")
    pipeline = save_pipeline(vim_data, tmp_path / "pipeline")
    output_dir = tmp_path / "probe"
    arguments = ["--pipeline", pipeline, *probe_args(vim_data, output_dir), "--block", "all", "--device", "cpu"]
    arguments += ["--weight_decay", "1e-3", "1e-1"]
    linear_probe.main(linear_probe.parse_args([str(argument) for argument in arguments]))

    results = json.loads((output_dir / "linear_probe.json").read_text())
    per_block = results["details"]["per_block_top1_accuracy"]
    assert sorted(per_block) == ["1", "2", "3"]
    assert all(0.0 <= accuracy <= 1.0 for accuracy in per_block.values())
    best = results["details"]["reported_block"]
    assert results["metrics"]["top1_accuracy"] == max(per_block.values()) == per_block[str(best)]
    assert all(field in results["protocol"] for field in PROTOCOL_FIELDS)
    classifier = results["protocol"]["settings"]["classifier"]
    assert "prefix = null token" in classifier["features"] and "prefix position excluded" in classifier["pooling"]
    assert set(classifier["weight_decay_per_block"].values()) <= {1e-3, 1e-1}
    assert results["protocol"]["seeds"]["seed"] == 0
    # 13 files without a validation split: a stratified 20% is held out (one image per class).
    assert results["protocol"]["num_samples"] == 3
    assert Image.open(output_dir / "linear_probe.png").size[0] > 0


def test_random_init_and_raw_pixel_baselines(vim_data, tmp_path):
    linear_probe = load_example("linear_probe.py")
    pipeline = save_pipeline(vim_data, tmp_path / "pipeline", num_hidden_layers=2)
    random_dir, pixels_dir = tmp_path / "random", tmp_path / "pixels"
    arguments = [str(argument) for argument in probe_args(vim_data, random_dir)]
    random_results = linear_probe.main(
        linear_probe.parse_args([*arguments, "--pipeline", str(pipeline), "--random_init", "--block", "2"])
    )
    assert random_results["model"]["random_init"] is True
    assert list(random_results["details"]["per_block_top1_accuracy"]) == ["2"]

    arguments = [str(argument) for argument in probe_args(vim_data, pixels_dir)]
    pixel_results = linear_probe.main(
        linear_probe.parse_args([*arguments, "--tokenizer", str(vim_data.tokenizer), "--raw_pixels"])
    )
    assert pixel_results["model"] == {"features": "raw_pixels", "raw_pixels_size": 8}
    assert list(pixel_results["details"]["per_block_top1_accuracy"]) == ["0"]
    assert (pixels_dir / "linear_probe.json").is_file() and (pixels_dir / "linear_probe.png").is_file()


@pytest.mark.parametrize(
    ("arguments", "flag"),
    [
        (["--weight_decay", "-1"], "--weight_decay"),
        (["--weight_decay", "1e-3", "-0.01"], "--weight_decay"),
        (["--selection_fraction", "1.5"], "--selection_fraction"),
        (["--selection_fraction", "0"], "--selection_fraction"),
        (["--selection_fraction", "1"], "--selection_fraction"),
        (["--validation_fraction", "0"], "--validation_fraction"),
        (["--validation_fraction", "1"], "--validation_fraction"),
        (["--block", "0"], "--block"),
        (["--raw_pixels_size", "0"], "--raw_pixels_size"),
        (["--max_iter", "0"], "--max_iter"),
        (["--epochs", "0"], "--epochs"),
        (["--learning_rate", "0"], "--learning_rate"),
        (["--probe_batch_size", "0"], "--probe_batch_size"),
        (["--batch_size", "0"], "--batch_size"),
        (["--resolution", "0"], "--resolution"),
        (["--max_train_samples", "0"], "--max_train_samples"),
        (["--max_eval_samples", "-1"], "--max_eval_samples"),
        (["--seed", "-1"], "--seed"),
        (["--device", "gpu"], "--device 'gpu' is not a torch device"),
    ],
)
def test_invalid_values_are_refused_before_loading(arguments, flag):
    linear_probe = load_example("linear_probe.py")
    with pytest.raises(ValueError, match=flag):
        linear_probe.parse_args(["--pipeline", "p", "--train_data_dir", "x", "--output_dir", "o", *arguments])


def test_unavailable_cuda_is_refused_before_loading(monkeypatch):
    linear_probe = load_example("linear_probe.py")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="--device 'cuda': CUDA is not available on this machine; pass --device cpu"):
        linear_probe.parse_args(["--pipeline", "p", "--train_data_dir", "x", "--output_dir", "o", "--device", "cuda"])


@pytest.mark.parametrize("output_dir", ["file", "file/probe"])
def test_output_dir_that_cannot_be_a_folder_fails_before_loading(output_dir, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    linear_probe = load_example("linear_probe.py")
    # Neither the pipeline nor the images exist: the error must come from --output_dir, before they are loaded.
    arguments = ["--pipeline", str(tmp_path / "missing"), "--train_data_dir", str(tmp_path / "missing_images")]
    args = linear_probe.parse_args([*arguments, "--output_dir", str(tmp_path / output_dir), "--device", "cpu"])
    with pytest.raises(ValueError, match="--output_dir .* is a file"):
        linear_probe.main(args)
