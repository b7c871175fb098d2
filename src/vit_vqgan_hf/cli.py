# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""What the command-line scripts (`examples/`, `scripts/`) share: the Hub flags, the sampling flags of `sample.py` and
`evaluate_generation.py`, output folders, loading a model or data set named on the command line with an error that
says what was expected, and checks of flags and of the `accelerate launch` setup, all run before any compute. The top
layer of the package: nothing in it imports this.
"""

import argparse
import logging
import os
from pathlib import Path

import torch
from accelerate.utils import DistributedType, broadcast_object_list
from transformers import AutoImageProcessor, AutoModelForImageClassification

from .evaluation.classifier import ImageClassifier, check_classifier_labels
from .evaluation.sampling import SamplingConfig, SamplingEngine, sampling_plan
from .hub.uploads import HUB_ERRORS, create_hub_repo
from .pipelines import VimPipeline


logger = logging.getLogger(__name__)


def add_hub_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """
    Add the Hub flags every script shares: `--push_to_hub`, `--hub_model_id`, `--hub_private`, `--hub_token`.

    Args:
        parser (`argparse.ArgumentParser`):
            The script's parser.

    Returns:
        `argparse.ArgumentParser`: the same parser.
    """
    group = parser.add_argument_group("Hugging Face Hub")
    group.add_argument(
        "--push_to_hub",
        action="store_true",
        help="Upload the final folder (weights, configuration, modeling code, model card) to the Hub.",
    )
    group.add_argument(
        "--hub_model_id",
        type=str,
        default=None,
        help="Repository to push to (`namespace/name`); defaults to the name of --output_dir under your account.",
    )
    group.add_argument(
        "--hub_private", action="store_true", help="Create the repository as private if it does not exist yet."
    )
    group.add_argument(
        "--hub_token",
        type=str,
        default=None,
        help="Hub access token; defaults to the one stored by `hf auth login` or the HF_TOKEN variable.",
    )
    return parser


def load_pretrained(loader, name_or_path: str | os.PathLike, *, expected: str | None = None, **kwargs):
    """
    `loader(name_or_path, **kwargs)` (a `from_pretrained`, `load_dataset`, ...), with an error that says what was
    expected when `name_or_path` is no local path and does not load as a Hub id either: a mistyped local folder
    otherwise surfaces as a Hub connection or repository-id error.

    Args:
        loader (`Callable`):
            The loading function, e.g. `VitVqganModel.from_pretrained` or `VimPipeline.from_pretrained`.
        name_or_path (`str` or `os.PathLike`):
            A local folder or file, or a Hub id.
        expected (`str`, *optional*, defaults to `None`):
            What the argument may be, for the error message (e.g. "a preset (ss, bb), a config.json or a Hub id");
            by default "a saved <class> folder or a Hub id", from the class whose `from_pretrained` is `loader`.
        **kwargs:
            Passed to `loader`.

    Returns:
        Whatever `loader` returns.

    Raises:
        `ValueError`: when `name_or_path` does not exist locally and loading it from the Hub (or the offline cache)
        failed; the Hub's error is chained.

    Example:

    ```python
    >>> from vit_vqgan_hf import VitVqganModel
    >>> from vit_vqgan_hf.cli import load_pretrained

    >>> load_pretrained(VitVqganModel.from_pretrained, "outputs/no-such-tokenizer")  # doctest: +SKIP
    ValueError: 'outputs/no-such-tokenizer' is no local file or folder, and it does not load as a Hub id ...
    ```
    """
    try:
        return loader(name_or_path, **kwargs)
    except HUB_ERRORS as error:
        if os.path.exists(name_or_path):
            raise
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if expected is None:
            owner = getattr(loader, "__self__", None)
            expected = f"a saved {owner.__name__} folder or a Hub id" if owner else "a local folder or a Hub id"
        raise ValueError(
            f"{str(name_or_path)!r} is no local file or folder, and it does not load as a Hub id either ({reason}). "
            f"Expected {expected}."
        ) from error


def prepare_output_dir(output_dir: str | os.PathLike, flag: str = "--output_dir") -> Path:
    """
    Create a script's output folder (and its parents) before any compute, with an error that names the flag when the
    path cannot be a folder: otherwise a mistyped path surfaces as a bare `FileExistsError` or `NotADirectoryError`,
    or only when the results are saved, after the whole run.

    Args:
        output_dir (`str` or `os.PathLike`):
            The folder to create; an existing folder is kept as it is.
        flag (`str`, *optional*, defaults to `"--output_dir"`):
            The command-line flag that named it, for the error message.

    Returns:
        `pathlib.Path`: the folder.

    Raises:
        `ValueError`: when the path or one of its parents is an existing file, or the folder cannot be created.
    """
    path = Path(output_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as error:
        file = next((parent for parent in (path, *path.parents) if parent.exists() and not parent.is_dir()), path)
        raise ValueError(
            f"{flag} {str(output_dir)!r} cannot be a folder: {str(file)!r} is a file. Expected a folder path."
        ) from error
    except OSError as error:
        raise ValueError(
            f"{flag} {str(output_dir)!r} cannot be created ({error.strerror}). Expected a writable folder path."
        ) from error
    return path


def check_shared_training_args(args: argparse.Namespace):
    """
    Check the data, optimization and validation flags that `train_tokenizer.py` and `train_vim.py` share, so that a
    meaningless value fails at startup with the flag's name instead of silently (zero epochs train nothing; a negative
    warm-up is a learning-rate jump) or deep inside torch's optimizer or DataLoader.

    Args:
        args (`argparse.Namespace`):
            The parsed arguments of a training script.

    Raises:
        `ValueError`: naming the first flag out of its range, its value and the range.
    """
    for name in ("num_train_epochs", "train_batch_size", "gradient_accumulation_steps", "shuffle_buffer_size"):
        _check(args, name, getattr(args, name) >= 1, "at least 1")
    _check(args, "num_validation_images", args.num_validation_images >= 1, "at least 1")
    for name in ("lr_warmup_steps", "dataloader_num_workers"):
        _check(args, name, getattr(args, name) >= 0, "at least 0")
    for name in ("learning_rate", "adam_epsilon"):
        _check(args, name, getattr(args, name) > 0, "positive")
    _check(args, "adam_weight_decay", args.adam_weight_decay >= 0, "at least 0")
    for name in ("adam_beta1", "adam_beta2"):
        _check(args, name, 0 <= getattr(args, name) < 1, "in [0, 1)")
    _check(args, "max_grad_norm", args.max_grad_norm is None or args.max_grad_norm >= 0, "at least 0 (0: no clipping)")


def check_device(device: str, flag: str = "--device"):
    """
    Refuse a device that this machine cannot run, before any data is loaded: otherwise a missing CUDA surfaces from
    inside torch after the dataset has been read.

    Args:
        device (`str`):
            A torch device string: `cpu`, `cuda`, `cuda:N` or `mps`.
        flag (`str`, *optional*, defaults to `"--device"`):
            The command-line flag that named it, for the error message.

    Raises:
        `ValueError`: when `device` is not a torch device, or this machine does not have it.
    """
    try:
        device_type = torch.device(device).type
    except RuntimeError as error:
        raise ValueError(f"{flag} {device!r} is not a torch device. Expected cpu, cuda, cuda:N or mps.") from error
    if device_type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{flag} {device!r}: CUDA is not available on this machine; pass {flag} cpu.")
    if device_type == "cuda" and (torch.device(device).index or 0) >= torch.cuda.device_count():
        raise ValueError(f"{flag} {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s).")
    if device_type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{flag} {device!r}: MPS is not available on this machine; pass {flag} cpu.")


def check_launch(accelerator):
    """
    Fail when `accelerate launch` started processes that did not join one process group, and warn when an FSDP config
    was not applied. On a machine without GPUs, `accelerate launch --multi_gpu --num_processes 2` (without
    `ACCELERATE_USE_CPU=true`) starts two processes that each set up a single-process run: both would do the whole job
    and write the same files. And accelerate shards with FSDP only on GPUs: on CPUs an FSDP config runs DDP.

    Args:
        accelerator (`accelerate.Accelerator`):
            The script's accelerator, just built.

    Raises:
        `RuntimeError`: when the launcher's process count (`WORLD_SIZE`) differs from the accelerator's.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size != accelerator.num_processes:
        raise RuntimeError(
            f"`accelerate launch` started {world_size} processes, but each set up a run of "
            f"{accelerator.num_processes} ({accelerator.distributed_type}): they would each do the whole job and write "
            "the same files. Without GPUs, launch with ACCELERATE_USE_CPU=true (and --multi_gpu, or a multi-process "
            "accelerate config; examples/README.md)."
        )
    use_fsdp = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() in ("1", "true")
    if use_fsdp and accelerator.distributed_type != DistributedType.FSDP and accelerator.is_main_process:
        logger.warning(
            f"The accelerate config asks for FSDP, but accelerate set up {accelerator.distributed_type}: it shards "
            "only on GPUs (and other accelerators), so this run keeps a full copy of the model in every process."
        )


