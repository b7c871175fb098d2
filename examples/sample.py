# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Sample a class-balanced image set from a saved `VimPipeline`, e.g. 50 images of each of the 1000 ImageNet classes
for FID (the paper samples at temperature 1.0 without top-k / top-p or guidance: the defaults here), or complete the
images of a folder from their top rows of tokens (`--completion_images`, below).

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

Sampling is `vit_vqgan_hf.evaluation.SamplingEngine`'s, with the flags of examples/evaluate_generation.py, so that
`evaluate_generation.py --pipeline` with the same settings evaluates these very images. Image `(class, index)` is
drawn with its own `torch.Generator` seeded from `(--seed, class, index)`, so the images do not depend on the number
of processes, the batch size or on being resumed: the processes share out the images in disjoint slices, and images
already in `--output_dir` are skipped (a rerun after an interruption completes the set; PNGs are written to a
temporary name first, so a half-written file is never taken for done). `sample_settings.json` records the sampling
settings; a rerun with different settings into the same folder fails.

With `--acceptance_rate r < 1` and a `--classifier` (any transformers image-classification model whose labels are
the VIM's classes), each class gets `ceil(N / r)` candidates and keeps the `N` the classifier gives the highest
probability of the class, numbered best first. Candidate `j` of a class uses image `(class, j)`'s generator, so the
candidates are the images of a run without rejection and the kept ones do not depend on the processes, the batch
size or resuming either; a class is ranked within one pipeline call, so the processes share out whole classes. Each
kept PNG carries its probability in a `classifier_score` text chunk; `classifier_scores.json` collects them.

Image completion: `--completion_images DIR` completes every image under DIR (searched recursively; unreadable files
are skipped and counted) instead of sampling whole images: the top `--num_prefix_rows` rows of its tokens (default:
half the grid) are kept and VIM writes the rest, `--completions_per_image` times (default 1) under each of its
classes. The classes: with `--unconditional`, none (the null token); with `--class_ids`, each of those; otherwise the
image's class folder (the imagefolder layout `DIR/<class name>/<image>`, names as in the transformer's `id2label`).

    accelerate launch examples/sample.py --pipeline out/vim --completion_images photos/ --num_prefix_rows 16 \
        --completions_per_image 4 --output_dir out/completions

Completion `index` of image `DIR/a/b.png` under class `c` is `a/b_{c:04d}_{index:05d}.png` (unconditional:
`a/b_{index:05d}.png`) in `--output_dir`, next to `a/b_input.png`, the input as the tokenizer sees it (resized and
cropped by the tokenizer's image processor). Its generator is seeded from (`--seed`, the image's name, class, index),
so completions follow the same sharding and resume rules as samples. `--num_images_per_class`, `--num_images` and
`--acceptance_rate` do not apply to completions.
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
from accelerate import Accelerator
from accelerate.logging import get_logger
from tqdm.auto import tqdm

from vit_vqgan_hf.cli import (
    add_sampling_args,
    check_launch,
    check_sampling_args,
    in_flag_terms,
    load_sampling_engine,
    prepare_output_dir,
    sampling_settings,
)
from vit_vqgan_hf.evaluation.sampling import SETTINGS_FILE, SampledImages
from vit_vqgan_hf.utils.errors import command_line_errors
from vit_vqgan_hf.utils.file_writes import report_write_errors


logger = get_logger(__name__, log_level="INFO")

SCORES_FILE = "classifier_scores.json"
SCORE_KEY = "classifier_score"


