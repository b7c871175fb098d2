# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Linear probe of VIM features (paper Sec. 5.3 and Table 7), with a random-weights and a raw-pixel baseline.

    python examples/linear_probe.py --pipeline out/vim --dataset_name ILSVRC/imagenet-1k --block all --output_dir out/probe
    python examples/linear_probe.py --pipeline out/vim --train_data_dir DIR --block all --random_init --output_dir out/probe-random
    python examples/linear_probe.py --tokenizer out/tokenizer --train_data_dir DIR --raw_pixels --output_dir out/probe-pixels

Protocol. Every image is resized and center-cropped to the tokenizer's resolution and encoded by the tokenizer; VIM
reads `[null token, image tokens]` and the output of block `l` (1-based: `hidden_states[l]` of the model, block
`num_hidden_layers` is taken before the final LayerNorm) is averaged over the image-token positions (the prefix position
is left out). The prefix is the null token for every model: a class-conditional model must not be shown the label it
is probed for (its null token is trained through label dropout; a warning says when it was not). The features are
frozen and cached; each dimension is standardized with the mean and standard deviation of the training split (the
effect of MAE's BatchNorm without affine parameters in front of the classifier, computed once since the features are
fixed). The classifier is one `nn.Linear` trained with softmax cross-entropy and an L2 penalty on the weights: full-batch
L-BFGS from zeros by default (a convex problem, so deterministic and free of learning-rate tuning), or mini-batch AdamW
for feature sets that do not fit in memory at once. With several `--weight_decay` values, the one with the best
accuracy on a held-out `--selection_fraction` of the training split is chosen, then the classifier is retrained on the
whole training split. Top-1 accuracy is measured on the validation split (or on a seeded, stratified
`--validation_fraction` of the training split when there is none).

Baselines: `--random_init` probes a randomly initialized VIM of the same shape (seeded), `--raw_pixels` probes
area-downsampled pixels (`--raw_pixels_size`) with the same classifier.

