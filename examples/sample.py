# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Sample a class-balanced image set from a saved `VimPipeline`, e.g. 50 images of each of the 1000 ImageNet classes
for FID (the paper samples at temperature 1.0 without top-k / top-p or guidance: the defaults here).

    accelerate launch examples/sample.py --pipeline out/vim --num_images_per_class 50 --output_dir out/samples
    accelerate launch examples/sample.py --pipeline out/vim --num_images_per_class 4 --class_ids 1 207 980 \\
        --guidance_scale 2.0 --output_dir out/samples_cfg
    accelerate launch examples/sample.py --pipeline out/vim --unconditional --num_images 10000 --output_dir out/uncond
    # classifier rejection sampling, the paper's Table 6 (acceptance rate 0.5, an ImageNet ResNet-101)
    accelerate launch examples/sample.py --pipeline out/vim --num_images_per_class 50 --acceptance_rate 0.5 \\
        --classifier microsoft/resnet-101 --output_dir out/samples_rejection

Writes one PNG per image, `{class_id:04d}_{index:05d}.png` (unconditional: `{index:05d}.png`), then, on the main
process, `samples_{N}x{H}x{W}x3.npz` with `arr_0` (uint8, N x H x W x 3, in class order) and, for classes, `arr_1`
(the class ids): the layout of ADM's reference batches that FID tools read (examples/evaluate_generation.py too).

Image `(class, index)` is drawn with its own `torch.Generator` seeded from `(--seed, class, index)`, so the images
do not depend on the number of processes, the batch size or on being resumed: the (class, index) list is split into
disjoint slices, one per process, and images already in `--output_dir` are skipped (a rerun after an interruption
completes the set; PNGs are written to a temporary name first, so a half-written file is never taken for done).
`sample_settings.json` records the sampling settings; a rerun with different settings into the same folder fails.

