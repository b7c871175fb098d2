"""End-to-end tests of examples/train_vim.py, run as subprocesses on generated data, offline, on CPU."""

import json
import logging
import math
import shutil

import pytest
import torch
from datasets import DatasetDict, load_from_disk
from diffusers.training_utils import EMAModel
from huggingface_hub import ModelCard
from safetensors.torch import load_file
from transformers import AutoImageProcessor

from vit_vqgan_hf import VimForCausalLM, VimPipeline
from vit_vqgan_hf.hub import prepare_upload_folder
from vit_vqgan_hf.training.checkpoint_files import load_training_states
from vit_vqgan_hf.training.checkpointing import is_complete
from vit_vqgan_hf.training.run import TrainingData
from vit_vqgan_hf.training.tokens import TOKENS_METADATA_FILE, vim_input_ids

from .conftest import VIM_CLASSES, load_example, run_example


def tiny_args(vim_data, output_dir, *extra):
    config = vim_data.root / "vim_config.json"
    if not config.exists():
        # A VIM of distinct, non-round sizes; codebook, grid and classes come from the tokenizer and the data.
        config.write_text(
            json.dumps(
                {"model_type": "vim", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                 "intermediate_size": 37}
            )
        )  # fmt: skip
    return [
        "--tokenizer", vim_data.tokenizer,
        "--model_config", config,
        "--output_dir", output_dir,
        "--cache_dir", vim_data.cache_dir,
        "--train_batch_size", 4,
        "--lr_warmup_steps", 1,
        "--lr_decay_start", 2,
        "--logging_steps", 1,
        "--report_to", "none",
        *extra,
    ]  # fmt: skip


def tokens_with_validation_split(vim_data, folder, num_sequences):
    """The fixture's tokens plus a `validation` split made of their first `num_sequences` training sequences."""
    train = load_from_disk(vim_data.tokens)["train"]
    DatasetDict({"train": train, "validation": train.select(range(num_sequences))}).save_to_disk(folder)
    shutil.copy(vim_data.tokens / TOKENS_METADATA_FILE, folder / TOKENS_METADATA_FILE)
    return train.select(range(num_sequences)).with_format("torch")