def check_hub_repo(args: argparse.Namespace, accelerator):
    """
    With `--push_to_hub`, create (or find) the repository before training, on the main process, so that an unreachable
    Hub, a token that cannot write or an invalid `--hub_model_id` fails the run at its start on every process, and
    not when the trained model is pushed. `args.hub_model_id` becomes the repository's full id.

    Args:
        args (`argparse.Namespace`):
            The parsed arguments of a training script (`push_to_hub`, `hub_model_id`, `hub_private`, `hub_token`,
            `output_dir`).
        accelerator (`accelerate.Accelerator`):
            The script's accelerator.

    Raises:
        `ValueError`: from [`~vit_vqgan_hf.hub.create_hub_repo`], on every process.
    """
    if not args.push_to_hub:
        return
    outcome = [None, args.hub_model_id]
    if accelerator.is_main_process:
        try:
            outcome[1] = create_hub_repo(
                args.output_dir, args.hub_model_id, private=args.hub_private, token=args.hub_token
            )
        except Exception as error:  # any failure must reach the broadcast, or the other processes wait in it forever
            outcome[0] = str(error) if isinstance(error, ValueError) else f"--push_to_hub: {error!r}"
    message, args.hub_model_id = broadcast_object_list(outcome)
    if message is not None:
        raise ValueError(message)


