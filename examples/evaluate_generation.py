# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Evaluate generated images: FID, Inception Score, KID and k-NN precision/recall, against a reference image set or
saved reference statistics, with the protocol (sample count, class balance, seeds, sampling settings, feature network
and reference checksums) recorded in the results.

Samples come from a VIM pipeline (class-balanced, `--images_per_class` per class, seeded per sample; optionally the
best `--images_per_class` of `ceil(images_per_class / --acceptance_rate)` candidates per class by a `--classifier`), a
folder of images or an `.npz` (`arr_0`, uint8 NHWC, as written by examples/sample.py):

    accelerate launch examples/evaluate_generation.py --pipeline outputs/vim --images_per_class 50 \\
        --reference_stats outputs/imagenet_train_stats.npz \\
        --inception_model path/to/pt_inception-2015-12-05-6726825d.pth --output_dir outputs/eval_vim

    # classifier rejection sampling, the paper's Table 6 row at acceptance rate 0.5 (an ImageNet ResNet-101)
    accelerate launch examples/evaluate_generation.py --pipeline outputs/vim --images_per_class 50 \\
        --acceptance_rate 0.5 --classifier microsoft/resnet-101 --reference_stats outputs/imagenet_train_stats.npz \\
        --inception_model path/to/pt_inception-2015-12-05-6726825d.pth --output_dir outputs/eval_vim_rejection

    # reference statistics, once: features of a reference image set, saved for reuse
    accelerate launch examples/evaluate_generation.py --samples samples.npz --reference path/to/train_images \\
        --resolution 256 --save_reference_stats outputs/imagenet_train_stats.npz \\
        --inception_model path/to/pt_inception-2015-12-05-6726825d.pth --output_dir outputs/eval_samples