def test_two_processes_on_pretokenized_data(vim_data, tmp_path):
    output_dir = tmp_path / "vim"
    # 5 held-out sequences in batches of 4 over 2 processes: the second process pads its batch with repeats.
    validation = tokens_with_validation_split(vim_data, tmp_path / "tokens", num_sequences=5)
    arguments = tiny_args(vim_data, output_dir, "--pretokenized_dataset", tmp_path / "tokens", "--max_train_steps", 3)
    arguments += ["--checkpointing_steps", 2, "--validation_steps", 2, "--num_validation_images", 2]
    arguments += ["--validation_classes", "fish", "0", "--report_to", "tensorboard"]
    # The remains of an interrupted save of step 2 (no completion marker): not a checkpoint, so the run starts afresh,
    # and both processes replace it at step 2.
    partial = output_dir / "checkpoints" / "checkpoint_2"
    partial.mkdir(parents=True)
    (partial / "model.safetensors").write_bytes(b"truncated")
    run_example("train_vim.py", arguments, vim_data.hf_home, num_processes=2)

    pipe = VimPipeline.from_pretrained(output_dir)
    config = pipe.transformer.config
    assert (config.codebook_size, config.token_grid_size, config.num_classes) == (24, 4, 3)
    assert config.id2label == dict(enumerate(VIM_CLASSES))
    assert pipe.get_label_ids("dog") == [1]
    images = pipe(class_labels=["fish"], generator=torch.Generator().manual_seed(0), output_type="pt").images
    assert images.shape == (1, 3, 16, 16)

    assert {path.name for path in (output_dir / "checkpoints").iterdir()} == {"checkpoint_2"}
    assert is_complete(partial) and (partial / "model.safetensors").stat().st_size > len(b"truncated")
    assert (output_dir / "validation_samples.png").is_file()
    assert list((output_dir / "logs").rglob("events.out.tfevents.*"))
    card = ModelCard.load(output_dir / "README.md")
    assert card.data.library_name == "vit-vqgan-hf" and "VimPipeline.from_pretrained" in card.text
    # The package's VIM template, filled from the run; a local tokenizer folder is no `base_model`.
    assert "class-conditional" in card.data.tags and card.data.base_model is None
    assert "3 classes" in card.text and "final_training_loss" in card.text and str(tmp_path) not in card.content
    assert "final_validation_loss" in card.text
    results = json.loads((output_dir / "train_results.json").read_text())
    assert results["global_step"] == 3
    # The schedule as it ran, in the results and the card.
    assert results["schedule"] == {
        "max_train_steps": 3,
        "lr_warmup_steps": 1,
        "lr_decay_start": 2,
        "null_token_steps": 0,
    }
    assert "| `lr_decay_start` | 2 |" in card.text
    # The validation loss is the saved model's mean next-token loss over the 5 held-out sequences, each counted once.
    held_out = validation[:]
    input_ids = vim_input_ids(held_out["image_tokens"], config.codebook_size + held_out["label"])
    with torch.no_grad():
        expected = pipe.transformer.eval()(input_ids=input_ids, labels=input_ids).loss.item()
    assert results["validation_loss"] == pytest.approx(expected, rel=1e-5)

    # What --push_to_hub would upload (no network): the pipeline and its card, not the checkpoints or the logs.
    uploaded = prepare_upload_folder(output_dir)
    assert {"README.md", "model_index.json", "transformer/config.json", "vqgan/config.json"} <= set(uploaded)
    assert "vqgan/preprocessor_config.json" in uploaded
    image_processor = AutoImageProcessor.from_pretrained(output_dir / "vqgan")
    assert image_processor.crop_size == {"height": 16, "width": 16}
    assert not [path for path in uploaded if path.startswith(("checkpoints/", "logs/"))]


def test_on_the_fly_encoding_from_an_image_folder(vim_data, tmp_path, run_in_process):
    output_dir = tmp_path / "vim"
    arguments = tiny_args(vim_data, output_dir, "--on_the_fly", "--train_data_dir", vim_data.image_folder)
    arguments += ["--random_crop", "--random_flip", "--max_train_steps", 4, "--validation_steps", 100]
    run_in_process("train_vim.py", arguments)

    pipe = VimPipeline.from_pretrained(output_dir)
    assert pipe.get_label_ids(["cat", "fish"]) == [0, 2]
    results = json.loads((output_dir / "train_results.json").read_text())
    # 16 images in 4 steps of 4 cover the 13 files of the folder: the corrupt one was met and skipped.
    assert results["skipped_images"] >= 1 and math.isfinite(results["final_loss"])
    assert results["validation_loss"] is None  # the folder has no validation split


def test_unconditional_model_starts_every_sequence_with_the_null_token(vim_data, tmp_path, run_in_process):
    output_dir = tmp_path / "vim"
    arguments = tiny_args(vim_data, output_dir, "--pretokenized_dataset", vim_data.tokens, "--max_train_steps", 2)
    arguments += ["--conditioning", "unconditional", "--validation_steps", 100, "--num_validation_images", 1]
    run_in_process("train_vim.py", arguments)

    pipe = VimPipeline.from_pretrained(output_dir)
    assert pipe.transformer.config.num_classes == 0
    assert pipe.transformer.config.null_class_token_id == 24
    images = pipe(num_images_per_label=2, generator=torch.Generator().manual_seed(0), output_type="pt").images
    assert images.shape == (2, 3, 16, 16)
    assert "unconditional" in (output_dir / "README.md").read_text()


