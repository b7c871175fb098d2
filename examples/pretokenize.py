# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Turn an image dataset into ViT-VQGAN token ids once, for VIM training without the tokenizer in the loop.

    python examples/pretokenize.py --tokenizer out/tokenizer --dataset_name ILSVRC/imagenet-1k \
        --output_dir out/imagenet-tokens --num_augmented_copies 4 --batch_size 256 --device cuda

Every image is resized and center-cropped to the tokenizer's resolution and encoded by the frozen tokenizer with
`datasets.Dataset.map` (batched). The result has one row per image and copy:

- `image_tokens`: the `token_grid_size ** 2` token ids in raster order (int16 when the codebook fits, else int32);
- `label`: the label column as it was, so a `ClassLabel` keeps its names (for `VimPipeline.get_label_ids`);
- `augmentation`: 0 for the center crop, `1..N` for the `--num_augmented_copies` random-resized-crop + flip copies
  (training split only; `--no_flip` for unmirrored copies). Copy `k` of example `i` draws its crop and flip from a
  generator seeded by `(--seed, k, i)`, so the dataset is the same whatever `--num_proc` and `--batch_size`.

The paper augments and encodes on the fly, a new crop every epoch (`train_vim.py --on_the_fly`); a few stored copies
are the cheaper approximation. Unreadable images are dropped and counted. The tokenizer's fingerprint (codebook, grid,
sha256 of its config and weights), the preprocessing and the counts go into `vim_tokens.json` next to the data and
into the `description` of every split's `DatasetInfo`; `train_vim.py` refuses tokens of another tokenizer.
The dataset is written with `save_to_disk` (`--output_dir`) and/or pushed to a Hub dataset repository
(`--push_to_hub --hub_model_id NAME [--hub_private]`).
"""

import argparse
import hashlib
import json
import logging
from pathlib import Path

import torch
from datasets import DatasetDict, Features, Sequence, Value
from huggingface_hub import upload_file

from vit_vqgan_hf import VitVqganModel
from vit_vqgan_hf.cli import check_device, load_pretrained, prepare_output_dir
from vit_vqgan_hf.hub import create_hub_repo
from vit_vqgan_hf.training.data import ImageTransform, augmentation_generator, load_image_dataset
from vit_vqgan_hf.training.tokens import TOKENS_FORMAT, TOKENS_METADATA_FILE, tokenizer_fingerprint
from vit_vqgan_hf.utils.errors import command_line_errors
from vit_vqgan_hf.utils.file_writes import report_write_errors


logger = logging.getLogger(__name__)


def parse_args(input_args=None):
    parser = argparse.ArgumentParser(description="Encode an image dataset to ViT-VQGAN token ids.")
    parser.add_argument("--tokenizer", required=True, help="ViT-VQGAN tokenizer (folder or Hub id).")
    parser.add_argument("--dataset_name", default=None, help="Hub dataset, e.g. ILSVRC/imagenet-1k.")
    parser.add_argument("--dataset_config_name", default=None, help="Configuration of the Hub dataset.")
    parser.add_argument(
        "--train_data_dir", default=None, help="Image folder (`imagefolder`) instead of a Hub dataset."
    )
    parser.add_argument("--splits", nargs="+", default=None, help="Splits to encode; default: all of them.")
    parser.add_argument("--train_split", default="train", help="The split that gets the augmented copies.")
    parser.add_argument("--image_column", default="image", help="Column holding the images.")
    parser.add_argument("--label_column", default="label", help="Column of class labels, kept when present.")
    parser.add_argument("--cache_dir", default=None, help="Cache directory of `datasets`.")
    parser.add_argument("--max_samples", type=int, default=None, help="Encode only the first N images of each split.")
    parser.add_argument("--resolution", type=int, default=None, help="Image size; default: the tokenizer's.")
    parser.add_argument(
        "--num_augmented_copies", type=int, default=0, help="Random-resized-crop + flip copies per training image."
    )
    parser.add_argument(
        "--random_crop_scale", type=float, nargs=2, default=(0.5, 1.0), help="Area range of the random crops."
    )
    parser.add_argument(
        "--no_flip",
        action="store_true",
        help="Do not mirror the augmented copies (for images whose mirror is another thing: digits, text).",
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed of the augmented copies.")
    parser.add_argument("--batch_size", type=int, default=64, help="Images per `map` batch and tokenizer call.")
    parser.add_argument("--device", default=None, help="Device of the tokenizer; default: cuda when available.")
    parser.add_argument(
        "--mixed_precision",
        default="no",
        choices=["no", "bf16"],
        help="Encode under bf16 autocast (the code lookup stays float32).",
    )
    parser.add_argument("--num_proc", type=int, default=None, help="`map` worker processes (CPU encoding only).")
    parser.add_argument("--output_dir", default=None, help="Write the dataset here with `save_to_disk`.")
    parser.add_argument("--push_to_hub", action="store_true", help="Push the dataset to a Hub dataset repository.")
    parser.add_argument(
        "--hub_model_id", default=None, help="Hub dataset repository; default: the output folder name."
    )
    parser.add_argument("--hub_private", action="store_true", help="Create the Hub repository as private.")
    parser.add_argument("--hub_token", default=None, help="Hub token; default: the logged-in user's.")
    args = parser.parse_args(input_args)
    if (args.dataset_name is None) == (args.train_data_dir is None):
        parser.error("pass exactly one of --dataset_name and --train_data_dir.")
    if args.output_dir is None and not args.push_to_hub:
        parser.error("pass --output_dir, --push_to_hub, or both.")
    if args.push_to_hub and args.hub_model_id is None and args.output_dir is None:
        parser.error("--push_to_hub needs --hub_model_id (or --output_dir, whose name is used).")
    if args.num_augmented_copies < 0 or args.batch_size < 1:
        parser.error("--num_augmented_copies must be >= 0 and --batch_size >= 1.")
    low, high = args.random_crop_scale
    if not 0.0 < low <= high <= 1.0:
        parser.error(f"--random_crop_scale must satisfy 0 < min <= max <= 1, got {low} {high}.")
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.num_proc and args.num_proc > 1 and args.device != "cpu":
        parser.error("--num_proc > 1 forks the tokenizer into CPU workers; use it with --device cpu only.")
    check_args(args)
    return args


def check_args(args):
    """Sanity checks with messages that say which flag to change, before the tokenizer and the dataset are loaded."""
    for name in ("max_samples", "resolution", "num_proc"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ValueError(f"--{name} must be at least 1 when given, got {getattr(args, name)}.")
    check_device(args.device)


class TokenizeBatch:
    """
    The batched `map` function: decode, crop and encode a batch of images, `1 + num_copies` rows per readable image.

    A picklable class rather than a closure, so that `map` workers (`--num_proc`) receive it.
    """

    def __init__(self, tokenizer, args, label_column: str | None, num_copies: int, token_dtype: torch.dtype):
        self.tokenizer = tokenizer
        self.image_column = args.image_column
        self.label_column = label_column
        self.num_copies = num_copies
        self.token_dtype = token_dtype
        self.seed = args.seed
        self.device = args.device
        self.autocast = args.mixed_precision == "bf16"
        self.center = ImageTransform(args.resolution)
        self.augment = ImageTransform(
            args.resolution, random_crop=True, random_flip=not args.no_flip, crop_scale=tuple(args.random_crop_scale)
        )

    def __call__(self, batch: dict, indices: list[int]) -> dict:
        pixel_values, labels, copies = [], [], []
        for image, index, label in zip(
            batch[self.image_column], indices, batch.get(self.label_column) or [None] * len(indices)
        ):
            try:
                # The generator's first argument is the seed, the second the copy: copy k of image i is the same in
                # every run with this seed.
                views = [self.center(image, None)] + [
                    self.augment(image, augmentation_generator(self.seed, copy, index))
                    for copy in range(1, self.num_copies + 1)
                ]
            except Exception:  # an unreadable, truncated or unsupported image: dropped, counted by the caller
                continue
            pixel_values += views
            labels += [label] * len(views)
            copies += list(range(len(views)))
        if pixel_values:
            tokens = self.encode(torch.stack(pixel_values))
        else:
            tokens = torch.zeros(0, 0, dtype=self.token_dtype)
        output = {"image_tokens": tokens.numpy(), "augmentation": copies}
        if self.label_column is not None:
            output[self.label_column] = labels
        return output

    @torch.no_grad()
    def encode(self, pixel_values: torch.Tensor) -> torch.Tensor:
        self.tokenizer.to(self.device)
        with torch.autocast(device_type=torch.device(self.device).type, dtype=torch.bfloat16, enabled=self.autocast):
            image_tokens = self.tokenizer.encode(pixel_values.to(self.device)).image_tokens
        return image_tokens.flatten(1).to("cpu", self.token_dtype)


def encode_split(args, tokenizer, name: str, split, metadata: dict):
    """Encode one split; returns the token dataset and the number of unreadable images."""
    if args.max_samples is not None:
        split = split.select(range(min(args.max_samples, len(split))))
    label_column = args.label_column if args.label_column in split.column_names else None
    num_copies = args.num_augmented_copies if name == args.train_split else 0
    token_dtype = torch.int16 if tokenizer.config.codebook_size <= torch.iinfo(torch.int16).max + 1 else torch.int32
    features = {
        "image_tokens": Sequence(Value(str(token_dtype).removeprefix("torch."))),
        "augmentation": Value("int16"),
    }
    if label_column is not None:
        features[label_column] = split.features[label_column]
    # A fingerprint of what determines the output, so that `datasets` need not hash the tokenizer's weights.
    fingerprint = hashlib.sha256(
        json.dumps(
            {**metadata, "split": name, "num_rows": len(split), "split_fingerprint": split._fingerprint},
            sort_keys=True,
            default=str,
        ).encode()
    ).hexdigest()[:32]
    tokens = split.map(
        TokenizeBatch(tokenizer, args, label_column, num_copies, token_dtype),
        batched=True,
        batch_size=args.batch_size,
        with_indices=True,
        remove_columns=split.column_names,
        features=Features(features),
        num_proc=args.num_proc,
        new_fingerprint=fingerprint,
        desc=f"Tokenizing {name}",
    )
    skipped = len(split) - len(tokens) // (1 + num_copies)
    return tokens, skipped


def push_tokens_to_hub(args, dataset_dict: DatasetDict, description: str) -> str:
    """
    Push the token dataset (Parquet shards, one config with a split per encoded split) and `vim_tokens.json` to a Hub
    dataset repository; `train_vim.py --pretokenized_dataset REPO_ID` reads both. Rerunning an interrupted push
    skips the shards already uploaded.
    """
    repo_id = args.hub_model_id  # created by `main` before the encoding
    logger.info(f"Pushing the tokens to the Hub dataset repository {repo_id!r}.")
    dataset_dict.push_to_hub(
        repo_id, private=args.hub_private, token=args.hub_token, commit_message="ViT-VQGAN token ids"
    )
    # `push_to_hub` keeps features and splits but not the description: the metadata file goes up beside the data.
    upload_file(
        path_or_fileobj=description.encode(),
        path_in_repo=TOKENS_METADATA_FILE,
        repo_id=repo_id,
        repo_type="dataset",
        token=args.hub_token,
        commit_message="Tokenizer fingerprint and preprocessing",
    )
    logger.info(f"Pushed the tokens to https://huggingface.co/datasets/{repo_id}.")
    return repo_id


def main(args):
    """Encode the requested splits (default: all) with the frozen tokenizer; save the ids and its fingerprint."""
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    if args.output_dir is not None:
        # Before any compute: an --output_dir that cannot be a folder fails now, not at `save_to_disk`.
        prepare_output_dir(args.output_dir)
    if args.push_to_hub:
        # Before any compute: an unreachable Hub or a token that cannot write fails now, not after the encoding.
        args.hub_model_id = create_hub_repo(
            args.output_dir or ".",
            args.hub_model_id,
            private=args.hub_private,
            token=args.hub_token,
            repo_type="dataset",
        )
    tokenizer = load_pretrained(VitVqganModel.from_pretrained, args.tokenizer).eval().requires_grad_(False)
    if args.resolution is None:
        args.resolution = tokenizer.config.image_size
    if args.resolution != tokenizer.config.image_size:
        raise ValueError(
            f"--resolution {args.resolution} differs from the tokenizer's image size {tokenizer.config.image_size}."
        )
    splits = load_image_dataset(
        args.dataset_name,
        args.train_data_dir,
        args.dataset_config_name,
        split=None,
        cache_dir=args.cache_dir,
        image_column=args.image_column,
    )
    names = args.splits or list(splits)
    missing = [name for name in names if name not in splits]
    if missing:
        raise ValueError(f"No split(s) {missing}; available splits: {sorted(splits)}.")
    metadata = {
        "format": TOKENS_FORMAT,
        "tokenizer": {**tokenizer_fingerprint(tokenizer), "name_or_path": args.tokenizer},
        "source": {
            "dataset_name": args.dataset_name,
            "dataset_config_name": args.dataset_config_name,
            "train_data_dir": args.train_data_dir,
        },
        "image_column": args.image_column,
        "label_column": args.label_column,
        "preprocessing": {
            "resolution": args.resolution,
            "crop": "resize shorter side + center crop (copy 0)",
            "augmentation": "random resized crop" + ("" if args.no_flip else " + horizontal flip") + " (copies 1..N)",
            "random_crop_scale": list(args.random_crop_scale),
            "num_augmented_copies": args.num_augmented_copies,
            "augmented_split": args.train_split,
            "seed": args.seed,
            "mixed_precision": args.mixed_precision,
        },
    }
    outputs, counts = {}, {}
    for name in names:
        outputs[name], skipped = encode_split(args, tokenizer, name, splits[name], metadata)
        counts[name] = {"rows": len(outputs[name]), "skipped_images": skipped}
        if skipped:
            logger.warning(f"{skipped} unreadable images of split {name!r} were skipped.")
    metadata["splits"] = counts
    description = json.dumps(metadata, indent=2)
    for dataset in outputs.values():
        dataset.info.description = description
    dataset_dict = DatasetDict(outputs)
    if args.output_dir is not None:
        written = [Path(args.output_dir, name) for name in (*dataset_dict, "dataset_dict.json", TOKENS_METADATA_FILE)]
        with report_write_errors(args.output_dir, "the pretokenized dataset", remove=written):
            dataset_dict.save_to_disk(args.output_dir)
            Path(args.output_dir, TOKENS_METADATA_FILE).write_text(description + "\n")
        logger.info(f"Saved {counts} to {args.output_dir}.")
    if args.push_to_hub:
        push_tokens_to_hub(args, dataset_dict, description)
    return dataset_dict


if __name__ == "__main__":
    with command_line_errors():
        main(parse_args())
