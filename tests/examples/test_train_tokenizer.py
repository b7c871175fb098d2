"""End-to-end tests of examples/train_tokenizer.py, run as subprocesses on a generated image folder, offline, on CPU."""

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import PIL.Image
import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import load_file
from transformers import AutoImageProcessor

from tests.testing_utils import load_script
from vit_vqgan_hf import VitVqganConfig, VitVqganModel
from vit_vqgan_hf.evaluation import load_results
from vit_vqgan_hf.training import VitVqganDiscriminator
from vit_vqgan_hf.training.checkpointing import is_complete


SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "train_tokenizer.py"


def tiny_args(image_folder, output_dir, cache_dir, *extra):
    return [
        "--train_data_dir", str(image_folder),
        "--cache_dir", str(cache_dir),
        "--output_dir", str(output_dir),
        "--model_config", "tiny",
        "--discriminator_config", "tiny",
        "--perceptual_weight", "0",
        "--train_batch_size", "4",
        "--lr_warmup_steps", "1",
        "--discriminator_start_step", "1",
        "--r1_interval", "2",
        "--logging_steps", "1",
        "--report_to", "none",
        *extra,
    ]  # fmt: skip


def run_script(arguments, tmp_path, num_processes=1):
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf_home"),
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    if num_processes == 1:
        command = [sys.executable, str(SCRIPT), *arguments]
    else:
        env["ACCELERATE_USE_CPU"] = "true"
        launch = ["--multi_gpu", "--num_processes", str(num_processes), "--num_cpu_threads_per_process", "1"]
        launch += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
        # A free port instead of 29500, which other 2-process runs on the same machine may hold.
        launch += ["--main_process_port", "0"]
        command = [sys.executable, "-m", "accelerate.commands.launch", *launch, str(SCRIPT), *arguments]
    # These runs take well under a minute; a hung process fails the test after 5 minutes instead of blocking it.
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def assert_success(result):
    assert result.returncode == 0, f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-6000:]}"


def checkpoint_names(output_dir):
    return {path.name for path in (output_dir / "checkpoints").iterdir()}


def test_two_processes_train_save_and_load(image_folder, tmp_path):
    output_dir = tmp_path / "out"
    arguments = tiny_args(image_folder, output_dir, tmp_path / "cache", "--max_train_steps", "3")
    arguments += ["--report_to", "tensorboard", "--validation_steps", "2", "--random_crop", "--random_flip"]
    # Dead-code restarts after steps 1 and 2 (not 3, the last): a reduce and a gather across the two processes.
    arguments += ["--codebook_restart_steps", "1", "--gradient_checkpointing"]
    assert_success(run_script(arguments, tmp_path, num_processes=2))

    tokenizer = VitVqganModel.from_pretrained(output_dir).eval()
    # The stock image processor saved alongside prepares images for it.
    image_processor = AutoImageProcessor.from_pretrained(output_dir)
    images = [PIL.Image.new("RGB", (48, 40), (250, 20, 90))] * 2
    pixel_values = image_processor(images, return_tensors="pt").pixel_values
    with torch.no_grad():
        assert tokenizer.decode_tokens(tokenizer.encode(pixel_values).image_tokens).shape == (2, 3, 32, 32)
    discriminator = VitVqganDiscriminator.from_pretrained(output_dir / "discriminator")
    assert discriminator(pixel_values).logits.shape == (2,)

    # The final validation metrics: in the results file, and in the card's model-index and evaluation table.
    validation = load_results(output_dir / "validation_results.json")
    # 16 readable images: the corrupt one is left out of the metrics (its replacement would count twice), and counted.
    assert validation["task"] == "image-reconstruction" and validation["protocol"]["num_samples"] == 16
    assert validation["protocol"]["data"]["unreadable_images_skipped"] == 1
    card = ModelCard.load(output_dir / "README.md")
    assert card.data.library_name == "vit-vqgan-hf"
    card_metrics = {result.metric_type: result.metric_value for result in card.data.eval_results}
    assert card_metrics["psnr"] == pytest.approx(validation["metrics"]["psnr"])
    assert card_metrics["codebook_usage"] == pytest.approx(validation["metrics"]["codebook_usage"])
    assert "PSNR" in card.text and "Codebook usage" in card.text and "(a local path)" in card.text
    assert str(tmp_path) not in card.content
    results = json.loads((output_dir / "train_results.json").read_text())
    assert results["validation/psnr"] == pytest.approx(validation["metrics"]["psnr"])
    assert results["global_step"] == 3
    # 3 steps x 4 images x 2 processes cover the 17 files, so the corrupt one was met, skipped and counted (twice
    # at most: the distributed sampler pads the epoch with repeated indices).
    assert 1 <= results["skipped_images"] <= 2
    assert results["unreadable_images"] == 1 and results["num_images"] == 16
    assert 0 < results["validation/codebook_usage"] <= 1 and results["validation/psnr"] > 0
    assert list((output_dir / "logs").rglob("events.out.tfevents.*"))
    assert (output_dir / "validation_reconstructions.png").is_file()
    assert not (output_dir / "checkpoints").exists()