Writes `results.json` to `--output_dir`. Any number of processes gives the numbers of one.
"""

import argparse
import json
import logging
import math
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.logging import get_logger

from vit_vqgan_hf import VimPipeline
from vit_vqgan_hf.cli import (
    check_launch,
    check_rejection_flags,
    load_pretrained,
    load_rejection_classifier,
    prepare_output_dir,
)
from vit_vqgan_hf.evaluation import (
    GenerationEvaluator,
    ReferenceStatistics,
    build_results,
    load_fid_inception,
    open_image_set,
    save_results,
)
from vit_vqgan_hf.evaluation.classifier import classes_per_call
from vit_vqgan_hf.evaluation.frechet import describe_feature_network
from vit_vqgan_hf.evaluation.image_sets import class_balance, resize_description


logger = get_logger(__name__)

METRICS = ("fid", "inception_score", "kid", "precision_recall")
# Written by examples/sample.py next to its samples.
SAMPLE_SETTINGS_FILE = "sample_settings.json"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Evaluate generated images (FID, IS, KID, precision/recall).")
    samples = parser.add_mutually_exclusive_group(required=True)
    samples.add_argument("--pipeline", help="Folder (or Hub id) of a `VimPipeline.save_pretrained` to sample from.")
    samples.add_argument("--samples", help="Folder of sample images, or an .npz with `arr_0` (uint8, N x H x W x 3).")
    reference = parser.add_mutually_exclusive_group(required=True)
    reference.add_argument("--reference", help="Folder of reference images, or an .npz with `arr_0`.")
    reference.add_argument("--reference_stats", help="Reference statistics (.npz) saved by --save_reference_stats.")
    parser.add_argument(
        "--save_reference_stats", default=None, help="Save the statistics of --reference images to this .npz."
    )
    parser.add_argument(
        "--reference_stats_without_features",
        action="store_true",
        help="Save only mu and sigma (FID), not the features that KID and precision/recall need.",
    )
    parser.add_argument(
        "--max_reference_features",
        type=int,
        default=50000,
        help="Reference features kept (and saved) for KID and precision/recall: a seeded uniform subset when the "
        "reference set is larger (FID always uses all reference images).",
    )
    parser.add_argument(
        "--allow_unverified_reference_stats",
        action="store_true",
        help="Accept reference statistics that do not record their feature network (e.g. pytorch-fid's files).",
    )
    parser.add_argument(
        "--inception_model",
        required=True,
        help="FID InceptionV3 weights: pytorch-fid's pt_inception-2015-12-05-6726825d.pth, a folder or a Hub id.",
    )
    parser.add_argument(
        "--resolution",
        type=int,
        default=None,
        help="Resize (shorter side, bicubic) and center-crop images of folders/.npz to this size; required for "
        "folders of mixed sizes.",
    )
    parser.add_argument(
        "--skip_unreadable_images", action="store_true", help="Leave out (and record) unreadable files of folders."
    )
    parser.add_argument("--batch_size", type=int, default=50, help="Images per process and step (also for sampling).")
    parser.add_argument("--images_per_class", type=int, default=50, help="Pipeline samples per class.")
    parser.add_argument(
        "--class_ids", type=int, nargs="*", default=None, help="Classes to sample (default: all of the model's)."
    )
    parser.add_argument(
        "--unconditional",
        action="store_true",
        help="Sample from the null class token (models trained with label dropout, or unconditional models).",
    )
    parser.add_argument("--num_samples", type=int, default=50000, help="Number of unconditional samples.")
    parser.add_argument("--temperature", type=float, default=1.0, help="Sampling temperature (the paper: 1.0).")
    parser.add_argument("--top_k", type=int, default=None, help="Top-k sampling (the paper: none).")
    parser.add_argument("--guidance_scale", type=float, default=None, help="Classifier-free guidance scale, if any.")
    parser.add_argument(
        "--acceptance_rate",
        type=float,
        default=None,
        help="Classifier rejection sampling with --pipeline (the paper's Table 6: 0.5): keep the --images_per_class "
        "best of ceil(images_per_class / rate) candidates per class by --classifier; 1.0 or none keeps every sample.",
    )
    parser.add_argument(
        "--classifier",
        default=None,
        help="Image-classification model of --acceptance_rate (a transformers folder with its image processor, or a "
        "Hub id, e.g. microsoft/resnet-101 for ImageNet); its labels must be the VIM's classes, in order.",
    )
    parser.add_argument("--seed", type=int, default=0, help="Base seed of sampling, KID subsets and the IS shuffle.")
    parser.add_argument(
        "--metrics", nargs="+", choices=METRICS, default=list(METRICS), help="Metrics to compute (default: all)."
    )
    parser.add_argument("--kid_subsets", type=int, default=100, help="Number of KID subsets.")
    parser.add_argument("--kid_subset_size", type=int, default=1000, help="Samples per KID subset.")
    parser.add_argument("--precision_recall_k", type=int, default=3, help="k of the k-NN precision/recall.")
    parser.add_argument("--inception_score_splits", type=int, default=10, help="Splits of the Inception Score.")
    parser.add_argument("--task", default=None, help="Task name in the results (default: inferred).")
    parser.add_argument("--dataloader_num_workers", type=int, default=0, help="Data loading worker processes.")
    parser.add_argument("--output_dir", required=True, help="Where results.json is written.")
    args = parser.parse_args(argv)
    check_args(args)
    return args


def check_args(args):
    """Sanity checks with messages that say which flag to change, before any network or image is loaded."""
    positive = ("batch_size", "images_per_class", "num_samples", "max_reference_features", "kid_subsets")
    positive += ("precision_recall_k", "inception_score_splits")
    for name in positive:
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be at least 1, got {getattr(args, name)}.")
    if args.kid_subset_size < 2:
        raise ValueError(
            f"--kid_subset_size must be at least 2 (KID's unbiased estimate), got {args.kid_subset_size}."
        )
    for name in ("resolution", "top_k"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ValueError(f"--{name} must be at least 1 when given, got {getattr(args, name)}.")
    if not args.temperature > 0:
        raise ValueError(f"--temperature must be > 0, got {args.temperature}.")
    if args.guidance_scale is not None and args.guidance_scale < 1:
        raise ValueError(
            f"--guidance_scale must be at least 1 (1 disables guidance) when given, got {args.guidance_scale}."
        )
    if args.guidance_scale is not None and args.guidance_scale > 1 and args.unconditional:
        raise ValueError(
            f"--guidance_scale {args.guidance_scale} guides towards a class: it does not go with --unconditional."
        )
    negative = [class_id for class_id in args.class_ids or [] if class_id < 0]
    if negative:
        raise ValueError(f"--class_ids must be class ids (non-negative integers), got {negative}.")
    if args.dataloader_num_workers < 0:
        raise ValueError(
            f"--dataloader_num_workers must be at least 0 (0: load in the main process), got "
            f"{args.dataloader_num_workers}."
        )
    check_rejection_args(args)
    if args.save_reference_stats is not None and args.reference is None:
        raise ValueError(
            "--save_reference_stats saves the statistics of --reference images; with --reference_stats there is "
            "nothing to compute. Pass --reference, or leave out --save_reference_stats."
        )


def check_rejection_args(args):
    """The rejection-sampling flags: a rate in (0, 1], a classifier exactly when it rejects, class-conditional samples."""
    if args.acceptance_rate is not None and args.pipeline is None:
        raise ValueError(
            "--acceptance_rate samples from --pipeline; samples from --samples were selected when they were made "
            "(examples/sample.py --acceptance_rate records its rate in sample_settings.json)."
        )
    check_rejection_flags(args.acceptance_rate, args.classifier, args.unconditional)


def prepare_output_paths(args) -> None:
    """Create --output_dir and the folder of --save_reference_stats, or fail with the flag to change (main process)."""
    prepare_output_dir(args.output_dir)
    if args.save_reference_stats is not None:
        stats = Path(args.save_reference_stats)
        if stats.suffix != ".npz":  # the file ReferenceStatistics.save writes
            stats = stats.with_name(stats.name + ".npz")
        if stats.is_dir():
            raise ValueError(
                f"--save_reference_stats {args.save_reference_stats!r} is a folder ({str(stats)!r}). Expected the "
                "path of an .npz file."
            )
        prepare_output_dir(stats.parent, flag="--save_reference_stats (its folder)")


def add_image_set(image_set, evaluator, accelerator, args, real: bool) -> None:
    """Features of every image of a folder or .npz, gathered in order."""
    dataloader = torch.utils.data.DataLoader(
        image_set, batch_size=args.batch_size, shuffle=False, num_workers=args.dataloader_num_workers
    )
    for batch in accelerator.prepare(dataloader):
        evaluator.update(batch["images"], batch["labels"], real=real)


def load_reference(args, evaluator, accelerator):
    """Reference statistics, loaded from a file or computed from images (and saved when asked), and their description."""
    if args.reference_stats is not None:
        statistics = ReferenceStatistics.load(args.reference_stats)
        statistics.check_feature_network(
            describe_feature_network(evaluator.feature_network), args.allow_unverified_reference_stats
        )
        return statistics, statistics.describe()
    image_set = open_image_set(args.reference, args.resolution, args.skip_unreadable_images)
    add_image_set(image_set, evaluator, accelerator, args, real=True)
    if not accelerator.is_main_process:
        return None, None
    statistics = evaluator.reference_statistics(image_set.describe())
    description = {"kind": "images", **image_set.describe(), "saved_statistics": None}
    description["statistics_sha256"] = statistics.statistics_sha256()
    description["features_subset"] = statistics.metadata.get("features_subset")
    if args.save_reference_stats is not None:
        file_sha256 = statistics.save(
            args.save_reference_stats, include_features=not args.reference_stats_without_features
        )
        description["saved_statistics"] = {"path": statistics.path, "file_sha256": file_sha256}
        logger.info(f"saved reference statistics to {statistics.path} (sha256 {file_sha256})")
    return statistics, description


def _pipeline_images_to_uint8(images) -> torch.Tensor:
    """`output_type="pt"` (float NCHW in [0, 1]) or `"np"` (float NHWC) images -> uint8 NCHW, rounded as PNGs are."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images).permute(0, 3, 1, 2)
    return (images.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8)