Outputs in `--output_dir`: `linear_probe.json` (a results file of `vit_vqgan_hf.evaluation`: the best block's accuracy,
`details.per_block_top1_accuracy`, the features, pooling, classifier settings and seeds) and `linear_probe.png`
(accuracy against block). A sweep (`--block all`) keeps the pooled features of every block in memory: images x blocks x
hidden size floats.
"""

import argparse
import logging
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from datasets import ClassLabel
from matplotlib.figure import Figure
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from vit_vqgan_hf import VimForCausalLM, VimPipeline, VitVqganModel
from vit_vqgan_hf.cli import check_device, load_pretrained, prepare_output_dir
from vit_vqgan_hf.evaluation import save_results
from vit_vqgan_hf.evaluation.image_sets import class_balance
from vit_vqgan_hf.evaluation.results import linear_probe_results
from vit_vqgan_hf.training.data import ImageTrainingDataset, ImageTransform, collate_images, load_image_dataset
from vit_vqgan_hf.training.tokens import vim_input_ids
from vit_vqgan_hf.utils.errors import command_line_errors


logger = logging.getLogger(__name__)


def parse_args(input_args=None):
    parser = argparse.ArgumentParser(description="Linear probe of frozen VIM block features.")
    model = parser.add_argument_group("model")
    model.add_argument("--pipeline", default=None, help="A VimPipeline folder or Hub id (tokenizer + transformer).")
    model.add_argument(
        "--tokenizer", default=None, help="ViT-VQGAN tokenizer, with --transformer instead of --pipeline."
    )
    model.add_argument("--transformer", default=None, help="VimForCausalLM folder or Hub id, with --tokenizer.")
    model.add_argument("--block", default="all", help="Block to probe (1 .. num_hidden_layers) or `all` (a sweep).")
    model.add_argument(
        "--random_init", action="store_true", help="Probe a randomly initialized VIM of the same shape."
    )
    model.add_argument("--raw_pixels", action="store_true", help="Probe downsampled raw pixels instead of VIM.")
    model.add_argument("--raw_pixels_size", type=int, default=8, help="Side of the downsampled pixels (--raw_pixels).")

    data = parser.add_argument_group("data")
    data.add_argument("--dataset_name", default=None, help="Hub dataset with images and labels.")
    data.add_argument("--dataset_config_name", default=None, help="Configuration of the Hub dataset.")
    data.add_argument("--train_data_dir", default=None, help="Image folder (`imagefolder`) instead of a Hub dataset.")
    data.add_argument("--train_split", default="train", help="Split the classifier is trained on.")
    data.add_argument("--validation_split", default="validation", help="Split the accuracy is measured on.")
    data.add_argument(
        "--validation_fraction",
        type=float,
        default=0.2,
        help="Held-out share of train, in (0, 1), when there is no validation split.",
    )
    data.add_argument("--image_column", default="image", help="Column holding the images.")
    data.add_argument("--label_column", default="label", help="Column of class labels.")
    data.add_argument("--cache_dir", default=None, help="Cache directory of `datasets`.")
    data.add_argument("--max_train_samples", type=int, default=None, help="Use at most N training images.")
    data.add_argument("--max_eval_samples", type=int, default=None, help="Use at most N validation images.")
    data.add_argument("--resolution", type=int, default=None, help="Image size; default: the tokenizer's.")

    probe = parser.add_argument_group("classifier")
    probe.add_argument("--classifier_optimizer", default="lbfgs", choices=["lbfgs", "adamw"], help="Optimizer.")
    probe.add_argument(
        "--weight_decay",
        type=float,
        nargs="+",
        default=[1e-3],
        help="L2 penalty(ies), >= 0; several = model selection.",
    )
    probe.add_argument(
        "--selection_fraction",
        type=float,
        default=0.1,
        help="Held-out share of train, in (0, 1), for the --weight_decay choice.",
    )
    probe.add_argument("--max_iter", type=int, default=500, help="L-BFGS iterations.")
    probe.add_argument("--epochs", type=int, default=90, help="AdamW epochs.")
    probe.add_argument("--learning_rate", type=float, default=1e-3, help="AdamW learning rate.")
    probe.add_argument("--probe_batch_size", type=int, default=1024, help="AdamW mini-batch size.")
    probe.add_argument("--seed", type=int, default=0, help="Seed of splits, random weights and AdamW.")

    run = parser.add_argument_group("run")
    run.add_argument("--batch_size", type=int, default=64, help="Images per feature-extraction batch.")
    run.add_argument("--device", default=None, help="Device; default: cuda when available.")
    run.add_argument("--mixed_precision", default="no", choices=["no", "bf16"], help="Extract features under bf16.")
    run.add_argument("--output_dir", required=True, help="Where linear_probe.json and linear_probe.png go.")
    args = parser.parse_args(input_args)
    if (args.dataset_name is None) == (args.train_data_dir is None):
        parser.error("pass exactly one of --dataset_name and --train_data_dir.")
    if not args.raw_pixels and (args.pipeline is None) == (args.tokenizer is None or args.transformer is None):
        parser.error("pass --pipeline, or --tokenizer and --transformer.")
    if args.raw_pixels and args.random_init:
        parser.error("--raw_pixels and --random_init are two different baselines: pass one.")
    if args.block != "all" and not args.block.isdigit():
        parser.error(f"--block must be a block number or `all`, got {args.block!r}.")
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    check_args(args)
    return args


def check_args(args):
    """Sanity checks with messages that say which flag to change, before any model or image is loaded."""
    if args.block != "all" and int(args.block) < 1:
        raise ValueError(f"--block must be a block number from 1 (or `all`), got {args.block}.")
    for name in ("raw_pixels_size", "max_iter", "epochs", "probe_batch_size", "batch_size"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be at least 1, got {getattr(args, name)}.")
    for name in ("resolution", "max_train_samples", "max_eval_samples"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ValueError(f"--{name} must be at least 1 when given, got {getattr(args, name)}.")
    negative = [weight_decay for weight_decay in args.weight_decay if not weight_decay >= 0]
    if negative:
        raise ValueError(f"--weight_decay values are L2 penalties and must be >= 0, got {negative}.")
    # Shares of a split that leave images on both sides: held out for the choice of the weight decay (several
    # --weight_decay values) or for evaluation (no --validation_split in the dataset).
    for name in ("selection_fraction", "validation_fraction"):
        if not 0.0 < getattr(args, name) < 1.0:
            raise ValueError(f"--{name} must lie in (0, 1), got {getattr(args, name)}.")
    if not args.learning_rate > 0:
        raise ValueError(f"--learning_rate must be > 0, got {args.learning_rate}.")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0 (it seeds numpy's split and shuffle), got {args.seed}.")
    check_device(args.device)


def load_models(args) -> tuple[VitVqganModel | None, VimForCausalLM | None]:
    """The tokenizer and the transformer (random weights of the same shape with --random_init), in eval mode."""
    if args.pipeline is not None:
        pipeline = load_pretrained(VimPipeline.from_pretrained, args.pipeline)
        tokenizer, transformer = pipeline.vqgan, pipeline.transformer
    else:
        tokenizer = load_pretrained(VitVqganModel.from_pretrained, args.tokenizer) if args.tokenizer else None
        transformer = load_pretrained(VimForCausalLM.from_pretrained, args.transformer) if args.transformer else None
    if args.raw_pixels:
        transformer = None
    elif args.random_init:
        torch.manual_seed(args.seed)
        transformer = VimForCausalLM(transformer.config)
    if transformer is not None and not transformer.config.has_trained_null_token:
        logger.warning(
            "This class-conditional VIM was trained without label dropout and its null token was not fitted, so the "
            "null token was never trained; the probe still uses it as the prefix, so as not to show the model the "
            "label."
        )
    for model in (tokenizer, transformer):
        if model is not None:
            model.eval().requires_grad_(False).to(args.device)
    return tokenizer, transformer


def load_splits(args):
    """Training and evaluation splits (undecoded images), and the class names."""
    splits = load_image_dataset(
        args.dataset_name,
        args.train_data_dir,
        args.dataset_config_name,
        split=None,
        cache_dir=args.cache_dir,
        image_column=args.image_column,
    )
    if args.train_split not in splits:
        raise ValueError(f"No split {args.train_split!r}; available splits: {sorted(splits)}.")
    train = splits[args.train_split]
    if args.label_column not in train.column_names:
        raise ValueError(f"The dataset has no label column {args.label_column!r}; columns: {train.column_names}.")
    feature = train.features[args.label_column]
    names = list(feature.names) if isinstance(feature, ClassLabel) else None
    if args.validation_split in splits:
        evaluation, args.evaluation_source = splits[args.validation_split], args.validation_split
    else:
        parts = train.train_test_split(
            test_size=args.validation_fraction,
            seed=args.seed,
            stratify_by_column=args.label_column if names is not None else None,
        )
        train, evaluation = parts["train"], parts["test"]
        args.evaluation_source = f"{args.validation_fraction:.0%} of {args.train_split} (seed {args.seed}, stratified)"
        logger.warning(f"No split {args.validation_split!r}: evaluating on {args.evaluation_source}.")
    if args.max_train_samples is not None:
        train = train.shuffle(seed=args.seed).select(range(min(args.max_train_samples, len(train))))
    if args.max_eval_samples is not None:
        evaluation = evaluation.shuffle(seed=args.seed).select(range(min(args.max_eval_samples, len(evaluation))))
    return train, evaluation, names


@torch.no_grad()
def extract_features(args, dataset, tokenizer, transformer, blocks: list[int]) -> tuple[dict, torch.Tensor]:
    """Pooled features `{block: (num_images, dim)}` (block 0 = raw pixels) and labels of a split, on the CPU."""
    images = ImageTrainingDataset(dataset, ImageTransform(args.resolution), args.image_column, args.label_column)
    loader = DataLoader(images, batch_size=args.batch_size, collate_fn=collate_images)
    features, labels, skipped = {block: [] for block in blocks}, [], 0
    device_type = torch.device(args.device).type
    for batch in tqdm(loader, desc="features", leave=False):
        pixel_values = batch["pixel_values"].to(args.device)
        labels.append(batch["labels"])
        skipped += batch["skipped"]
        if transformer is None:
            pooled = F.interpolate(pixel_values, size=args.raw_pixels_size, mode="area").flatten(1)
            features[0].append(pooled.float().cpu())
            continue
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=args.mixed_precision == "bf16"):
            image_tokens = tokenizer.encode(pixel_values).image_tokens
            prefix = torch.full((len(image_tokens),), transformer.config.null_class_token_id, device=args.device)
            hidden_states = transformer(
                vim_input_ids(image_tokens, prefix), output_hidden_states=True, use_cache=False
            ).hidden_states
        for block in blocks:
            # Average over the image-token positions; position 0 is the (null) prefix.
            features[block].append(hidden_states[block][:, 1:].float().mean(dim=1).cpu())
    if skipped:
        logger.warning(f"{skipped} unreadable images were replaced by the next readable ones (with their labels).")
    return {block: torch.cat(values) for block, values in features.items()}, torch.cat(labels)


def standardize(train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    """Z-score every dimension with the training split's mean and standard deviation."""
    mean, std = train.mean(dim=0), train.std(dim=0).clamp(min=1e-6)
    return [(features - mean) / std for features in (train, *others)]