def test_resume_matches_uninterrupted_run_and_checkpoint_limit(image_folder, tmp_path, run_in_process, caplog):
    # Gradient accumulation over 17 images in batches of 4 makes steps of 2, 2, 1 micro-batches per epoch, so the
    # checkpoint of step 2 is mid-epoch and the rest of the run crosses an epoch boundary; the discriminator, R1,
    # the EMA and dead-code restarts (after steps 1, 2 and 3: one of them in the resumed part) are all active.
    extra = ["--max_train_steps", "4", "--gradient_accumulation_steps", "2", "--use_ema", "--random_crop"]
    extra += ["--random_flip", "--checkpointing_steps", "1", "--checkpoints_total_limit", "3"]
    extra += ["--codebook_restart_steps", "1"]
    full_dir, resumed_dir = tmp_path / "full", tmp_path / "resumed"
    run_in_process("train_tokenizer.py", tiny_args(image_folder, full_dir, tmp_path / "cache", *extra))
    assert checkpoint_names(full_dir) == {"checkpoint_2", "checkpoint_3", "checkpoint_4"}

    # An interrupted run leaves its last checkpoint behind; resuming from it must end where the full run ended. This
    # one was killed while saving step 3: `latest` skips that partial folder, and the resumed run saves it anew.
    shutil.copytree(full_dir / "checkpoints" / "checkpoint_2", resumed_dir / "checkpoints" / "checkpoint_2")
    partial = resumed_dir / "checkpoints" / "checkpoint_3"
    partial.mkdir()
    shutil.copy(full_dir / "checkpoints" / "checkpoint_3" / "model.safetensors", partial)
    arguments = tiny_args(image_folder, resumed_dir, tmp_path / "cache", *extra, "--resume_from_checkpoint", "latest")
    caplog.set_level(logging.INFO)
    run_in_process("train_tokenizer.py", arguments)
    assert "Skipping" in caplog.text and "checkpoint_3: its save did not finish" in caplog.text
    assert "Resumed from" in caplog.text and "checkpoint_2 at step 2" in caplog.text
    assert checkpoint_names(resumed_dir) == {"checkpoint_2", "checkpoint_3", "checkpoint_4"}
    assert all(is_complete(path) for path in (resumed_dir / "checkpoints").iterdir())

    for name in ("model.safetensors", "discriminator/model.safetensors"):
        full, resumed = load_file(full_dir / name), load_file(resumed_dir / name)
        assert full.keys() == resumed.keys()
        for key in full:
            torch.testing.assert_close(resumed[key], full[key], rtol=0, atol=0, msg=f"{name}: {key}")
    full_results = json.loads((full_dir / "train_results.json").read_text())
    assert json.loads((resumed_dir / "train_results.json").read_text()) == full_results