def sampling_plan(args, pipeline) -> tuple[list[int], dict]:
    """Class label of every sample (-1 for unconditional sampling), in order, and the sampling settings to record."""
    num_classes = int(getattr(pipeline.transformer.config, "num_classes", 0) or 0)
    conditional = num_classes > 0 and not args.unconditional
    if conditional:
        class_ids = args.class_ids if args.class_ids else list(range(num_classes))
        labels = [class_id for class_id in class_ids for _ in range(args.images_per_class)]
    else:
        class_ids, labels = None, [-1] * args.num_samples
    settings = {
        "pipeline": args.pipeline,
        "pipeline_class": type(pipeline).__name__,
        "conditional": conditional,
        "images_per_class": args.images_per_class if conditional else None,
        "classes": "all" if conditional and not args.class_ids else class_ids,
        "num_samples": len(labels),
        "temperature": args.temperature,
        "top_k": args.top_k,
        "top_p": None,
        "guidance_scale": args.guidance_scale,
        "batch_size": args.batch_size,
        "acceptance_rate": args.acceptance_rate or 1.0,
        "rejection_sampling": "none (acceptance rate 1.0)",
    }
    return labels, settings


def load_classifier(args, pipeline, accelerator, settings: dict):
    """The classifier of rejection sampling (None without it), checked against the VIM and recorded in `settings`."""
    if args.acceptance_rate is None or args.acceptance_rate == 1:
        return None
    classifier = load_rejection_classifier(
        args.classifier, pipeline.transformer.config.num_classes, accelerator.device
    )
    settings["rejection_sampling"] = {
        "candidates_per_class": VimPipeline.num_rejection_candidates(args.images_per_class, args.acceptance_rate),
        "kept": "the images_per_class candidates of each class with the highest classifier probability of the class",
        "classifier": classifier.describe(),
    }
    return classifier


