# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Evaluate generated images: FID, Inception Score, KID and k-NN precision/recall, against a reference image set or
saved reference statistics, with the protocol (sample count, class balance, seeds, sampling settings, feature network
and reference checksums) recorded in the results.

Samples come from a folder of images or an `.npz` (`arr_0`, uint8 NHWC, as written by examples/sample.py), or from a
VIM pipeline, sampled in process by examples/sample.py's engine with its flags (`--num_images_per_class` per class, or
`--unconditional --num_images`; optionally the best `--num_images_per_class` of `ceil(N / --acceptance_rate)`
candidates per class by a `--classifier`): the same settings give the very images sample.py writes, whatever the
processes or the batch size (`--images_per_class` and `--num_samples` are older spellings of the count flags):

    accelerate launch examples/evaluate_generation.py --pipeline outputs/vim --num_images_per_class 50 \\
        --reference_stats outputs/imagenet_train_stats.npz \\
        --inception_model path/to/pt_inception-2015-12-05-6726825d.pth --output_dir outputs/eval_vim

    # classifier rejection sampling, the paper's Table 6 row at acceptance rate 0.5 (an ImageNet ResNet-101)
    accelerate launch examples/evaluate_generation.py --pipeline outputs/vim --num_images_per_class 50 \\
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
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger

from vit_vqgan_hf import cli
from vit_vqgan_hf.evaluation import (
    GenerationEvaluator,
    ReferenceStatistics,
    build_results,
    load_fid_inception,
    open_image_set,
    save_results,
)
from vit_vqgan_hf.evaluation.frechet import describe_feature_network
from vit_vqgan_hf.evaluation.image_sets import class_balance, resize_description
from vit_vqgan_hf.evaluation.sampling import SETTINGS_FILE


logger = get_logger(__name__)

METRICS = ("fid", "inception_score", "kid", "precision_recall")


def add_image_args(parser: argparse.ArgumentParser) -> None:
    """The samples (a pipeline, or images) and the reference (images, or saved statistics)."""
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
        "--resolution",
        type=int,
        default=None,
        help="Resize (shorter side, bicubic) and center-crop images of folders/.npz to this size; required for "
        "folders of mixed sizes.",
    )
    parser.add_argument(
        "--skip_unreadable_images", action="store_true", help="Leave out (and record) unreadable files of folders."
    )


def add_metric_args(parser: argparse.ArgumentParser) -> None:
    """The feature network, the metrics and their settings."""
    parser.add_argument(
        "--inception_model",
        required=True,
        help="FID InceptionV3 weights: pytorch-fid's pt_inception-2015-12-05-6726825d.pth, a folder or a Hub id.",
    )
    parser.add_argument(
        "--metrics", nargs="+", choices=METRICS, default=list(METRICS), help="Metrics to compute (default: all)."
    )
    parser.add_argument("--kid_subsets", type=int, default=100, help="Number of KID subsets.")
    parser.add_argument("--kid_subset_size", type=int, default=1000, help="Samples per KID subset.")
    parser.add_argument("--precision_recall_k", type=int, default=3, help="k of the k-NN precision/recall.")
    parser.add_argument("--inception_score_splits", type=int, default=10, help="Splits of the Inception Score.")
    parser.add_argument("--task", default=None, help="Task name in the results (default: inferred).")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Evaluate generated images (FID, IS, KID, precision/recall).")
    add_image_args(parser)
    add_metric_args(parser)
    parser.add_argument("--batch_size", type=int, default=50, help="Images per process and step (also for sampling).")
    parser.add_argument("--seed", type=int, default=0, help="Base seed of sampling, KID subsets and the IS shuffle.")
    parser.add_argument("--dataloader_num_workers", type=int, default=0, help="Data loading worker processes.")
    parser.add_argument("--output_dir", required=True, help="Where results.json is written.")
    cli.add_sampling_args(parser)
    args = parser.parse_args(argv)
    check_args(args)
    return args