def test_nonfinite_steps_stop_training_with_a_checkpoint(image_folder, tmp_path, run_in_process):
    # A learning rate of 1e30 blows the weights up after the first step; every later loss is NaN.
    output_dir = tmp_path / "out"
    extra = ["--max_train_steps", "10", "--learning_rate", "1e30", "--lr_end", "0", "--lr_warmup_steps", "0"]
    extra += ["--discriminator_start_step", "100", "--max_nonfinite_steps", "2"]
    with pytest.raises(RuntimeError, match="had a non-finite loss or gradient, so training stopped") as error:
        run_in_process("train_tokenizer.py", tiny_args(image_folder, output_dir, tmp_path / "cache", *extra))
    # The library names its argument (the script's command line names the flag: `cli.in_flag_terms`).
    assert "(`max_nonfinite_steps=2`, checked at logging steps)" in str(error.value)
    assert checkpoint_names(output_dir) == {"checkpoint_3"}
    assert not (output_dir / "model.safetensors").exists()

    # Resuming with another model (here a larger image size) names the mismatch instead of listing every tensor.
    arguments = tiny_args(image_folder, output_dir, tmp_path / "cache", *extra, "--resolution", "64")
    with pytest.raises(
        ValueError, match="checkpoint_3 was saved from a model of another configuration .size mismatch"
    ):
        run_in_process("train_tokenizer.py", [*arguments, "--resume_from_checkpoint", "latest"])
    # A new run over these checkpoints is refused before any compute: `latest` would later resume the old run.
    arguments = tiny_args(image_folder, output_dir, tmp_path / "cache", *extra)
    with pytest.raises(
        ValueError, match=r"holds checkpoints of an earlier run \(checkpoint_3 is the newest\)"
    ) as error:
        # The library names its arguments; under `in_flag_terms`, as the script's entry point runs `main`, the flags.
        run_in_process("train_tokenizer.py", arguments, flag_terms=True)
    assert "continue it with --resume_from_checkpoint latest, or choose a new --output_dir." in str(error.value)


@pytest.fixture(scope="module")
def train_tokenizer_module():
    return load_script(SCRIPT)


def test_the_perceptual_loss_defaults_to_the_named_lpips_vgg16(
    train_tokenizer_module, image_folder, tmp_path, run_in_process
):
    args = train_tokenizer_module.parse_args(["--train_data_dir", "images"])
    assert args.perceptual_weight == 0.1 and args.perceptual_model == "lpips-vgg16"
    assert args.dataset_name is None and args.discriminator_learning_rate == args.learning_rate
    # Offline, without the VGG16 trunk in the cache, the run stops before reading any data and says what to pass.
    arguments = [
        arg for arg in tiny_args(image_folder, tmp_path / "out", tmp_path / "cache") if arg != "--perceptual_weight"
    ]
    arguments.remove("0")
    with pytest.raises(OSError, match="`lpips-vgg16` takes the"):
        run_in_process("train_tokenizer.py", arguments)
    assert not (tmp_path / "cache").exists()


def test_the_paper_length_resolves_to_the_paper_schedule(train_tokenizer_module):
    def resolve(*arguments):
        args = train_tokenizer_module.parse_args(["--train_data_dir", "images", *arguments])
        return train_tokenizer_module.resolve_run(args, 1, None, 256, "held-out images")

    run = resolve("--max_train_steps", "500000")
    assert run.arguments["lr_warmup_steps"] is None and run.arguments["discriminator_start_step"] is None
    assert (run.schedule.lr_warmup_steps, run.discriminator_start_step) == (50_000, 50_000)
    # A short run gets the same shape of schedule; explicit step flags override the fractions.
    run = resolve("--max_train_steps", "1000", "--discriminator_start_step", "7")
    assert (run.schedule.lr_warmup_steps, run.discriminator_start_step) == (100, 7)
    assert run.schedule_steps() == {"max_train_steps": 1000, "lr_warmup_steps": 100, "discriminator_start_step": 7}
    # Without the adversarial term there is no discriminator to start.
    assert resolve("--max_train_steps", "1000", "--adversarial_weight", "0").discriminator_start_step is None