def parse_args(input_args=None):
    parser = argparse.ArgumentParser(
        description="Sample a class-balanced image set, or completions, from a VimPipeline."
    )
    parser.add_argument("--pipeline", required=True, help="Folder (or Hub id) of a `VimPipeline.save_pretrained`.")
    parser.add_argument("--output_dir", required=True, help="Where the PNGs and the .npz go.")
    parser.add_argument("--batch_size", type=int, default=16, help="Images per pipeline call and process.")
    parser.add_argument("--seed", type=int, default=0, help="Base seed; image (class, index) gets its own seed.")
    parser.add_argument("--no_npz", action="store_true", help="Write the PNGs only, no .npz at the end.")
    add_sampling_args(parser)
    completion = parser.add_argument_group("Image completion")
    completion.add_argument(
        "--completion_images", default=None, help="A folder of images to complete instead of sampling whole images."
    )
    completion.add_argument(
        "--num_prefix_rows", type=int, default=None, help="Rows of tokens kept from each image (default: half)."
    )
    completion.add_argument(
        "--completions_per_image", type=int, default=1, help="Completions of each image under each of its classes."
    )
    args = parser.parse_args(input_args)
    check_sampling_args(args, parser)
    check_completion_args(args, parser)
    return args


def check_completion_args(args, parser):
    """Refuse completion flags without `--completion_images`, and sampling flags that do not apply to completions."""
    if args.completion_images is None:
        if args.num_prefix_rows is not None or args.completions_per_image != 1:
            parser.error("--num_prefix_rows and --completions_per_image need --completion_images.")
        return
    if args.num_prefix_rows is not None and args.num_prefix_rows < 0:
        parser.error(f"--num_prefix_rows must be at least 0, got {args.num_prefix_rows}.")
    if args.completions_per_image < 1:
        parser.error(f"--completions_per_image must be positive, got {args.completions_per_image}.")
    if args.num_images is not None:
        parser.error("--num_images counts whole images; --completion_images completes every image of its folder.")
    if args.acceptance_rate is not None and args.acceptance_rate < 1:
        parser.error("--acceptance_rate ranks candidates of whole images: it does not go with --completion_images.")


def image_name(item) -> str:
    """
    The PNG of an item: `{class_id:04d}_{index:05d}.png` (unconditional: `{index:05d}.png`); a completion `(name,
    class_id, index)` prefixes it with `{name}_`, next to its input `{name}_input.png` ([`input_name`]).
    """
    *name, class_id, index = item
    file = f"{index:05d}.png" if class_id is None else f"{class_id:04d}_{index:05d}.png"
    return f"{name[0]}_{file}" if name else file


def input_name(name: str) -> str:
    return f"{name}_input.png"


def check_settings(settings: dict, output_dir: Path):
    """Refuse to mix images of other settings into a folder that recorded its settings."""
    path = output_dir / SETTINGS_FILE
    recorded = json.loads(path.read_text()) if path.exists() else settings
    if recorded != settings:
        raise ValueError(
            f"{path} records other sampling settings ({recorded}) than this run ({settings}); use another "
            "--output_dir or the same settings."
        )


def write_images(sampled: SampledImages, output_dir: Path, process_index: int) -> int:
    """
    Write the sampled images not written yet as PNGs (with their classifier scores), and the inputs of completions
    not written yet; returns how many images (inputs aside).
    """
    written = 0
    images = sampled.images.permute(0, 2, 3, 1).cpu().numpy()
    for position, (item, image) in enumerate(zip(sampled.items, images)):
        path = output_dir / image_name(item)
        if path.exists():  # a rejection call resamples whole classes; the images already written stay
            continue
        info = None
        if sampled.scores is not None:
            info = PIL.PngImagePlugin.PngInfo()
            info.add_text(SCORE_KEY, repr(float(sampled.scores[position])))
        save_png(image, path, process_index, info)
        written += 1
    if sampled.inputs is not None:
        inputs = sampled.inputs.permute(0, 2, 3, 1).cpu().numpy()
        for (name, _, _), image in zip(sampled.items, inputs):
            if not (output_dir / input_name(name)).exists():
                save_png(image, output_dir / input_name(name), process_index)
    return written