def resume_scenario_arguments(vim_data, tmp_path, output_dir) -> list:
    """7 steps with a validation split, a checkpoint at step 3 and --save_best_model (also run under FSDP)."""
    tokens_with_validation_split(vim_data, tmp_path / "tokens", num_sequences=5)
    arguments = tiny_args(vim_data, output_dir, "--pretokenized_dataset", tmp_path / "tokens", "--max_train_steps", 7)
    arguments += ["--gradient_accumulation_steps", 2, "--checkpointing_steps", 3, "--checkpoints_total_limit", 2]
    arguments += ["--validation_steps", 3, "--num_validation_images", 1, "--save_best_model"]
    return arguments


def test_resumed_run_ends_with_the_weights_of_an_uninterrupted_run(vim_data, tmp_path, run_in_process, caplog):
    # Dropout and label dropout are on (config defaults), so the restored random states matter; gradient
    # accumulation and an epoch boundary (9 micro-batches per epoch) fall between the checkpoint and the end.
    # Validation (loss and samples) runs at step 3 before its checkpoint is saved, so the checkpoint holds the lowest
    # validation loss so far for --save_best_model, which the resumed run compares its later losses with. The EMA,
    # whose weights are validated and exported, is restored from the checkpoint too.
    output_dir = tmp_path / "vim"
    arguments = [*resume_scenario_arguments(vim_data, tmp_path, output_dir), "--use_ema", "--ema_decay", 0.9]
    run_in_process("train_vim.py", arguments)
    assert {path.name for path in (output_dir / "checkpoints").iterdir()} == {"checkpoint_3", "checkpoint_6"}

    # The same run, interrupted after its step-3 checkpoint, then resumed; its best transformer folder is the final one
    # of the first run, possibly of a step after the checkpoint.
    resumed_dir = tmp_path / "resumed"
    shutil.copytree(output_dir / "checkpoints" / "checkpoint_3", resumed_dir / "checkpoints" / "checkpoint_3")
    shutil.copytree(output_dir / "best_transformer", resumed_dir / "best_transformer")
    resumed_arguments = [resumed_dir if argument == output_dir else argument for argument in arguments]
    caplog.set_level(logging.INFO)
    run_in_process("train_vim.py", [*resumed_arguments, "--resume_from_checkpoint", "latest"])
    assert "Resumed from" in caplog.text and "at step 3" in caplog.text

    expected = load_file(output_dir / "transformer" / "model.safetensors")
    resumed = load_file(resumed_dir / "transformer" / "model.safetensors")
    assert expected.keys() == resumed.keys()
    for name in expected:
        assert torch.equal(expected[name], resumed[name]), name
    assert {path.name for path in (resumed_dir / "checkpoints").iterdir()} == {"checkpoint_3", "checkpoint_6"}
    results, resumed_results = (
        json.loads((path / "train_results.json").read_text()) for path in (output_dir, resumed_dir)
    )
    assert resumed_results["best_step"] == results["best_step"] in (3, 6, 7)
    assert resumed_results["best_validation_loss"] == results["best_validation_loss"]


def test_ema_run_validates_and_exports_the_averaged_weights(vim_data, tmp_path, run_in_process):
    output_dir = tmp_path / "vim"
    validation = tokens_with_validation_split(vim_data, tmp_path / "tokens", num_sequences=5)
    arguments = tiny_args(vim_data, output_dir, "--pretokenized_dataset", tmp_path / "tokens", "--max_train_steps", 4)
    arguments += ["--use_ema", "--ema_decay", 0.9, "--checkpointing_steps", 4, "--validation_steps", 100]
    arguments += ["--num_validation_images", 1, "--learning_rate", 0.01]
    run_in_process("train_vim.py", arguments)

    pipe = VimPipeline.from_pretrained(output_dir)
    exported = load_file(output_dir / "transformer" / "model.safetensors")
    # The checkpoint holds the trained weights and the EMA (as JSON and safetensors, no pickle).
    checkpoint = output_dir / "checkpoints" / "checkpoint_4"
    trained = load_file(checkpoint / "model.safetensors")
    assert not list(checkpoint.glob("custom_checkpoint_*"))
    ema = EMAModel(pipe.transformer.parameters())
    load_training_states(checkpoint, {"ema_model": ema})
    averaged = VimForCausalLM(pipe.transformer.config)
    ema.copy_to(averaged.parameters())
    assert all(torch.equal(exported[name], averaged.state_dict()[name]) for name in exported)
    assert not all(torch.equal(exported[name], trained[name]) for name in exported)
    # The validation loss is the exported (averaged) transformer's.
    held_out = validation[:]
    input_ids = vim_input_ids(held_out["image_tokens"], pipe.transformer.config.codebook_size + held_out["label"])
    with torch.no_grad():
        loss = pipe.transformer.eval()(input_ids=input_ids, labels=input_ids).loss.item()
    results = json.loads((output_dir / "train_results.json").read_text())
    assert results["validation_loss"] == pytest.approx(loss, rel=1e-5)
    assert "| `use_ema` | True |" in (output_dir / "README.md").read_text()