def sampling_jobs(args, labels: list[int], conditional: bool, classifier) -> list[tuple[list[int], range, dict]]:
    """
    The pipeline calls, in sample order: the labels of the samples each returns, the seed offsets of its generators
    (one per sampled image) and its arguments. With rejection a call holds whole classes, whose candidates it ranks.
    """
    if classifier is None:
        jobs = []
        for start in range(0, len(labels), args.batch_size):
            batch = labels[start : start + args.batch_size]
            request = {"class_labels": batch if conditional else None}
            if not conditional:
                request["num_images_per_label"] = len(batch)
            jobs.append((batch, range(start, start + len(batch)), request))
        return jobs
    num_candidates = VimPipeline.num_rejection_candidates(args.images_per_class, args.acceptance_rate)
    class_ids = labels[:: args.images_per_class]
    per_call = classes_per_call(num_candidates, args.batch_size)
    jobs = []
    for start in range(0, len(class_ids), per_call):
        call = class_ids[start : start + per_call]
        request = {"class_labels": call, "num_images_per_label": args.images_per_class, "classifier": classifier}
        request.update(acceptance_rate=args.acceptance_rate, max_batch_size=args.batch_size)
        # Candidate i of the class-ordered candidate list draws seed + i: without rejection, the samples' own rule.
        seeds = range(start * num_candidates, (start + len(call)) * num_candidates)
        jobs.append(([class_id for class_id in call for _ in range(args.images_per_class)], seeds, request))
    return jobs


def sample_from_pipeline(args, evaluator, accelerator):
    """Sample calls round-robin over processes; sampled image i draws from its own generator seeded `seed + i`."""
    pipeline = load_pretrained(VimPipeline.from_pretrained, args.pipeline).to(accelerator.device)
    pipeline.set_progress_bar_config(disable=True)
    labels, settings = sampling_plan(args, pipeline)
    classifier = load_classifier(args, pipeline, accelerator, settings)
    jobs = sampling_jobs(args, labels, settings["conditional"], classifier)
    options = {"temperature": args.temperature, "top_k": args.top_k, "guidance_scale": args.guidance_scale or 1.0}
    # Every process takes part in every gather, also in the last round where some have no call left.
    for round_index in range(math.ceil(len(jobs) / accelerator.num_processes)):
        job_index = round_index * accelerator.num_processes + accelerator.process_index
        batch_labels, seeds, request = jobs[job_index] if job_index < len(jobs) else ([], range(0), {})
        images = torch.zeros(0, 3, 1, 1, dtype=torch.uint8)
        if batch_labels:
            # One generator per sampled image: a sample does not depend on the batch size or the number of processes.
            generators = [torch.Generator(device=accelerator.device).manual_seed(args.seed + i) for i in seeds]
            output = pipeline(**request, generator=generators, output_type="pt", **options)
            images = _pipeline_images_to_uint8(output.images)
        evaluator.update(
            images.to(accelerator.device), torch.tensor(batch_labels, dtype=torch.long), variable_batch_sizes=True
        )
    sampled = "sample i of the class-ordered plan"
    if classifier is not None:
        per_class = settings["rejection_sampling"]["candidates_per_class"]
        sampled = f"candidate i of the class-ordered candidates ({per_class} per class)"
    seeds = {
        "seed": args.seed,
        "sampling": f"{sampled} draws from torch.Generator(device).manual_seed({args.seed} + i)",
        "kid_subsets_and_inception_score_shuffle": args.seed,
    }
    size = pipeline.vqgan.config.image_size
    samples = {"source": {"kind": "pipeline", "path": args.pipeline}, "num_images": len(labels), "image_size": size}
    return samples, settings, seeds