def fit_classifier(args, features: torch.Tensor, labels: torch.Tensor, num_classes: int, weight_decay: float):
    """A linear softmax classifier on standardized features (L2 penalty on the weights, not the bias)."""
    torch.manual_seed(args.seed)
    classifier = torch.nn.Linear(features.shape[1], num_classes).to(features.device)
    torch.nn.init.zeros_(classifier.weight)
    torch.nn.init.zeros_(classifier.bias)

    def objective(inputs, targets):
        logits = classifier(inputs)
        return F.cross_entropy(logits, targets) + 0.5 * weight_decay * classifier.weight.pow(2).sum()

    if args.classifier_optimizer == "lbfgs":
        optimizer = torch.optim.LBFGS(
            classifier.parameters(), lr=1.0, max_iter=args.max_iter, history_size=20, line_search_fn="strong_wolfe"
        )

        def closure():
            optimizer.zero_grad()
            loss = objective(features, labels)
            loss.backward()
            return loss

        optimizer.step(closure)
        return classifier
    optimizer = torch.optim.AdamW(classifier.parameters(), lr=args.learning_rate, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, args.epochs * math.ceil(len(features) / args.probe_batch_size)
    )
    generator = torch.Generator().manual_seed(args.seed)
    for _ in range(args.epochs):
        for indices in torch.randperm(len(features), generator=generator).split(args.probe_batch_size):
            optimizer.zero_grad()
            objective(features[indices], labels[indices]).backward()
            optimizer.step()
            scheduler.step()
    return classifier