def test_null_token_steps_fit_the_output_null_token_and_nothing_else(vim_data, tmp_path, run_in_process, caplog):
    caplog.set_level(logging.INFO)
    output_dir = tmp_path / "vim"
    arguments = tiny_args(vim_data, output_dir, "--pretokenized_dataset", vim_data.tokens, "--max_train_steps", 3)
    arguments += ["--checkpointing_steps", 3, "--null_token_steps", 6, "--null_token_learning_rate", 0.05]
    run_in_process("train_vim.py", arguments)

    pipe = VimPipeline.from_pretrained(output_dir)
    config = pipe.transformer.config
    assert config.null_token_fitted and config.class_dropout_prob == 0
    exported = load_file(output_dir / "transformer" / "model.safetensors")
    trained = load_file(output_dir / "checkpoints" / "checkpoint_3" / "model.safetensors")
    assert exported.keys() == trained.keys()
    for name in exported:
        differs = (exported[name] != trained[name]).reshape(len(exported[name]), -1).any(dim=1)
        expected = [config.null_class_token_id] if name.endswith("embed_tokens.weight") else []
        assert differs.nonzero().flatten().tolist() == expected, name
    results = json.loads((output_dir / "train_results.json").read_text())
    assert results["schedule"]["null_token_steps"] == 6 and math.isfinite(results["null_token_loss"])
    assert "Fitted the null token in 6 steps" in caplog.text
    assert "null token fitted after training" in (output_dir / "README.md").read_text()
    pipe.set_progress_bar_config(disable=True)
    assert pipe(class_labels=[0], guidance_scale=2.0, output_type="tokens").images.shape[0] == 1


def test_a_run_resolves_its_schedule_without_writing_to_its_arguments(vim_data, tmp_path, run_in_process, caplog):
    caplog.set_level(logging.INFO)
    output_dir = tmp_path / "vim"
    arguments = tiny_args(vim_data, output_dir, "--pretokenized_dataset", vim_data.tokens, "--num_train_epochs", 1)
    args, parsed = run_in_process("train_vim.py", [*arguments, "--train_batch_size", 16])
    assert vars(args) == parsed and args.max_train_steps is None and args.resolution is None
    results = json.loads((output_dir / "train_results.json").read_text())
    # 36 sequences (12 images, 3 copies each) in batches of 16: three steps of one epoch.
    assert results["schedule"] == {
        "max_train_steps": 3,
        "lr_warmup_steps": 1,
        "lr_decay_start": 2,
        "null_token_steps": 0,
    }
    card = ModelCard.load(output_dir / "README.md").text
    assert "| `max_train_steps` | 3 |" in card and "| `resolution` | 16 |" in card
    assert "token sequences pretokenized from" in card
    # In this process the script's logs are captured (the tests of the checks before training rely on it).
    assert "Training a" in caplog.text