def test_a_run_resolves_its_schedule_without_writing_to_its_arguments(image_folder, tmp_path, run_in_process):
    # The run's description holds what was resolved (steps from epochs and ratios, the image size, the loss terms);
    # the parsed arguments stay as they were, and the card shows the resolved values.
    output_dir = tmp_path / "out"
    arguments = tiny_args(image_folder, output_dir, tmp_path / "cache", "--num_train_epochs", "1")
    arguments += ["--train_batch_size", "16", "--discriminator_start_step", "2", "--lr_warmup_steps", "0"]
    args, parsed = run_in_process("train_tokenizer.py", arguments)
    assert vars(args) == parsed and args.max_train_steps is None and args.resolution is None
    results = json.loads((output_dir / "train_results.json").read_text())
    # 17 files in batches of 16: two steps of one epoch.
    assert results["schedule"] == {"max_train_steps": 2, "lr_warmup_steps": 0, "discriminator_start_step": 2}
    card = ModelCard.load(output_dir / "README.md").text
    assert "| `max_train_steps` | 2 |" in card and "| `resolution` | 32 |" in card
    assert "| `validation_source` | the first training images |" in card


def test_a_loss_of_weight_zero_builds_and_saves_nothing_for_it(image_folder, tmp_path, run_in_process):
    output_dir = tmp_path / "out"
    extra = [
        "--adversarial_weight",
        "0",
        "--logit_laplace_weight",
        "0",
        "--max_train_steps",
        "2",
        "--checkpointing_steps",
        "2",
    ]
    run_in_process("train_tokenizer.py", tiny_args(image_folder, output_dir, tmp_path / "cache", *extra))
    assert not (output_dir / "discriminator").exists()
    # The checkpoint holds one model and one optimizer: no discriminator was built or trained.
    checkpoint_files = {path.name for path in (output_dir / "checkpoints" / "checkpoint_2").iterdir()}
    assert "model.safetensors" in checkpoint_files and "model_1.safetensors" not in checkpoint_files
    assert "optimizer_1.bin" not in checkpoint_files
    # Nothing trains the decoder's scales without the logit-Laplace loss: it predicts pixels only.
    assert not VitVqganConfig.from_pretrained(output_dir).use_logit_laplace
    results = json.loads((output_dir / "train_results.json").read_text())
    assert results["loss_terms"] == {
        "vq": 1.0,
        "l2": 1.0,
        "logit_laplace": None,
        "perceptual": None,
        "adversarial": None,
    }
    assert results["schedule"] == {"max_train_steps": 2, "lr_warmup_steps": 1, "discriminator_start_step": None}
    card = ModelCard.load(output_dir / "README.md").text
    assert "| `loss_terms` | vq 1.0, l2 1.0, logit_laplace off, perceptual off, adversarial off |" in card