@torch.no_grad()
def accuracy(classifier, features: torch.Tensor, labels: torch.Tensor) -> float:
    return (classifier(features).argmax(dim=1) == labels).float().mean().item()


def probe(args, train_features, train_labels, eval_features, eval_labels, num_classes) -> dict:
    """Choose the weight decay on a held-out part of train (when several), retrain on all of train, evaluate."""
    chosen = args.weight_decay[0]
    selection = {}
    if len(args.weight_decay) > 1:
        permutation = torch.randperm(len(train_features), generator=torch.Generator().manual_seed(args.seed))
        num_held_out = max(1, int(len(train_features) * args.selection_fraction))
        held_out, kept = permutation[:num_held_out], permutation[num_held_out:]
        fit, held = standardize(train_features[kept], train_features[held_out])
        for weight_decay in args.weight_decay:
            classifier = fit_classifier(args, fit, train_labels[kept], num_classes, weight_decay)
            selection[weight_decay] = accuracy(classifier, held, train_labels[held_out])
        chosen = max(selection, key=selection.get)
    train_standardized, eval_standardized = standardize(train_features, eval_features)
    classifier = fit_classifier(args, train_standardized, train_labels, num_classes, chosen)
    return {
        "top1_accuracy": accuracy(classifier, eval_standardized, eval_labels),
        "train_accuracy": accuracy(classifier, train_standardized, train_labels),
        "weight_decay": chosen,
        "weight_decay_selection": selection,
    }


def save_plot(path: Path, per_block: dict, title: str):
    """Accuracy against block, the best block marked."""
    blocks = sorted(per_block)
    figure = Figure(figsize=(6, 4))
    axes = figure.add_subplot()
    axes.plot(blocks, [100 * per_block[block] for block in blocks], marker="o")
    best = max(per_block, key=per_block.get)
    axes.scatter([best], [100 * per_block[best]], color="tab:red", zorder=3, label=f"best: block {best}")
    axes.set_xlabel("block")
    axes.set_ylabel("top-1 accuracy (%)")
    axes.set_title(title)
    axes.set_xticks(blocks)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def probed_blocks(args, transformer) -> list[int]:
    """The blocks to probe (1-based hidden-state indices), or `[0]` for raw pixels."""
    if transformer is None:
        return [0]
    if args.block == "all":
        return list(range(1, transformer.config.num_hidden_layers + 1))
    block = int(args.block)
    if not 1 <= block <= transformer.config.num_hidden_layers:
        raise ValueError(f"--block must lie in 1 .. {transformer.config.num_hidden_layers}, got {block}.")
    return [block]