def test_paper_learning_rate_schedule():
    schedule = load_example("train_vim.py").vim_lr_lambda
    warmup, decay_start, total, end_ratio = 5000, 80_000, 450_000, 1e-5 / 4.5e-4
    assert schedule(0, warmup, decay_start, total, end_ratio) == 0.0
    assert schedule(2500, warmup, decay_start, total, end_ratio) == pytest.approx(0.5)
    assert schedule(5000, warmup, decay_start, total, end_ratio) == 1.0
    assert schedule(80_000, warmup, decay_start, total, end_ratio) == 1.0
    halfway = schedule(265_000, warmup, decay_start, total, end_ratio)
    assert halfway == pytest.approx(math.sqrt(end_ratio))
    assert schedule(450_000, warmup, decay_start, total, end_ratio) == pytest.approx(end_ratio)
    # No room for a decay: constant after the warm-up.
    assert schedule(900, 10, 1000, 1000, end_ratio) == 1.0


def test_the_paper_length_resolves_to_the_paper_schedule():
    train_vim = load_example("train_vim.py")
    data = TrainingData(resolution=16)

    def resolve(*arguments):
        args = train_vim.parse_args(["--tokenizer", "t", *arguments])
        return train_vim.resolve_run(args, num_processes=1, num_batches=None, data=data)

    run = resolve("--max_train_steps", "450000")
    assert run.arguments["lr_warmup_steps"] is None and run.arguments["lr_decay_start"] is None
    assert (run.schedule.lr_warmup_steps, run.lr_decay_start) == (5000, 80_000)
    # A 1000-step run on a user's data gets the same shape of schedule; explicit step flags override the fractions.
    run = resolve("--max_train_steps", "1000", "--lr_decay_start", "500")
    assert (run.schedule.lr_warmup_steps, run.lr_decay_start) == (11, 500)
    assert resolve("--max_train_steps", "1000").lr_decay_start == 178
    # Epochs count micro-batches of each process, accumulated into optimizer steps.
    args = train_vim.parse_args(["--tokenizer", "t", "--num_train_epochs", "3", "--gradient_accumulation_steps", "2"])
    run = train_vim.resolve_run(args, num_processes=2, num_batches=5, data=data)
    assert run.schedule.max_train_steps == 9 and run.card_arguments()["max_train_steps"] == 9
    assert args.max_train_steps is None


def test_images_are_encoded_on_the_fly_without_pretokenized_data():
    # The contract's command: a Hub image dataset and no data flag.
    train_vim = load_example("train_vim.py")
    args = train_vim.parse_args(
        ["--tokenizer", "t", "--dataset_name", "ILSVRC/imagenet-1k", "--model_config", "large"]
    )
    assert args.on_the_fly and args.dataset_name == "ILSVRC/imagenet-1k"
    args = train_vim.parse_args(["--tokenizer", "t", "--pretokenized_dataset", "tokens"])
    assert not args.on_the_fly and args.dataset_name is None


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--pretokenized_dataset", "x", "--on_the_fly"], "Pass one data source"),
        (["--pretokenized_dataset", "x", "--random_crop"], "apply to --on_the_fly"),
        (["--on_the_fly", "--streaming"], "--max_train_steps"),
        (["--on_the_fly", "--lr_end", "1"], "--lr_end"),
        (["--on_the_fly", "--max_validation_sequences", "0"], "--max_validation_sequences must be at least 1"),
        (["--num_train_epochs", "-1"], "--num_train_epochs must be at least 1, got -1"),
        (["--num_validation_images", "0"], "--num_validation_images must be at least 1, got 0"),
        (["--adam_epsilon", "0"], "--adam_epsilon must be positive"),
        (["--max_grad_norm", "-1"], "--max_grad_norm must be at least 0"),
        (["--lr_warmup_ratio", "1.5"], r"--lr_warmup_ratio must be in \[0, 1\], got 1.5"),
        (["--lr_decay_start_ratio", "-0.1"], r"--lr_decay_start_ratio must lie in \[0, 1\]"),
        (["--on_the_fly", "--ema_decay", "1"], r"--ema_decay must lie in \(0, 1\), got 1.0"),
        (["--conditioning", "unconditional", "--validation_classes", "1"], "trains without classes"),
        (["--null_token_steps", "-1"], r"--null_token_steps must be at least 0 \(0: off\), got -1"),
        (["--null_token_learning_rate", "0"], "--null_token_learning_rate must be > 0, got 0.0"),
        (["--conditioning", "unconditional", "--null_token_steps", "5"], "it is the only prefix"),
    ],
)
def test_invalid_arguments_are_reported(arguments, message):
    train_vim = load_example("train_vim.py")
    with pytest.raises(ValueError, match=message):
        train_vim.parse_args(["--tokenizer", "t", *arguments])