def _check(args: argparse.Namespace, name: str, valid: bool, expected: str):
    if not valid:
        raise ValueError(f"--{name} must be {expected}, got {getattr(args, name)}.")


EXPECTED_CLASSIFIER = (
    "a transformers image-classification model with its image processor (a `save_pretrained` folder holding "
    "config.json, the weights and preprocessor_config.json) or a Hub id such as microsoft/resnet-101"
)


def load_image_classifier(name_or_path: str | os.PathLike, **kwargs) -> ImageClassifier:
    r"""
    Load a transformers image-classification model and its image processor's settings as an [`ImageClassifier`].

    Args:
        name_or_path (`str` or `os.PathLike`):
            A `save_pretrained` folder holding the model and its `preprocessor_config.json`, or a Hub id (e.g.
            `"microsoft/resnet-101"`, ImageNet-1k in the standard class order); offline, it must be in the cache.
        **kwargs:
            Passed to `AutoModelForImageClassification.from_pretrained` (e.g. `revision`).

    Returns:
        [`ImageClassifier`]: in eval mode, on the CPU.

    Raises:
        `ValueError`: when `name_or_path` is no local path and does not load from the Hub, or a folder lacks the image
        processor.
    """
    model = load_pretrained(
        AutoModelForImageClassification.from_pretrained, name_or_path, expected=EXPECTED_CLASSIFIER, **kwargs
    )
    try:
        image_processor = AutoImageProcessor.from_pretrained(name_or_path, revision=kwargs.get("revision"))
    except OSError as error:
        raise ValueError(
            f"The classifier {str(name_or_path)!r} has no image processor (preprocessor_config.json), whose resize, "
            f"crop and normalization the classifier expects. Expected {EXPECTED_CLASSIFIER}."
        ) from error
    return ImageClassifier(model, image_processor, name_or_path=str(name_or_path))


def check_rejection_flags(acceptance_rate: float | None, classifier: str | None, unconditional: bool) -> None:
    """
    The rejection-sampling flags of the sampling scripts (`--acceptance_rate`, `--classifier`, `--unconditional`),
    checked before anything is loaded: a rate in (0, 1], a classifier exactly when the rate rejects, class-conditional
    samples. A rate of 1 keeps every sample, so it needs no classifier.

    Args:
        acceptance_rate (`float`, *optional*):
            `--acceptance_rate`, or `None`.
        classifier (`str`, *optional*):
            `--classifier`, or `None`.
        unconditional (`bool`):
            Whether unconditional samples are asked for.

    Raises:
        `ValueError`: naming the flag to change.
    """
    if acceptance_rate is None:
        if classifier is not None:
            raise ValueError(
                "--classifier ranks the candidates of rejection sampling: pass --acceptance_rate as well."
            )
        return
    if not 0 < acceptance_rate <= 1:
        raise ValueError(f"--acceptance_rate must lie in (0, 1] when given, got {acceptance_rate}.")
    if acceptance_rate < 1 and classifier is None:
        raise ValueError(
            f"--acceptance_rate {acceptance_rate} keeps the samples a classifier ranks highest: pass --classifier (e.g. "
            "microsoft/resnet-101 for ImageNet)."
        )
    if acceptance_rate < 1 and unconditional:
        raise ValueError(
            f"--acceptance_rate {acceptance_rate} ranks each sample by the probability of its class: it does not go "
            "with --unconditional."
        )