def probe_protocol(args, transformer, blocks: list[int], runs: dict) -> tuple[dict, dict]:
    """(classifier, model) descriptions of the probe for its results file."""
    if transformer is None:
        features = f"raw pixels, area-downsampled to {args.raw_pixels_size}x{args.raw_pixels_size}x3, flattened"
        pooling = None
        model = {"features": "raw_pixels", "raw_pixels_size": args.raw_pixels_size}
    else:
        features = (
            "VIM block outputs (hidden_states[block], 1-based; the last block before the final LayerNorm), prefix = "
            "null token"
        )
        pooling = "mean over the image-token positions (prefix position excluded)"
        model = {
            "features": "vim",
            "pipeline": args.pipeline,
            "tokenizer": args.tokenizer,
            "transformer": args.transformer,
            "random_init": args.random_init,
            "num_hidden_layers": transformer.config.num_hidden_layers,
            "hidden_size": transformer.config.hidden_size,
        }
    classifier = {
        "features": features,
        "pooling": pooling,
        "normalization": "per-dimension standardization with training-split mean and std (BatchNorm without affine)",
        "model": "torch.nn.Linear, softmax cross-entropy, L2 penalty 0.5 * weight_decay * ||W||^2 (bias not penalized)",
        "optimizer": args.classifier_optimizer,
        "max_iter": args.max_iter if args.classifier_optimizer == "lbfgs" else None,
        "epochs": args.epochs if args.classifier_optimizer == "adamw" else None,
        "learning_rate": args.learning_rate if args.classifier_optimizer == "adamw" else None,
        "weight_decay_candidates": args.weight_decay,
        "weight_decay_per_block": {str(block): runs[block]["weight_decay"] for block in blocks},
        "selection_fraction": args.selection_fraction if len(args.weight_decay) > 1 else None,
        "train_accuracy_per_block": {str(block): runs[block]["train_accuracy"] for block in blocks},
        "block_indexing": "1-based (hidden_states index); 0 = raw pixels",
        "augmentation": "none (resize + center crop)",
        "evaluation_split": args.evaluation_source,
    }
    return classifier, model


def main(args):
    """Fit a linear classifier on the pooled features of each chosen VIM block (or raw pixels); save results."""
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    # Before any compute: an --output_dir that cannot be a folder fails now, not when the results are saved.
    output_dir = prepare_output_dir(args.output_dir)
    tokenizer, transformer = load_models(args)
    if args.resolution is None:
        if tokenizer is None:
            raise ValueError("--raw_pixels without a tokenizer needs --resolution.")
        args.resolution = tokenizer.config.image_size
    blocks = probed_blocks(args, transformer)
    train, evaluation, names = load_splits(args)
    train_features, train_labels = extract_features(args, train, tokenizer, transformer, blocks)
    eval_features, eval_labels = extract_features(args, evaluation, tokenizer, transformer, blocks)
    num_classes = len(names) if names is not None else int(max(train_labels.max(), eval_labels.max())) + 1
    per_block, runs = {}, {}
    for block in blocks:
        runs[block] = probe(args, train_features[block], train_labels, eval_features[block], eval_labels, num_classes)
        per_block[block] = runs[block]["top1_accuracy"]
        name = "raw pixels" if transformer is None else f"block {block}"
        logger.info(f"{name}: top-1 {per_block[block]:.4f} (weight decay {runs[block]['weight_decay']})")
    classifier, model = probe_protocol(args, transformer, blocks, runs)
    results = linear_probe_results(
        per_block,
        dataset=args.dataset_name or args.train_data_dir,
        split=args.evaluation_source,
        num_train_images=len(train_labels),
        num_eval_images=len(eval_labels),
        class_balance=class_balance(eval_labels.tolist(), names),
        image_size=args.resolution,
        resize="resize shorter side (bicubic) + center crop",
        seeds={"seed": args.seed, "uses": "evaluation split, weight-decay selection split, random init, AdamW order"},
        classifier=classifier,
        model=model,
    )
    save_results(results, output_dir / "linear_probe.json")
    title = "raw pixels" if transformer is None else ("random-init VIM" if args.random_init else "VIM")
    save_plot(output_dir / "linear_probe.png", per_block, f"Linear probe ({title})")
    best = results["details"]["reported_block"]
    name = "Raw pixels" if transformer is None else f"Best block {best}"
    logger.info(f"{name}: top-1 {per_block[best]:.4f}; results in {output_dir}.")
    return results


if __name__ == "__main__":
    with command_line_errors():
        main(parse_args())