@pytest.mark.slow  # 300 training steps (~35 s): evidence of the default schedule, run with `pytest -m slow`
def test_a_short_run_with_the_default_schedule_trains(tmp_path):
    # 300 steps on real images (the demo's digits, 16x16) with the default, run-length-relative warm-up: the paper's
    # 50k-step warm-up as an absolute default left such a run at its initial learning rate, near the untrained PSNR.
    demo = load_script(SCRIPT.parent / "demo.py")
    splits = demo.write_digits(tmp_path / "digits", seed=0)
    VitVqganConfig(
        **{key: value for key, value in demo.TOKENIZER_CONFIG.items() if key != "model_type"}
    ).save_pretrained(tmp_path / "config")
    output_dir = tmp_path / "out"
    arguments = [
        "--train_data_dir",
        tmp_path / "digits",
        "--cache_dir",
        tmp_path / "cache",
        "--output_dir",
        output_dir,
    ]
    arguments += ["--model_config", tmp_path / "config", "--perceptual_weight", 0, "--adversarial_weight", 0]
    arguments += ["--train_batch_size", 32, "--max_train_steps", 300, "--checkpointing_steps", 300]
    arguments += ["--validation_steps", 300, "--max_validation_samples", 128, "--report_to", "none"]
    assert_success(run_script([str(argument) for argument in arguments], tmp_path))
    trained_psnr = json.loads((output_dir / "train_results.json").read_text())["validation/psnr"]

    pixels = torch.tensor(splits["validation"][0][:128], dtype=torch.float32).reshape(-1, 1, 16, 16).repeat(1, 3, 1, 1)
    pixel_values = pixels * 2 - 1
    torch.manual_seed(0)
    untrained = VitVqganModel(VitVqganConfig.from_pretrained(tmp_path / "config")).eval()
    with torch.no_grad():
        error = (untrained(pixel_values).reconstruction - pixel_values).pow(2).mean(dim=(1, 2, 3)) / 4
    untrained_psnr = float((-10 * torch.log10(error)).mean())
    assert trained_psnr > untrained_psnr + 6, (trained_psnr, untrained_psnr)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--streaming"], "--max_train_steps"),
        (["--lr_end", "1.0"], "--lr_end"),
        (["--random_crop_scale", "0.5", "1.5"], "--random_crop_scale"),
        (["--max_nonfinite_steps", "0"], "--max_nonfinite_steps"),
        # Shared with train_vim.py (`vit_vqgan_hf.cli`): each would otherwise train nothing, or fail
        # inside torch with a message that names no flag.
        (["--num_train_epochs", "0"], "--num_train_epochs must be at least 1, got 0"),
        (["--learning_rate", "-1"], "--learning_rate must be positive, got -1.0"),
        (["--lr_warmup_steps", "-5"], "--lr_warmup_steps must be at least 0, got -5"),
        (["--adam_beta1", "1.5"], r"--adam_beta1 must be in \[0, 1\), got 1.5"),
        (["--num_validation_images", "-1"], "--num_validation_images must be at least 1"),
        (["--codebook_restart_until", "0"], r"--codebook_restart_until must lie in \(0, 1\], got 0.0"),
    ],
)
def test_invalid_arguments_are_reported(train_tokenizer_module, arguments, message):
    with pytest.raises(ValueError, match=message):
        train_tokenizer_module.parse_args(["--train_data_dir", "images", "--perceptual_weight", "0", *arguments])


def test_a_model_config_that_is_not_rgb_is_refused(train_tokenizer_module, tmp_path):
    VitVqganConfig.from_preset("tiny", num_channels=1).save_pretrained(tmp_path)
    args = train_tokenizer_module.parse_args(
        ["--train_data_dir", "images", "--perceptual_weight", "0", "--model_config", str(tmp_path)]
    )
    with pytest.raises(ValueError, match="num_channels=1; this script trains on RGB images"):
        train_tokenizer_module.load_configs(args)