# The flags of examples/sample.py's completions: fields of `SamplingConfig` under the same names.
COMPLETION_FLAGS = ("completion_images", "num_prefix_rows", "completions_per_image")


def add_sampling_args(parser: argparse.ArgumentParser) -> None:
    """
    Add the sampling flags of `sample.py` and `evaluate_generation.py` to `parser`, as its "Sampling" group: the
    fields of [`~vit_vqgan_hf.evaluation.SamplingConfig`] but `--batch_size` and `--seed` (each script adds its own,
    with its own default and use), and `--classifier`, `--dtype`, `--compile`. Older spellings stay aliases.
    """
    group = parser.add_argument_group("Sampling")
    group.add_argument(
        "--num_images_per_class", "--images_per_class", type=int, default=50, help="Images of each class."
    )
    group.add_argument(
        "--class_ids", nargs="*", default=["all"], help="Class ids to sample, or `all` (the default): every class."
    )
    group.add_argument("--unconditional", action="store_true", help="Sample from the null class token instead.")
    group.add_argument(
        "--num_images", "--num_samples", type=int, default=None, help="Images with --unconditional (default: 50000)."
    )
    group.add_argument("--guidance_scale", type=float, default=1.0, help="Classifier-free guidance (1 = off).")
    group.add_argument("--temperature", type=float, default=1.0, help="Sampling temperature (the paper: 1.0).")
    group.add_argument("--top_k", type=int, default=None, help="Sample among the k most likely tokens only.")
    group.add_argument("--top_p", type=float, default=None, help="Nucleus sampling threshold.")
    group.add_argument(
        "--acceptance_rate",
        type=float,
        default=None,
        help="Classifier rejection sampling (the paper's Table 6: 0.5): sample ceil(N / rate) candidates per class "
        "and keep the N that --classifier finds most typical of their class; 1.0 or none keeps every sample.",
    )
    group.add_argument(
        "--classifier",
        default=None,
        help="Image-classification model of --acceptance_rate (a transformers folder with its image processor, or a "
        "Hub id, e.g. microsoft/resnet-101 for ImageNet); its labels must be the VIM's classes, in order.",
    )
    group.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"], help="Precision of the models.")
    group.add_argument(
        "--compile",
        action="store_true",
        help="Compile the transformer (torch.compile, fullgraph; CUDA graphs on a GPU) over a static key/value cache: "
        "one compilation per batch size, then cheaper steps where per-step overhead dominates (GPUs), not on a CPU.",
    )


