"""Builders of the tiny, seeded test objects shared by the test suite: tokenizers, VIM transformers, pipelines,
discriminators and image folders (offline, CPU). Each builder takes overrides, so that a test keeps the sizes it
asserts on; tests/conftest.py shares the common ones as fixtures."""

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import PIL.Image
import torch

from vit_vqgan_hf import VimConfig, VimForCausalLM, VimPipeline, VitVqganConfig, VitVqganModel
from vit_vqgan_hf.training import VitVqganDiscriminator, VitVqganDiscriminatorConfig


# The tiny pipeline: a 16x16 tokenizer with 4x4 tokens of 29 codes and a 3-class VIM over them, so that every image is
# 16 transformer steps. Label dropout marks the null token as trained: guidance and unconditional sampling are allowed.
PIPELINE_CODEBOOK_SIZE = 29
PIPELINE_GRID = 4
PIPELINE_NUM_CLASSES = 3
PIPELINE_TOKENIZER = {
    "image_size": 16,
    "patch_size": 4,
    "codebook_size": PIPELINE_CODEBOOK_SIZE,
    "encoder_hidden_size": 16,
    "encoder_num_attention_heads": 2,
    "encoder_intermediate_size": 20,
    "decoder_hidden_size": 16,
    "decoder_num_attention_heads": 2,
    "decoder_intermediate_size": 20,
}
PIPELINE_TRANSFORMER = {
    "codebook_size": PIPELINE_CODEBOOK_SIZE,
    "token_grid_size": PIPELINE_GRID,
    "num_classes": PIPELINE_NUM_CLASSES,
    "hidden_size": 24,
    "num_attention_heads": 2,
    "intermediate_size": 37,
    "class_dropout_prob": 0.1,
}

REPO_ROOT = Path(__file__).resolve().parents[1]


def load_script(path) -> ModuleType:
    """Import a script (`examples/`, `benchmarks/`, `scripts/`) by its path, as a module named after its file, for its
    functions and `main(parse_args([...]))`."""
    path = Path(path)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_tokenizer_config(**overrides) -> VitVqganConfig:
    """The "tiny" ViT-VQGAN preset with `overrides`: 32x32 images, patch 4 (8x8 tokens), 256 codes of dimension 8, an
    encoder and a decoder of 2 layers, width 96, 4 heads, MLP 192."""
    return VitVqganConfig.from_preset("tiny", **overrides)


def tiny_tokenizer(seed: int = 0, **overrides) -> VitVqganModel:
    """A `VitVqganModel` of `tiny_tokenizer_config(**overrides)`, initialized after `torch.manual_seed(seed)`, in eval
    mode."""
    torch.manual_seed(seed)
    return VitVqganModel(tiny_tokenizer_config(**overrides)).eval()


def tiny_vim_config(**overrides) -> VimConfig:
    """The "tiny" VIM preset with `overrides`: an 8x8 token grid of 256 codes, 10 classes, 2 layers of width 64, 4
    heads, MLP 128 (the transformer of `tiny_tokenizer()`'s tokens)."""
    return VimConfig.from_preset("tiny", **overrides)


def tiny_transformer(seed: int = 0, model_class=VimForCausalLM, **overrides):
    """A `model_class` (`VimForCausalLM` or `VimModel`) of `tiny_vim_config(**overrides)`, initialized after
    `torch.manual_seed(seed)`, in eval mode."""
    torch.manual_seed(seed)
    return model_class(tiny_vim_config(**overrides)).eval()


def tiny_pipeline(tokenizer=None, transformer=None, **transformer_overrides) -> VimPipeline:
    """A `VimPipeline` with its progress bar off. By default the tiny pipeline: `tiny_tokenizer(**PIPELINE_TOKENIZER)`
    and `tiny_transformer(**PIPELINE_TRANSFORMER, **transformer_overrides)` (16x16 images, 4x4 tokens of 29 codes, 3
    classes); `transformer_overrides` go with the default transformer only."""
    if transformer is not None and transformer_overrides:
        raise TypeError("Pass either `transformer` or overrides of the default transformer, not both.")
    tokenizer = tokenizer if tokenizer is not None else tiny_tokenizer(**PIPELINE_TOKENIZER)
    if transformer is None:
        transformer = tiny_transformer(**{**PIPELINE_TRANSFORMER, **transformer_overrides})
    pipe = VimPipeline(vqgan=tokenizer, transformer=transformer)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_discriminator(seed: int = 0, **overrides) -> VitVqganDiscriminator:
    """A `VitVqganDiscriminator` of the "tiny" preset (32x32 images) with `overrides`, initialized after
    `torch.manual_seed(seed)`, in training mode."""
    torch.manual_seed(seed)
    return VitVqganDiscriminator(VitVqganDiscriminatorConfig.from_preset("tiny", **overrides))


def striped_image(width: int, height: int) -> PIL.Image.Image:
    """Red left of the central height x height square, green inside it, blue right of it."""
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    left = (width - height) // 2
    pixels[:, :left, 0] = 255
    pixels[:, left : left + height, 1] = 255
    pixels[:, left + height :, 2] = 255
    return PIL.Image.fromarray(pixels)


def write_image_folder(root, sizes_per_class: dict, corrupt: bool = False, seed: int = 0) -> Path:
    """Write `root/<class>/<i>.png`: random RGB images, `sizes_per_class` mapping a class name ("" for `root` itself)
    to a list of (width, height). With `corrupt`, also an unreadable `broken.png` in the first class's folder: a PNG
    signature followed by garbage, which an image folder loader lists and fails to decode. Returns `root`."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for class_name, sizes in sizes_per_class.items():
        folder = root / class_name
        folder.mkdir(parents=True, exist_ok=True)
        for index, (width, height) in enumerate(sizes):
            pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            PIL.Image.fromarray(pixels).save(folder / f"{index}.png")
    if corrupt:
        (root / next(iter(sizes_per_class)) / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not an image" * 4)
    return root