def test_save_best_model_outputs_the_transformer_of_the_lowest_validation_loss(vim_data, tmp_path, run_in_process):
    # A learning rate too high for this model: the validation loss falls until step 5 (2.82 nats), then rises at step 6
    # (2.88), so the best step is neither the first nor the last. A checkpoint at every step keeps each step's weights.
    output_dir = tmp_path / "vim"
    validation = tokens_with_validation_split(vim_data, tmp_path / "tokens", num_sequences=6)
    arguments = tiny_args(vim_data, output_dir, "--pretokenized_dataset", tmp_path / "tokens", "--max_train_steps", 6)
    arguments += ["--learning_rate", 0.05, "--lr_end", 0.05, "--validation_steps", 1, "--num_validation_images", 1]
    arguments += ["--checkpointing_steps", 1, "--save_best_model", "--dropout", 0, "--class_dropout_prob", 0.1]
    run_in_process("train_vim.py", arguments)

    results = json.loads((output_dir / "train_results.json").read_text())
    best_step = results["best_step"]
    assert 1 < best_step < 6 and results["best_validation_loss"] < results["validation_loss"]
    saved = load_file(output_dir / "transformer" / "model.safetensors")
    at_best_step = load_file(output_dir / "checkpoints" / f"checkpoint_{best_step}" / "model.safetensors")
    last = load_file(output_dir / "checkpoints" / "checkpoint_6" / "model.safetensors")
    assert all(torch.equal(saved[name], at_best_step[name]) for name in saved)
    assert not all(torch.equal(saved[name], last[name]) for name in saved)
    # The recorded loss is the saved transformer's loss on the held-out sequences.
    pipe = VimPipeline.from_pretrained(output_dir)
    held_out = validation[:]
    input_ids = vim_input_ids(held_out["image_tokens"], pipe.transformer.config.codebook_size + held_out["label"])
    with torch.no_grad():
        loss = pipe.transformer.eval()(input_ids=input_ids, labels=input_ids).loss.item()
    assert results["best_validation_loss"] == pytest.approx(loss, rel=1e-5)
    assert f"| `best_step` | {best_step} |" in (output_dir / "README.md").read_text()
    assert not [path for path in prepare_upload_folder(output_dir) if path.startswith("best_transformer/")]

    # Interrupted right after the best step's checkpoint, then resumed: the checkpoint holds that step's loss (its
    # validation ran before the save), so the resumed run, which validates only the later steps, keeps it.
    resumed_dir = tmp_path / "resumed"
    checkpoint = f"checkpoint_{best_step}"
    shutil.copytree(output_dir / "checkpoints" / checkpoint, resumed_dir / "checkpoints" / checkpoint)
    shutil.copytree(output_dir / "best_transformer", resumed_dir / "best_transformer")
    resumed_arguments = [resumed_dir if argument == output_dir else argument for argument in arguments]
    run_in_process("train_vim.py", [*resumed_arguments, "--resume_from_checkpoint", "latest"])
    resumed_results = json.loads((resumed_dir / "train_results.json").read_text())
    assert (resumed_results["best_step"], resumed_results["best_validation_loss"]) == (
        best_step,
        results["best_validation_loss"],
    )
    resumed = load_file(resumed_dir / "transformer" / "model.safetensors")
    assert all(torch.equal(saved[name], resumed[name]) for name in saved)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--save_best_model"], "--save_best_model chooses by validation loss"),
        (
            ["--validation_classes", "dgo"],
            r"--validation_classes: Unknown class name 'dgo'. Did you mean one of \['dog'\]",
        ),
        (["--validation_classes", "7"], "--validation_classes: class id 7 is out of range for 3 classes"),
        # The paper's default, no label dropout, leaves the null token of guidance untrained.
        (["--validation_guidance_scale", "2"], "--validation_guidance_scale 2.0 needs a transformer trained with"),
        (["--conditioning", "unconditional", "--validation_guidance_scale", "2"], "it needs --conditioning class"),
        (["--class_dropout_prob", "0.1", "--null_token_steps", "5"], "fits it after training instead"),
    ],
)
def test_arguments_that_depend_on_the_data_are_checked_before_training(
    vim_data, tmp_path, extra, message, run_in_process, caplog
):
    # The fixture's tokens have no validation split and the classes cat, dog, fish.
    arguments = tiny_args(vim_data, tmp_path / "vim", "--pretokenized_dataset", vim_data.tokens, *extra)
    caplog.set_level(logging.INFO)
    with pytest.raises(ValueError, match=message):
        run_in_process("train_vim.py", [*arguments, "--max_train_steps", 1])
    assert "Training a" not in caplog.text


