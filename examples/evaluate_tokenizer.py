# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Evaluate a ViT-VQGAN tokenizer on a split: PSNR, SSIM, LPIPS, l1, l2, logit-Laplace NLL, rFID, IS of the
reconstructions, and codebook usage by the protocol of Yu et al. 2022 (Table 4 caption: codes used per 256 test images).

    accelerate launch examples/evaluate_tokenizer.py \\
        --tokenizer outputs/tokenizer --dataset_name ILSVRC/imagenet-1k --split validation \\
        --inception_model path/to/pt_inception-2015-12-05-6726825d.pth --lpips_model path/to/lpips_vgg16 \\
        --output_dir outputs/eval_tokenizer

Writes `results.json` (metrics and the protocol that produced them) and `codebook_usage.png` to `--output_dir`.
Metrics whose network is not given (`--lpips_model`, `--inception_model`) are skipped, with a note in the results.
Any number of processes gives the numbers of one.
"""

import argparse
import logging
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from datasets import load_dataset

from vit_vqgan_hf import VitVqganModel
from vit_vqgan_hf.cli import check_launch, in_flag_terms, load_pretrained, prepare_output_dir
from vit_vqgan_hf.evaluation import (
    USAGE_GROUP_SIZE,
    DatasetImageSet,
    ImageFolderSet,
    TokenizerEvaluator,
    build_results,
    load_fid_inception,
    plot_code_usage,
    save_results,
)
from vit_vqgan_hf.evaluation.frechet import describe_feature_network
from vit_vqgan_hf.evaluation.image_sets import RESIZE_MODES
from vit_vqgan_hf.training import load_lpips
from vit_vqgan_hf.utils.errors import command_line_errors


logger = get_logger(__name__)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Evaluate a ViT-VQGAN tokenizer (reconstruction and codebook usage).")
    parser.add_argument("--tokenizer", required=True, help="Folder (or Hub id) of a `VitVqganModel.save_pretrained`.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--train_data_dir",
        help="Image folder. Its subfolder named `--split` is used when present (`val/` also stands for validation), "
        "else the whole folder; images in `<class>/` subfolders get class labels.",
    )
    source.add_argument("--dataset_name", help="Name (or local path) of a `datasets` image dataset.")
    parser.add_argument("--dataset_config_name", default=None, help="Configuration of the `datasets` dataset.")
    parser.add_argument("--split", default="validation", help="Split to evaluate.")
    parser.add_argument("--image_column", default="image", help="Image column of the `datasets` dataset.")
    parser.add_argument("--label_column", default="label", help="Class label column of the dataset (if present).")
    parser.add_argument("--cache_dir", default=None, help="Cache directory of `datasets`.")
    parser.add_argument(
        "--resolution",
        type=int,
        default=None,
        help="Images are resized to this size (see --resize); default: the tokenizer's `image_size`.",
    )
    parser.add_argument(
        "--resize",
        choices=RESIZE_MODES,
        default="center_crop",
        help="center_crop: shorter side resized (bicubic), center crop (the training scripts' evaluation transform "
        "and the tokenizer's image processor). squash: both sides resized (bilinear, aspect ratio not kept), the "
        "ImageNet validation of thuanz123/enhancing-transformers, whose published rFID it reproduces; rFID depends "
        "on it.",
    )
    parser.add_argument("--batch_size", type=int, default=32, help="Images per process and step.")
    parser.add_argument("--max_eval_samples", type=int, default=None, help="Evaluate only the first N images.")
    parser.add_argument(
        "--skip_unreadable_images",
        action="store_true",
        help="Leave out (and record) files of the image folder that cannot be read, instead of failing.",
    )
    parser.add_argument(
        "--lpips_model", default=None, help="LPIPS-VGG16 weights (file, folder or Hub id, see `load_lpips`)."
    )
    parser.add_argument(
        "--inception_model",
        default=None,
        help="FID InceptionV3 weights (pytorch-fid's pt_inception-2015-12-05-6726825d.pth, a folder or a Hub id) "
        "for rFID and the Inception Score.",
    )
    parser.add_argument(
        "--usage_group_size",
        type=int,
        default=USAGE_GROUP_SIZE,
        help="Images per codebook-usage group (the paper: 256), regardless of --batch_size.",
    )
    parser.add_argument("--inception_score_splits", type=int, default=10, help="Splits of the Inception Score.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the Inception Score shuffle.")
    parser.add_argument("--dataloader_num_workers", type=int, default=0, help="Data loading worker processes.")
    parser.add_argument(
        "--mixed_precision",
        choices=["no", "fp16", "bf16"],
        default=None,
        help="Autocast of the tokenizer forward (the metrics' networks always run in float32); default: accelerate's "
        "config.",
    )
    parser.add_argument("--output_dir", required=True, help="Where results.json and codebook_usage.png are written.")
    args = parser.parse_args(argv)
    check_args(args)
    return args


def check_args(args):
    """Sanity checks with messages that say which flag to change, before any model or image is loaded."""
    for name in ("batch_size", "usage_group_size", "inception_score_splits"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be at least 1, got {getattr(args, name)}.")
    for name in ("resolution", "max_eval_samples"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ValueError(f"--{name} must be at least 1 when given, got {getattr(args, name)}.")
    if args.dataloader_num_workers < 0:
        raise ValueError(
            f"--dataloader_num_workers must be at least 0 (0: load in the main process), got "
            f"{args.dataloader_num_workers}."
        )


def build_image_set(args, resolution: int):
    """The images to evaluate, and a description of where they came from."""
    if args.train_data_dir is not None:
        root = Path(args.train_data_dir)
        candidates = [root / args.split] + ([root / "val"] if args.split == "validation" else [])
        folder = next((path for path in candidates if path.is_dir()), root)
        image_set = ImageFolderSet(folder, resolution, args.skip_unreadable_images, args.resize)
        split_note = {"split": args.split, "split_folder_used": folder != root}
    else:
        dataset = load_dataset(args.dataset_name, args.dataset_config_name, split=args.split, cache_dir=args.cache_dir)
        image_set = DatasetImageSet(
            dataset, args.image_column, args.label_column, resolution, args.dataset_name, args.split, args.resize
        )
        split_note = {"split": args.split, "config": args.dataset_config_name}
    description = image_set.describe()
    description["source"].update(split_note)
    if args.max_eval_samples is not None and args.max_eval_samples < len(image_set):
        image_set = torch.utils.data.Subset(image_set, range(args.max_eval_samples))
        description["first_images_only"] = args.max_eval_samples
    return image_set, description


def load_metric_networks(args, device):
    """The LPIPS and feature networks that were asked for, and their descriptions for the results."""
    lpips = feature_network = None
    descriptions = {"lpips_network": None, "feature_network": None}
    if args.lpips_model is not None:
        lpips = load_lpips(args.lpips_model).to(device)
        descriptions["lpips_network"] = {**describe_feature_network(lpips), "source": args.lpips_model}
    if args.inception_model is not None:
        feature_network = load_fid_inception(args.inception_model).to(device)
        descriptions["feature_network"] = describe_feature_network(feature_network)
    return lpips, feature_network, descriptions


def run_evaluation(model, dataloader, evaluator, accelerator):
    """Reconstruct every batch and feed the evaluator (on every process)."""
    for step, batch in enumerate(dataloader):
        pixel_values = batch["images"].float() / 127.5 - 1
        with torch.no_grad(), accelerator.autocast():
            output = model(pixel_values)
        evaluator.update(pixel_values, output, labels=batch["labels"])
        if step % 50 == 0:
            logger.info(f"step {step + 1}/{len(dataloader)}")


def write_results(args, accelerator, model, output, data_description, networks, resolution):
    """Save results.json and codebook_usage.png (main process)."""
    output_dir = Path(args.output_dir)
    usage = dict(output["codebook_usage"])
    group_usages = usage.pop("group_usages")
    # The image set's own count names the classes; a truncated set (--max_eval_samples) uses the evaluated labels.
    class_balance = (
        output["class_balance"] if "first_images_only" in data_description else data_description["class_balance"]
    )
    config = model.config
    results = build_results(
        "image-reconstruction",
        output["metrics"],
        num_samples=output["num_images"],
        class_balance=class_balance,
        image_size=resolution,
        resize=data_description["resize"],
        feature_network=networks["feature_network"],
        reference={"kind": "originals of the evaluated split (rFID)", "source": data_description["source"]},
        seeds={"seed": args.seed, "use": "shuffle before the Inception Score splits; nothing else is random"},
        sampling=None,
        skipped=output["skipped"],
        model={
            "path": args.tokenizer,
            "class": type(model).__name__,
            **{
                key: getattr(config, key, None)
                for key in ("image_size", "patch_size", "codebook_size", "codebook_dim", "use_logit_laplace")
            },
            "logit_laplace_eps": getattr(config, "logit_laplace_eps", None),
        },
        details={"codebook_usage_per_group": group_usages},
        data=data_description,
        lpips_network=networks["lpips_network"],
        codebook_usage=usage,
        settings={
            "batch_size_per_process": args.batch_size,
            "inception_score_splits": args.inception_score_splits,
            "mixed_precision": accelerator.mixed_precision,
        },
        distributed={"num_processes": accelerator.num_processes, "device": str(accelerator.device)},
    )
    path = save_results(results, output_dir / "results.json")
    plot_code_usage(output["code_counts"], output_dir / "codebook_usage.png", title=f"{args.tokenizer} ({args.split})")
    return path, results


def main(args):
    """Reconstruct the evaluation images on every process, gather the metrics and write the results file."""
    accelerator = Accelerator(mixed_precision=args.mixed_precision)
    check_launch(accelerator)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    if accelerator.is_main_process:
        # Before any compute: an --output_dir that cannot be a folder fails now, not when the results are saved.
        prepare_output_dir(args.output_dir)
    model = load_pretrained(VitVqganModel.from_pretrained, args.tokenizer).eval().to(accelerator.device)
    resolution = args.resolution or model.config.image_size
    image_set, data_description = build_image_set(args, resolution)
    lpips, feature_network, networks = load_metric_networks(args, accelerator.device)
    dataloader = torch.utils.data.DataLoader(
        image_set, batch_size=args.batch_size, shuffle=False, num_workers=args.dataloader_num_workers
    )
    dataloader = accelerator.prepare(dataloader)
    evaluator = TokenizerEvaluator(
        model.config.codebook_size,
        accelerator=accelerator,
        feature_network=feature_network,
        lpips=lpips,
        logit_laplace_eps=getattr(model.config, "logit_laplace_eps", 0.1),
        usage_group_size=args.usage_group_size,
        inception_score_splits=args.inception_score_splits,
        seed=args.seed,
    )
    run_evaluation(model, dataloader, evaluator, accelerator)
    output = evaluator.compute()
    if accelerator.is_main_process:
        path, results = write_results(args, accelerator, model, output, data_description, networks, resolution)
        summary = {key: value for key, value in results["metrics"].items() if value is not None}
        logger.info(f"wrote {path}: " + ", ".join(f"{key}={value:.4g}" for key, value in summary.items()))
        for name, reason in results["skipped"].items():
            logger.info(f"skipped {name}: {reason}")
        if not output["codebook_usage"]["codebook_usage_protocol_complete"]:
            logger.warning(
                f"fewer than {args.usage_group_size} images: codebook usage is measured on one partial group "
                f"of {output['num_images']} images, not by the paper's protocol."
            )
    accelerator.wait_for_everyone()
    accelerator.end_training()


if __name__ == "__main__":
    with command_line_errors():
        args = parse_args()
        # The library's errors name its arguments; the user reads the flags.
        with in_flag_terms(args, {"feature_network": "--inception_model", "lpips": "--lpips_model"}):
            main(args)