def check_args(args):
    """Sanity checks with messages that say which flag to change, before any network or image is loaded."""
    for name in ("max_reference_features", "kid_subsets", "precision_recall_k", "inception_score_splits"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be at least 1, got {getattr(args, name)}.")
    if args.kid_subset_size < 2:
        raise ValueError(
            f"--kid_subset_size must be at least 2 (KID's unbiased estimate), got {args.kid_subset_size}."
        )
    if args.resolution is not None and args.resolution < 1:
        raise ValueError(f"--resolution must be at least 1 when given, got {args.resolution}.")
    if args.dataloader_num_workers < 0:
        raise ValueError(
            f"--dataloader_num_workers must be at least 0 (0: load in the main process), got "
            f"{args.dataloader_num_workers}."
        )
    if args.acceptance_rate is not None and args.pipeline is None:
        raise ValueError(
            "--acceptance_rate samples from --pipeline; samples from --samples were selected when they were made "
            "(examples/sample.py --acceptance_rate records its rate in sample_settings.json)."
        )
    cli.check_sampling_args(args)
    if args.save_reference_stats is not None and args.reference is None:
        raise ValueError(
            "--save_reference_stats saves the statistics of --reference images; with --reference_stats there is "
            "nothing to compute. Pass --reference, or leave out --save_reference_stats."
        )


def prepare_output_paths(args) -> None:
    """Create --output_dir and the folder of --save_reference_stats, or fail with the flag to change (main process)."""
    cli.prepare_output_dir(args.output_dir)
    if args.save_reference_stats is not None:
        stats = Path(args.save_reference_stats)
        if stats.suffix != ".npz":  # the file ReferenceStatistics.save writes
            stats = stats.with_name(stats.name + ".npz")
        if stats.is_dir():
            raise ValueError(
                f"--save_reference_stats {args.save_reference_stats!r} is a folder ({str(stats)!r}). Expected the "
                "path of an .npz file."
            )
        cli.prepare_output_dir(stats.parent, flag="--save_reference_stats (its folder)")


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


def sample_from_pipeline(args, evaluator, accelerator):
    """
    Features of the images examples/sample.py samples with the same flags: the engine's calls, shared out over the
    processes; every process takes part in every gather, also in rounds where it has no images.
    """
    engine = cli.load_sampling_engine(args, accelerator.device)
    for call in engine.calls(accelerator.process_index, accelerator.num_processes):
        sampled = engine.sample(call)
        evaluator.update(sampled.images.to(accelerator.device), sampled.labels, variable_batch_sizes=True)
    config = engine.config
    settings = {
        **cli.sampling_settings(args),
        "pipeline_class": type(engine.pipeline).__name__,
        "num_images_per_class": None if config.unconditional else config.num_images_per_class,
        "classes": None if config.unconditional else config.class_ids or "all",
        "num_images": len(engine.plan),
        "batch_size": config.batch_size,
        "rejection_sampling": "none (acceptance rate 1.0)",
    }
    if engine.classifier is not None:
        settings["rejection_sampling"] = {
            "candidates_per_class": config.num_candidates,
            "kept": "the num_images_per_class candidates of each class with the highest classifier probability",
            "classifier": engine.classifier.describe(),
        }
    seeds = {
        "seed": args.seed,
        "sampling": engine.describe_seeds(),
        "kid_subsets_and_inception_score_shuffle": args.seed,
    }
    size = engine.pipeline.vqgan.config.image_size
    samples = {
        "source": {"kind": "pipeline", "path": args.pipeline},
        "num_images": len(engine.plan),
        "image_size": size,
    }
    return samples, settings, seeds


def load_samples(args, evaluator, accelerator):
    """Features of every sample, from a pipeline or from files; returns the samples' description, settings, seeds."""
    if args.pipeline is not None:
        return sample_from_pipeline(args, evaluator, accelerator)
    image_set = open_image_set(args.samples, args.resolution, args.skip_unreadable_images)
    add_image_set(image_set, evaluator, accelerator, args, real=False)
    # examples/sample.py records its settings (seed included) next to the PNGs and the .npz.
    samples = Path(args.samples)
    settings_file = (samples if samples.is_dir() else samples.parent) / SETTINGS_FILE
    if settings_file.is_file():
        settings = {"source": str(settings_file), **json.loads(settings_file.read_text())}
    else:
        settings = {"source": f"pre-generated samples without a {SETTINGS_FILE}: settings unknown"}
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
    cli.check_launch(accelerator)
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
    with cli.command_line_errors():
        args = parse_args()
        # The library's errors name its arguments; the user reads the flags.
        with cli.in_flag_terms(args):
            main(args)
