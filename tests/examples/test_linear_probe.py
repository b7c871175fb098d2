"""Tests of examples/linear_probe.py on a generated image folder, offline, on CPU."""

import json

import torch
from PIL import Image

from vit_vqgan_hf import VimConfig, VimForCausalLM, VimPipeline, VitVqganModel
from vit_vqgan_hf.evaluation import PROTOCOL_FIELDS

from .conftest import VIM_CLASSES, load_example


def save_pipeline(vim_data, path, num_hidden_layers=3):
    """A class-conditional VimPipeline of the session's tokenizer and a random 3-block VIM."""
    tokenizer = VitVqganModel.from_pretrained(vim_data.tokenizer)
    torch.manual_seed(0)
    config = VimConfig.from_preset(
        "tiny",
        codebook_size=24,
        token_grid_size=4,
        num_classes=3,
        id2label=dict(enumerate(VIM_CLASSES)),
        hidden_size=32,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=2,
        intermediate_size=37,
    )
    VimPipeline(vqgan=tokenizer, transformer=VimForCausalLM(config)).save_pretrained(path)
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