@pytest.mark.parametrize(
    ("split", "column", "value", "bad"),
    [("validation", "image_tokens", 24, "24, outside [0, 24)"), ("train", "label", -1, "-1, outside [0, 3)")],
)
def test_token_ids_and_labels_out_of_range_are_refused_where_the_data_is_loaded(
    vim_data, tmp_path, split, column, value, bad, run_in_process, caplog
):
    # Training steps do not check the ids (the model checks values only outside training): the data is checked once,
    # when it is loaded. The fixture's codebook has 24 codes, its labels 3 classes; example 2 gets an id out of range.
    tokens_with_validation_split(vim_data, tmp_path / "tokens", num_sequences=5)
    splits = load_from_disk(tmp_path / "tokens")

    def corrupt(example, index):
        if index == 2:
            example[column] = [value, *example[column][1:]] if column == "image_tokens" else value
        return example

    splits[split] = splits[split].map(corrupt, with_indices=True)
    splits.save_to_disk(tmp_path / "corrupt")
    shutil.copy(vim_data.tokens / TOKENS_METADATA_FILE, tmp_path / "corrupt" / TOKENS_METADATA_FILE)
    arguments = tiny_args(vim_data, tmp_path / "vim", "--pretokenized_dataset", tmp_path / "corrupt")
    caplog.set_level(logging.INFO)
    with pytest.raises(ValueError, match="split") as error:
        run_in_process("train_vim.py", [*arguments, "--max_train_steps", 1])
    message = (
        f"The pretokenized dataset '{tmp_path / 'corrupt'}', split '{split}': the column '{column}' holds the value"
    )
    assert f"{message} {bad}" in str(error.value) and "Training a" not in caplog.text


def test_a_push_that_cannot_reach_the_hub_stops_every_process_before_training(vim_data, tmp_path):
    # Offline, the main process cannot create the repository; the other process learns it through the broadcast and
    # fails with the same message instead of waiting for a peer that left.
    arguments = tiny_args(
        vim_data, tmp_path / "vim", "--pretokenized_dataset", vim_data.tokens, "--max_train_steps", 1
    )
    arguments += ["--push_to_hub", "--hub_model_id", "someone/vim-test"]
    with pytest.raises(AssertionError) as error:
        run_example("train_vim.py", arguments, vim_data.hf_home, num_processes=2)
    output = str(error.value)
    assert output.count("model repository 'someone/vim-test' could not be created or found") >= 2
    assert "Training a" not in output and not (tmp_path / "vim" / "checkpoints").exists()