def check_sampling_args(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> None:
    """
    Check the flags of [`add_sampling_args`], `--batch_size` and `--seed` before anything is loaded.

    Args:
        args (`argparse.Namespace`):
            The parsed arguments.
        parser (`argparse.ArgumentParser`, *optional*, defaults to `None`):
            With a parser, counts and flag combinations are usage errors (`parser.error`: the usage and exit status
            2); without one, they raise `ValueError` like the values do.

    Raises:
        `ValueError`: naming the flag to change.
    """

    def usage_error(message: str):
        if parser is None:
            raise ValueError(message)
        parser.error(message)

    counts = {"num_images_per_class": " (--images_per_class is the same flag)", "batch_size": ""}
    counts["num_images"] = " (--num_samples is the same flag)"
    for name, alias in counts.items():
        if getattr(args, name) is not None and getattr(args, name) < 1:
            usage_error(f"--{name} must be positive, got {getattr(args, name)}{alias}.")
    if args.class_ids not in ([], ["all"]) and not all(class_id.isdigit() for class_id in args.class_ids):
        usage_error(f"--class_ids takes class ids (non-negative integers) or `all`, got {args.class_ids}.")
    if args.unconditional and args.class_ids not in ([], ["all"]):
        usage_error("--class_ids and --unconditional exclude each other.")
    if args.num_images is not None and not args.unconditional:
        usage_error("--num_images is for --unconditional; use --num_images_per_class with classes.")
    _check(args, "guidance_scale", args.guidance_scale >= 1, "at least 1 (1 disables guidance)")
    if args.guidance_scale > 1 and args.unconditional:
        raise ValueError(f"--guidance_scale {args.guidance_scale} guides towards a class, not --unconditional images.")
    _check(args, "temperature", args.temperature > 0, "> 0")
    _check(args, "top_k", args.top_k is None or args.top_k >= 1, "at least 1 when given")
    _check(args, "top_p", args.top_p is None or 0 < args.top_p <= 1, "in (0, 1] when given")
    _check(args, "seed", args.seed >= 0, ">= 0 (it seeds numpy's SeedSequence)")
    check_rejection_flags(args.acceptance_rate, args.classifier, args.unconditional)


def sampling_config(args: argparse.Namespace) -> SamplingConfig:
    """The [`~vit_vqgan_hf.evaluation.SamplingConfig`] of flags checked by [`check_sampling_args`]."""
    names = ("num_images_per_class", "unconditional", "batch_size", "guidance_scale", "temperature", "top_k", "top_p")
    config = {name: getattr(args, name) for name in (*names, "acceptance_rate", "seed")}
    if args.class_ids not in ([], ["all"]):
        config["class_ids"] = [int(class_id) for class_id in args.class_ids]
    if args.num_images is not None:
        config["num_images"] = args.num_images
    # The completion flags of examples/sample.py (evaluate_generation.py has none).
    config.update({name: getattr(args, name) for name in COMPLETION_FLAGS if hasattr(args, name)})
    return SamplingConfig(**config)


def sampling_settings(args: argparse.Namespace) -> dict:
    """
    The flags that determine what each image looks like (not how many there are), as `sample.py` records them in
    `sample_settings.json` and `evaluate_generation.py` in its results.
    """
    names = ("pipeline", "guidance_scale", "temperature", "top_k", "top_p", "seed", "dtype", "unconditional")
    config = sampling_config(args)
    settings = {name: getattr(args, name) for name in names}
    # With rejection, the kept images depend on the candidates per class too; 1.0 samples what no rejection does.
    settings["acceptance_rate"] = args.acceptance_rate if config.uses_rejection else 1.0
    settings["classifier"] = args.classifier if config.uses_rejection else None
    settings["candidates_per_class"] = config.num_candidates
    if config.completion_images is not None:  # recorded for completions only: plain sets keep their settings
        settings.update({name: getattr(args, name) for name in COMPLETION_FLAGS})
    return settings


def load_sampling_engine(args: argparse.Namespace, device) -> SamplingEngine:
    """
    The [`~vit_vqgan_hf.evaluation.SamplingEngine`] of the sampling flags: `--pipeline` in `--dtype` on `device`, its
    transformer compiled with `--compile`, and with rejection the `--classifier`, refused before any sampling when it
    cannot score the transformer's classes (checked after the plan, so a missing `--unconditional` is named first).
    """
    dtype = torch.bfloat16 if args.dtype == "bfloat16" else torch.float32
    pipeline = load_pretrained(VimPipeline.from_pretrained, args.pipeline, dtype=dtype).to(device)
    pipeline.set_progress_bar_config(disable=True)
    if args.compile:
        # The pipeline switches to its static cache for a compiled transformer, so every step has the same shapes.
        pipeline.transformer.compile(mode="reduce-overhead" if device.type == "cuda" else "default", fullgraph=True)
    config = sampling_config(args)
    num_classes = pipeline.transformer.config.num_classes
    sampling_plan(config, num_classes)
    classifier = None
    if config.uses_rejection:
        classifier = load_image_classifier(args.classifier).to(device)
        check_classifier_labels(classifier, num_classes)
    elif args.classifier is not None:
        logger.info("--acceptance_rate 1.0 keeps every sample: --classifier is not used.")
    return SamplingEngine(pipeline, config, classifier)


__all__ = [
    "COMPLETION_FLAGS",
    "EXPECTED_CLASSIFIER",
    "add_hub_args",
    "add_sampling_args",
    "check_device",
    "check_hub_repo",
    "check_launch",
    "check_rejection_flags",
    "check_sampling_args",
    "check_shared_training_args",
    "load_image_classifier",
    "load_pretrained",
    "load_sampling_engine",
    "prepare_output_dir",
    "sampling_config",
    "sampling_settings",
]