def test_quantizer_recipes_resolve_and_explicit_flags_win(train_tokenizer_module):
    def parse(*arguments):
        args = train_tokenizer_module.parse_args(
            ["--train_data_dir", "images", "--perceptual_weight", "0", *arguments]
        )
        config, _ = train_tokenizer_module.load_configs(args)
        return args, config

    args, config = parse("--model_config", "tiny", "--quantizer_recipe", "paper")
    assert (args.quantizer_gradient, args.codebook_map, args.codebook_init) == ("straight_through", "none", "random")
    assert config.quantizer_gradient == "straight_through" and not config.use_codebook_linear_map
    assert args.codebook_entropy_weight == config.codebook_entropy_weight == 0
    args, config = parse("--model_config", "tiny")
    recipe = train_tokenizer_module.QUANTIZER_RECIPES["default"]
    assert {name: getattr(args, name) for name in recipe} == recipe
    assert config.use_codebook_linear_map == (recipe["codebook_map"] == "linear")
    assert config.quantizer_gradient == recipe["quantizer_gradient"]
    assert config.codebook_entropy_weight == recipe["codebook_entropy_weight"] > 0
    args, config = parse("--model_config", "tiny", "--quantizer_recipe", "paper", "--quantizer_gradient", "rotation")
    assert config.quantizer_gradient == "rotation" and args.codebook_init == "random"
    args, config = parse("--model_config", "tiny", "--codebook_entropy_weight", "0")
    assert config.codebook_entropy_weight == 0 and args.quantizer_recipe == "default"
    with pytest.raises(ValueError, match="--codebook_entropy_weight must be at least 0"):
        parse("--model_config", "tiny", "--codebook_entropy_weight", "-1")


def test_kmeans_init_is_deterministic_and_resumes_bit_exact(image_folder, tmp_path, run_in_process, caplog):
    # The codes start on k-means++ centers of the first batch's latents (256 = the tiny codebook), then train under a
    # linear map with the rotation trick, the default recipe's entropy penalty and restarts after step 1 (the frozen
    # codes solved through the map).
    extra = ["--max_train_steps", "3", "--checkpointing_steps", "1", "--adversarial_weight", "0", "--use_ema"]
    extra += ["--codebook_init", "kmeans", "--codebook_map", "linear", "--quantizer_gradient", "rotation"]
    extra += ["--codebook_restart_steps", "1", "--codebook_restart_until", "0.5", "--seed", "3"]
    runs = {name: tmp_path / name for name in ("first", "second", "resumed")}
    caplog.set_level(logging.INFO)
    for name in ("first", "second"):
        run_in_process("train_tokenizer.py", tiny_args(image_folder, runs[name], tmp_path / "cache", *extra))
    shutil.copytree(runs["first"] / "checkpoints" / "checkpoint_1", runs["resumed"] / "checkpoints" / "checkpoint_1")
    arguments = tiny_args(
        image_folder, runs["resumed"], tmp_path / "cache", *extra, "--resume_from_checkpoint", "latest"
    )
    assert "Codebook initialized" in caplog.text
    caplog.clear()
    run_in_process("train_tokenizer.py", arguments)
    assert "Resumed from" in caplog.text
    assert "Codebook initialized" not in caplog.text  # the resumed run has its codes from the checkpoint

    weights = {name: load_file(folder / "model.safetensors") for name, folder in runs.items()}
    for name in ("second", "resumed"):
        for key in weights["first"]:
            torch.testing.assert_close(weights[name][key], weights["first"][key], rtol=0, atol=0, msg=f"{name}: {key}")
    # The frozen codes are the k-means centers (not the random initialization), scaled to the stored norms.
    first = VitVqganModel.from_pretrained(runs["first"])
    untrained = VitVqganModel(first.config)
    assert not torch.allclose(first.quantizer.embedding.weight, untrained.quantizer.embedding.weight)
    results = json.loads((runs["first"] / "train_results.json").read_text())
    assert results["quantizer"] == {
        "quantizer_recipe": "default",
        "quantizer_gradient": "rotation",
        "codebook_map": "linear",
        "codebook_init": "kmeans",
        "codebook_entropy_weight": 0.01,
        "codebook_restart_steps": 1,
        "codebook_restart_until": 0.5,
    }
    card = ModelCard.load(runs["first"] / "README.md").text
    assert "| `codebook_init` | kmeans |" in card and "a learned linear map of frozen codes" in card
    assert (
        "rotation trick" in card
        and "| Codebook entropy penalty | weight 0.01, temperature 0.01 (not in the paper) |" in card
    )