def save_png(image: np.ndarray, path: Path, process_index: int, info=None):
    """Write through a temporary name, so that a half-written file is never taken for done."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.{process_index}.tmp.png")
    with report_write_errors(path, "a sample", remove=[temporary]):
        PIL.Image.fromarray(image).save(temporary, pnginfo=info)
        os.replace(temporary, path)


def write_scores(settings: dict, plan, output_dir: Path) -> Path:
    """Collect the classifier scores that the kept PNGs carry into one JSON file (main process)."""
    scores = {}
    for item in plan:
        with PIL.Image.open(output_dir / image_name(item)) as image:
            scores[image_name(item)] = float(image.info[SCORE_KEY])
    names = ("acceptance_rate", "classifier", "candidates_per_class")
    path = output_dir / SCORES_FILE
    path.write_text(json.dumps({**{name: settings[name] for name in names}, "scores": scores}, indent=2) + "\n")
    return path


def write_npz(plan, output_dir: Path) -> Path:
    """Stack the PNGs of `plan` into an ADM-style .npz, through a memory-mapped .npy instead of RAM."""
    height, width = np.asarray(PIL.Image.open(output_dir / image_name(plan[0]))).shape[:2]
    path = output_dir / f"samples_{len(plan)}x{height}x{width}x3.npz"
    stacked_path = output_dir / ".arr_0.npy"
    with report_write_errors(path, "the samples' .npz", remove=[stacked_path, path]):
        shape = (len(plan), height, width, 3)
        stacked = np.lib.format.open_memmap(stacked_path, mode="w+", dtype=np.uint8, shape=shape)
        for position, item in enumerate(tqdm(plan, desc="stacking", unit="image")):
            stacked[position] = np.asarray(PIL.Image.open(output_dir / image_name(item)).convert("RGB"))
        stacked.flush()
        del stacked
        # np.savez's layout: one `<name>.npy` per array in a zip file, which np.load reads lazily.
        with zipfile.ZipFile(path, "w", allowZip64=True) as archive:
            archive.write(stacked_path, arcname="arr_0.npy")
            if plan[0][-2] is not None:
                labels = np.array([item[-2] for item in plan], dtype=np.int64)
                with archive.open("arr_1.npy", "w") as file:
                    np.lib.format.write_array(file, labels)
    stacked_path.unlink()
    return path


def main(args):
    """Sample the requested images per class, sharded over the processes, skipping the ones already written."""
    accelerator = Accelerator()
    check_launch(accelerator)
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    # On every process (a folder that exists is kept): an --output_dir that cannot be a folder fails on all of them.
    output_dir = prepare_output_dir(args.output_dir)
    settings = sampling_settings(args)
    check_settings(settings, output_dir)
    engine = load_sampling_engine(args, accelerator.device)

    # Every process lists the missing images before any process writes one, so all see the same list.
    plan = engine.plan
    if engine.inputs is not None and engine.inputs.unreadable:
        logger.warning(f"skipped {len(engine.inputs.unreadable)} unreadable files: {engine.inputs.unreadable[:20]}")
    missing = [item for item in plan if not (output_dir / image_name(item)).exists()]
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (output_dir / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")
    logger.info(f"{len(plan) - len(missing)} of {len(plan)} images exist; sampling {len(missing)}.")
    calls = engine.calls(accelerator.process_index, accelerator.num_processes, missing)
    written = 0
    for call in tqdm(calls, desc="sampling", unit="call", disable=not accelerator.is_local_main_process):
        if call.items:
            written += write_images(engine.sample(call), output_dir, accelerator.process_index)
    logger.info(f"process {accelerator.process_index}: wrote {written} images", main_process_only=False)

    accelerator.wait_for_everyone()
    if accelerator.is_main_process and engine.classifier is not None:
        logger.info(f"wrote {write_scores(settings, plan, output_dir)}")
    if accelerator.is_main_process and not args.no_npz:
        logger.info(f"wrote {write_npz(plan, output_dir)}")
    accelerator.end_training()


if __name__ == "__main__":
    with command_line_errors():
        args = parse_args()
        # The library's errors name its arguments; the user reads the flags.
        with in_flag_terms(args):
            main(args)