With `--acceptance_rate r < 1` and a `--classifier` (any transformers image-classification model whose labels are
the VIM's classes), each class gets `ceil(N / r)` candidates and keeps the `N` the classifier gives the highest
probability of the class, numbered best first. Candidate `j` of a class uses image `(class, j)`'s generator, so the
candidates are the images of a run without rejection and the kept ones do not depend on the processes, the batch
size or resuming either; a class is ranked within one pipeline call, so the processes share out whole classes. Each
kept PNG carries its probability in a `classifier_score` text chunk; `classifier_scores.json` collects them.
"""

import argparse
import json
import logging
import os
import zipfile
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.PngImagePlugin
import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from tqdm.auto import tqdm

from vit_vqgan_hf import VimPipeline
from vit_vqgan_hf.cli import (
    check_launch,
    check_rejection_flags,
    load_pretrained,
    load_rejection_classifier,
    prepare_output_dir,
)
from vit_vqgan_hf.evaluation.classifier import classes_per_call


logger = get_logger(__name__, log_level="INFO")

SETTINGS_FILE = "sample_settings.json"
SCORES_FILE = "classifier_scores.json"
SCORE_KEY = "classifier_score"


def parse_args(input_args=None):
    parser = argparse.ArgumentParser(description="Sample a class-balanced image set from a VimPipeline.")
    parser.add_argument("--pipeline", required=True, help="Folder (or Hub id) of a `VimPipeline.save_pretrained`.")
    parser.add_argument("--output_dir", required=True, help="Where the PNGs and the .npz go.")
    parser.add_argument("--num_images_per_class", type=int, default=50, help="Images of each class.")
    parser.add_argument(
        "--class_ids",
        nargs="+",
        default=["all"],
        help="Class ids to sample, or `all` (the default) for every class of the transformer.",
    )
    parser.add_argument(
        "--unconditional", action="store_true", help="Sample unconditional images (the null token) instead."
    )
    parser.add_argument(
        "--num_images", type=int, default=None, help="Images to sample with --unconditional (default: 50000)."
    )
    parser.add_argument("--batch_size", type=int, default=16, help="Images per pipeline call and process.")
    parser.add_argument("--guidance_scale", type=float, default=1.0, help="Classifier-free guidance (1 = off).")
    parser.add_argument("--temperature", type=float, default=1.0, help="Sampling temperature.")
    parser.add_argument("--top_k", type=int, default=None, help="Sample among the k most likely tokens only.")
    parser.add_argument("--top_p", type=float, default=None, help="Nucleus sampling threshold.")
    parser.add_argument(
        "--acceptance_rate",
        type=float,
        default=None,
        help=(
            "Classifier rejection sampling (the paper's Table 6: 0.5): sample ceil(N / rate) candidates per class and "
            "keep the N that --classifier finds most typical of their class; 1.0 or none keeps every sample."
        ),
    )
    parser.add_argument(
        "--classifier",
        default=None,
        help=(
            "Image-classification model of --acceptance_rate (a transformers folder with its image processor, or a "
            "Hub id, e.g. microsoft/resnet-101 for ImageNet); its labels must be the VIM's classes, in order."
        ),
    )
    parser.add_argument("--seed", type=int, default=0, help="Base seed; image (class, index) gets its own seed.")
    parser.add_argument(
        "--dtype", default="float32", choices=["float32", "bfloat16"], help="Precision of the pipeline's models."
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help=(
            "Compile the transformer (torch.compile, fullgraph; CUDA graphs on a GPU) over a static key/value cache: "
            "one compilation per batch size, then cheaper steps where per-step overhead dominates (GPUs). It does "
            "not pay on a CPU."
        ),
    )
    parser.add_argument("--no_npz", action="store_true", help="Write the PNGs only, no .npz at the end.")
    args = parser.parse_args(input_args)

    if args.unconditional and args.class_ids != ["all"]:
        parser.error("--class_ids and --unconditional exclude each other.")
    if args.num_images is not None and not args.unconditional:
        parser.error("--num_images is for --unconditional; use --num_images_per_class with classes.")
    if args.class_ids != ["all"] and not all(class_id.isdigit() for class_id in args.class_ids):
        parser.error("--class_ids takes class ids (non-negative integers) or `all`.")
    for name in ("num_images_per_class", "batch_size", "num_images"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name} must be positive, got {getattr(args, name)}.")
    check_args(args)
    return args


def check_args(args):
    """Sanity checks of the sampling settings (the pipeline's own rules), before the pipeline is loaded."""
    if args.guidance_scale < 1:
        raise ValueError(f"--guidance_scale must be at least 1 (1 disables guidance), got {args.guidance_scale}.")
    if args.guidance_scale > 1 and args.unconditional:
        raise ValueError(
            f"--guidance_scale {args.guidance_scale} guides towards a class: it does not go with --unconditional."
        )
    if not args.temperature > 0:
        raise ValueError(f"--temperature must be > 0, got {args.temperature}.")
    if args.top_k is not None and args.top_k < 1:
        raise ValueError(f"--top_k must be at least 1 when given, got {args.top_k}.")
    if args.top_p is not None and not 0 < args.top_p <= 1:
        raise ValueError(f"--top_p must lie in (0, 1] when given, got {args.top_p}.")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0 (it seeds numpy's SeedSequence), got {args.seed}.")
    check_rejection_flags(args.acceptance_rate, args.classifier, args.unconditional)


def uses_rejection(args) -> bool:
    """Whether the run samples extra candidates and keeps the best by the classifier (1.0 keeps them all)."""
    return args.acceptance_rate is not None and args.acceptance_rate < 1


def image_seed(seed: int, class_id: int | None, index: int) -> int:
    """A seed of image `(class_id, index)` (class None: unconditional), independent of sharding and batching."""
    entropy = [seed, 0 if class_id is None else class_id + 1, index]
    high, low = np.random.SeedSequence(entropy).generate_state(2, dtype=np.uint32)
    return (int(high) << 31) | (int(low) >> 1)  # 63 bits: any torch.Generator takes it


def image_name(class_id: int | None, index: int) -> str:
    return f"{index:05d}.png" if class_id is None else f"{class_id:04d}_{index:05d}.png"


def sampling_plan(args, pipeline: VimPipeline) -> list[tuple[int | None, int]]:
    """Every image of the set as `(class_id, index)`, in class order."""
    num_classes = pipeline.transformer.config.num_classes
    if args.unconditional:
        return [(None, index) for index in range(args.num_images or 50_000)]
    if num_classes == 0:
        hint = " (and no --acceptance_rate: it ranks samples by their class)" if uses_rejection(args) else ""
        raise ValueError(f"The pipeline's transformer is unconditional: pass --unconditional{hint}.")
    class_ids = list(range(num_classes)) if args.class_ids == ["all"] else [int(c) for c in args.class_ids]
    unknown = [class_id for class_id in class_ids if class_id >= num_classes]
    if unknown:
        raise ValueError(f"--class_ids {unknown} are out of range: the transformer knows {num_classes} classes.")
    return [(class_id, index) for class_id in class_ids for index in range(args.num_images_per_class)]


def sampling_settings(args) -> dict:
    """The arguments that determine the images."""
    names = ("pipeline", "guidance_scale", "temperature", "top_k", "top_p", "seed", "dtype", "unconditional")
    settings = {name: getattr(args, name) for name in names}
    # With rejection, the kept images depend on the candidates per class too; 1.0 samples what no rejection does.
    rejection = uses_rejection(args)
    settings["acceptance_rate"] = args.acceptance_rate if rejection else 1.0
    settings["classifier"] = args.classifier if rejection else None
    settings["candidates_per_class"] = (
        VimPipeline.num_rejection_candidates(args.num_images_per_class, args.acceptance_rate) if rejection else None
    )
    return settings


def check_settings(settings: dict, output_dir: Path):
    """Refuse to mix images of other settings into a folder that recorded its settings."""
    path = output_dir / SETTINGS_FILE
    recorded = json.loads(path.read_text()) if path.exists() else settings
    # Folders written before rejection sampling existed record no rejection settings: they sampled without it.
    recorded = {"acceptance_rate": 1.0, "classifier": None, "candidates_per_class": None, **recorded}
    if recorded != settings:
        raise ValueError(
            f"{path} records other sampling settings ({recorded}) than this run ({settings}); use another "
            "--output_dir or the same settings."
        )


def sampling_options(args) -> dict:
    """The pipeline's sampling arguments."""
    return {name: getattr(args, name) for name in ("guidance_scale", "temperature", "top_k", "top_p")}


def write_images(items, images, output_dir: Path, accelerator: Accelerator, scores=None) -> int:
    """Write the images of `(class_id, index)` items not written yet as PNGs; returns how many were written."""
    written = 0
    for position, (item, image) in enumerate(zip(items, images)):
        path = output_dir / image_name(*item)
        if path.exists():  # a rejection call resamples whole classes; the images already written stay
            continue
        info = None
        if scores is not None:
            info = PIL.PngImagePlugin.PngInfo()
            info.add_text(SCORE_KEY, repr(float(scores[position])))
        temporary = path.with_name(f".{path.stem}.{accelerator.process_index}.tmp.png")
        PIL.Image.fromarray((image * 255).round().astype(np.uint8)).save(temporary, pnginfo=info)
        os.replace(temporary, path)
        written += 1
    return written


def sample_images(args, pipeline: VimPipeline, todo, output_dir: Path, accelerator: Accelerator) -> int:
    """Sample this process's images batch by batch and write each as a PNG; returns how many were written."""
    batches = [todo[start : start + args.batch_size] for start in range(0, len(todo), args.batch_size)]
    progress = tqdm(batches, desc="sampling", unit="batch", disable=not accelerator.is_local_main_process)
    written = 0
    for batch in progress:
        class_ids = [class_id for class_id, _ in batch]
        generator = [torch.Generator().manual_seed(image_seed(args.seed, *item)) for item in batch]
        images = pipeline(
            class_labels=None if args.unconditional else class_ids,
            num_images_per_label=len(batch) if args.unconditional else 1,
            generator=generator,
            output_type="np",
            **sampling_options(args),
        ).images
        written += write_images(batch, images, output_dir, accelerator)
    return written


def rejection_calls(args, plan, missing) -> list[list[int]]:
    """
    The classes of each rejection-sampling call that has images missing. Calls are cut from the whole class list, not
    from what is missing, so that a class meets the same batches whatever the processes or the resumed state.
    """
    class_ids = list(dict.fromkeys(class_id for class_id, _ in plan))
    num_candidates = VimPipeline.num_rejection_candidates(args.num_images_per_class, args.acceptance_rate)
    size = classes_per_call(num_candidates, args.batch_size)
    calls = [class_ids[start : start + size] for start in range(0, len(class_ids), size)]
    missing_classes = {class_id for class_id, _ in missing}
    return [call for call in calls if missing_classes.intersection(call)]


def sample_with_rejection(args, pipeline, classifier, calls, output_dir: Path, accelerator: Accelerator) -> int:
    """Sample, rank and keep the best candidates of this process's classes, call by call; returns the PNGs written."""
    num_candidates = VimPipeline.num_rejection_candidates(args.num_images_per_class, args.acceptance_rate)
    progress = tqdm(calls, desc="sampling", unit="call", disable=not accelerator.is_local_main_process)
    written = 0
    for class_ids in progress:
        # Candidate j of a class draws from image (class, j)'s generator: the candidates are the first images a run
        # without rejection samples, and the kept ones depend on (seed, class, N, rate) only, not on the processes,
        # the batch size or resuming (the pipeline ranks a class's candidates together, so calls hold whole classes).
        generator = [
            torch.Generator().manual_seed(image_seed(args.seed, class_id, candidate))
            for class_id in class_ids
            for candidate in range(num_candidates)
        ]
        output = pipeline(
            class_labels=class_ids,
            num_images_per_label=args.num_images_per_class,
            generator=generator,
            acceptance_rate=args.acceptance_rate,
            classifier=classifier,
            max_batch_size=args.batch_size,
            output_type="np",
            **sampling_options(args),
        )
        # The kept images come best first within each class: index 0 is the class's best candidate.
        items = [(class_id, index) for class_id in class_ids for index in range(args.num_images_per_class)]
        written += write_images(items, output.images, output_dir, accelerator, scores=output.scores.tolist())
    return written


def write_scores(settings: dict, plan, output_dir: Path) -> Path:
    """Collect the classifier scores that the kept PNGs carry into one JSON file (main process)."""
    scores = {}
    for item in plan:
        with PIL.Image.open(output_dir / image_name(*item)) as image:
            scores[image_name(*item)] = float(image.info[SCORE_KEY])
    names = ("acceptance_rate", "classifier", "candidates_per_class")
    path = output_dir / SCORES_FILE
    path.write_text(json.dumps({**{name: settings[name] for name in names}, "scores": scores}, indent=2) + "\n")
    return path


def write_npz(plan, output_dir: Path) -> Path:
    """Stack the PNGs of `plan` into an ADM-style .npz, through a memory-mapped .npy instead of RAM."""
    height, width = np.asarray(PIL.Image.open(output_dir / image_name(*plan[0]))).shape[:2]
    path = output_dir / f"samples_{len(plan)}x{height}x{width}x3.npz"
    stacked_path = output_dir / ".arr_0.npy"
    stacked = np.lib.format.open_memmap(stacked_path, mode="w+", dtype=np.uint8, shape=(len(plan), height, width, 3))
    for position, item in enumerate(tqdm(plan, desc="stacking", unit="image")):
        stacked[position] = np.asarray(PIL.Image.open(output_dir / image_name(*item)).convert("RGB"))
    stacked.flush()
    del stacked
    # np.savez's layout: one `<name>.npy` per array in a zip file, which np.load reads lazily.
    with zipfile.ZipFile(path, "w", allowZip64=True) as archive:
        archive.write(stacked_path, arcname="arr_0.npy")
        if plan[0][0] is not None:
            labels = np.array([class_id for class_id, _ in plan], dtype=np.int64)
            with archive.open("arr_1.npy", "w") as file:
                np.lib.format.write_array(file, labels)
    stacked_path.unlink()
    return path


def load_pipeline(args, accelerator: Accelerator) -> VimPipeline:
    """The pipeline in --dtype on this process's device, its transformer compiled with --compile."""
    dtype = torch.bfloat16 if args.dtype == "bfloat16" else torch.float32
    pipeline = load_pretrained(VimPipeline.from_pretrained, args.pipeline, dtype=dtype).to(accelerator.device)
    pipeline.set_progress_bar_config(disable=True)
    if args.compile:
        # The pipeline switches to its static cache for a compiled transformer, so every step has the same shapes.
        mode = "reduce-overhead" if accelerator.device.type == "cuda" else "default"
        pipeline.transformer.compile(mode=mode, fullgraph=True)
    return pipeline


def load_classifier(args, pipeline: VimPipeline, accelerator: Accelerator):
    """The classifier of rejection sampling (None without it), checked against the VIM's classes before sampling."""
    if not uses_rejection(args):
        if args.classifier is not None:
            logger.info("--acceptance_rate 1.0 keeps every sample: --classifier is not used.")
        return None
    return load_rejection_classifier(args.classifier, pipeline.transformer.config.num_classes, accelerator.device)


def main(args):
    """Sample the requested images per class, sharded over the processes, skipping the ones already written."""
    accelerator = Accelerator()
    check_launch(accelerator)
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    # On every process (a folder that exists is kept): an --output_dir that cannot be a folder fails on all of them.
    output_dir = prepare_output_dir(args.output_dir)

    pipeline = load_pipeline(args, accelerator)
    plan = sampling_plan(args, pipeline)
    settings = sampling_settings(args)
    check_settings(settings, output_dir)
    classifier = load_classifier(args, pipeline, accelerator)

    # Every process lists the missing images before any process writes one, so all see the same list.
    missing = [item for item in plan if not (output_dir / image_name(*item)).exists()]
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (output_dir / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")
    logger.info(f"{len(plan) - len(missing)} of {len(plan)} images exist; sampling {len(missing)}.")
    if classifier is None:
        todo = missing[accelerator.process_index :: accelerator.num_processes]
        written = sample_images(args, pipeline, todo, output_dir, accelerator)
    else:
        calls = rejection_calls(args, plan, missing)[accelerator.process_index :: accelerator.num_processes]
        written = sample_with_rejection(args, pipeline, classifier, calls, output_dir, accelerator)
    logger.info(f"process {accelerator.process_index}: wrote {written} images", main_process_only=False)

    accelerator.wait_for_everyone()
    if accelerator.is_main_process and classifier is not None:
        logger.info(f"wrote {write_scores(settings, plan, output_dir)}")
    if accelerator.is_main_process and not args.no_npz:
        logger.info(f"wrote {write_npz(plan, output_dir)}")
    accelerator.end_training()


if __name__ == "__main__":
    main(parse_args())