def load_samples(args, evaluator, accelerator):
    """Features of every sample, from a pipeline or from files; returns the samples' description, settings, seeds."""
    if args.pipeline is not None:
        return sample_from_pipeline(args, evaluator, accelerator)
    image_set = open_image_set(args.samples, args.resolution, args.skip_unreadable_images)
    add_image_set(image_set, evaluator, accelerator, args, real=False)
    # examples/sample.py records its settings (seed included) next to the PNGs and the .npz.
    samples = Path(args.samples)
    settings_file = (samples if samples.is_dir() else samples.parent) / SAMPLE_SETTINGS_FILE
    if settings_file.is_file():
        settings = {"source": str(settings_file), **json.loads(settings_file.read_text())}
    else:
        settings = {"source": f"pre-generated samples without a {SAMPLE_SETTINGS_FILE}: settings unknown"}
    seeds = {
        "sampling": settings.get("seed", "unknown (see sampling)"),
        "kid_subsets_and_inception_score_shuffle": args.seed,
    }
    return image_set.describe(), settings, seeds


def write_results(args, evaluator, reference_description, samples, sampling, seeds, values, skipped):
    """Save results.json (main process)."""
    balance = class_balance(evaluator.sample_labels)
    task = args.task or (
        "class-conditional-image-generation" if balance.get("labelled") else "unconditional-image-generation"
    )
    results = build_results(
        task,
        values,
        num_samples=evaluator.samples.num_samples,
        class_balance=balance,
        image_size=args.resolution or samples.get("image_size"),
        resize=resize_description(args.resolution),
        feature_network=describe_feature_network(evaluator.feature_network),
        reference=reference_description,
        seeds=seeds,
        sampling=sampling,
        skipped=skipped,
        model={"path": args.pipeline or args.samples},
        data=samples,
        settings={
            "metrics": list(args.metrics),
            "kid_subsets": args.kid_subsets,
            "kid_subset_size": args.kid_subset_size,
            "precision_recall_k": args.precision_recall_k,
            "inception_score_splits": args.inception_score_splits,
            "batch_size_per_process": args.batch_size,
        },
    )
    return save_results(results, Path(args.output_dir) / "results.json"), results


def main(args, feature_network: torch.nn.Module | None = None):
    """Run the evaluation; `feature_network` replaces `--inception_model` (tests pass small random networks)."""
    accelerator = Accelerator()
    check_launch(accelerator)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    if accelerator.is_main_process:
        # Before any compute: output paths that cannot be written fail now, not when the results are saved.
        prepare_output_paths(args)
    if feature_network is None:
        feature_network = load_fid_inception(args.inception_model)
    evaluator = GenerationEvaluator(
        feature_network.to(accelerator.device),
        accelerator=accelerator,
        max_reference_features=args.max_reference_features,
        seed=args.seed,
    )
    reference, reference_description = load_reference(args, evaluator, accelerator)
    samples, sampling, seeds = load_samples(args, evaluator, accelerator)
    path = None
    if accelerator.is_main_process:
        values, skipped = evaluator.compute(
            reference,
            allow_unverified_reference=args.allow_unverified_reference_stats,
            metrics=tuple(args.metrics),
            kid_subsets=args.kid_subsets,
            kid_subset_size=args.kid_subset_size,
            inception_score_splits=args.inception_score_splits,
            precision_recall_k=args.precision_recall_k,
            seed=args.seed,
        )
        path, results = write_results(
            args, evaluator, reference_description, samples, sampling, seeds, values, skipped
        )
        logger.info(f"wrote {path}: " + ", ".join(f"{key}={value:.4g}" for key, value in values.items()))
        for name, reason in skipped.items():
            logger.info(f"skipped {name}: {reason}")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return path


if __name__ == "__main__":
    main(parse_args())
