# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""The command line of the sampling scripts, `sample.py` and `evaluate_generation.py`: their sampling flags and checks,
the sampling engine they configure, and the image classifier of rejection sampling.
"""

import argparse
import logging
import os

import torch
from transformers import AutoImageProcessor, AutoModelForImageClassification

from ..evaluation.classifier import ImageClassifier, check_classifier_labels
from ..evaluation.sampling import SamplingConfig, SamplingEngine, sampling_plan
from ..pipelines import VimPipeline
from ..pipelines.vim.input_checks import DECODINGS
from ..pipelines.vim.jacobi_decoding import DEFAULT_JACOBI_BRANCHES, DEFAULT_JACOBI_WINDOW, VimJacobiDecodingMixin
from .common import check_flag, load_pretrained


logger = logging.getLogger(__name__)


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
    group.add_argument(
        "--decoding",
        default="sequential",
        choices=list(DECODINGS),
        help="The token loop: sequential (one transformer call per token) or speculative_jacobi (several tokens per "
        "call, the same distribution; other images for the same seeds).",
    )
    group.add_argument(
        "--jacobi_window",
        type=int,
        default=None,
        help=f"Tokens per call at most with --decoding speculative_jacobi (default: {DEFAULT_JACOBI_WINDOW}).",
    )
    group.add_argument(
        "--jacobi_branches",
        type=int,
        default=None,
        help="Alternatives of each call's first draft read with --decoding speculative_jacobi and a window of 3 or "
        f"more (default: {DEFAULT_JACOBI_BRANCHES}; 0: none).",
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
    check_flag(args, "guidance_scale", args.guidance_scale >= 1, "at least 1 (1 disables guidance)")
    if args.guidance_scale > 1 and args.unconditional:
        raise ValueError(f"--guidance_scale {args.guidance_scale} guides towards a class, not --unconditional images.")
    check_flag(args, "temperature", args.temperature > 0, "> 0")
    check_flag(args, "top_k", args.top_k is None or args.top_k >= 1, "at least 1 when given")
    check_flag(args, "top_p", args.top_p is None or 0 < args.top_p <= 1, "in (0, 1] when given")
    check_flag(args, "seed", args.seed >= 0, ">= 0 (it seeds numpy's SeedSequence)")
    check_flag(args, "jacobi_window", args.jacobi_window is None or args.jacobi_window >= 1, "at least 1 when given")
    if args.jacobi_window is not None and args.decoding != "speculative_jacobi":
        usage_error("--jacobi_window sizes the window of --decoding speculative_jacobi; pass that decoding too.")
    check_flag(args, "jacobi_branches", args.jacobi_branches is None or args.jacobi_branches >= 0, ">= 0 when given")
    if args.jacobi_branches is not None and args.decoding != "speculative_jacobi":
        usage_error("--jacobi_branches is an option of --decoding speculative_jacobi; pass that decoding too.")
    if args.jacobi_branches and args.jacobi_window is not None and args.jacobi_window < 3:
        usage_error("--jacobi_branches needs a --jacobi_window of 3 or more (a window with a second draft).")
    check_rejection_flags(args.acceptance_rate, args.classifier, args.unconditional)


# The flags of examples/sample.py's completions: fields of `SamplingConfig` under the same names.
COMPLETION_FLAGS = ("completion_images", "num_prefix_rows", "completions_per_image")


def sampling_config(args: argparse.Namespace) -> SamplingConfig:
    """The [`~vit_vqgan_hf.evaluation.SamplingConfig`] of flags checked by [`check_sampling_args`]."""
    names = ("num_images_per_class", "unconditional", "batch_size", "guidance_scale", "temperature", "top_k", "top_p")
    config = {
        name: getattr(args, name)
        for name in (*names, "acceptance_rate", "seed", "decoding", "jacobi_window", "jacobi_branches")
    }
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
    settings["decoding"] = config.decoding
    if config.decoding == "speculative_jacobi":  # the window and the branches decide which images a seed gives
        settings["jacobi_window"] = config.jacobi_window or DEFAULT_JACOBI_WINDOW
        window = settings["jacobi_window"]
        settings["jacobi_branches"] = VimJacobiDecodingMixin.jacobi_num_branches(window, config.jacobi_branches)
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
    "add_sampling_args",
    "check_rejection_flags",
    "check_sampling_args",
    "load_image_classifier",
    "load_sampling_engine",
    "sampling_config",
    "sampling_settings",
]
