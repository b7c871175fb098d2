# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Convert the ImageNet ViT-VQGAN checkpoints of thuanz123/enhancing-transformers into `VitVqganModel` folders.

The source is https://github.com/thuanz123/enhancing-transformers (MIT license, code and weights): its ViT-VQGAN
"small" and "base" ImageNet 256×256 checkpoints, linked from its README, are PyTorch Lightning `.ckpt` files whose
`state_dict` holds the `ViTVQ` module of `enhancing/modules/stage1/vitvqgan.py` (encoder and decoder from
`stage1/layers.py`, quantizer from `stage1/quantizers.py`) plus the loss module (LPIPS and the discriminator).

That implementation differs from the paper, and each difference maps onto a `VitVqganConfig` option, not onto code
written for it:

| enhancing-transformers | converted model |
| --- | --- |
| tanh inside every block MLP, no tanh heads after the stacks | `hidden_act="tanh"`, `encoder_head_type="none"` |
| `ConvTranspose2d(dim, 3, patch, stride=patch)` to pixels | the equivalent `Linear(dim, patch*patch*3)`: `decoder_head_type="linear"` |
| fixed 2D sine-cosine position embeddings (stored in the checkpoint) | `position_embedding_type="sincos"`, checked equal |
| fused, bias-free `to_qkv` | split into `q_proj` / `k_proj` / `v_proj`, `qkv_bias=False` |
| `nn.LayerNorm` defaults | `layer_norm_eps=1e-5` |
| 3 output channels, no logit-Laplace output | `use_logit_laplace=False` |
| pixels in [0, 1] in and out | the affine maps to [-1, 1] are folded into the patch embedding and the output layer |

Usage (`--checkpoint`: a downloaded `.ckpt`, or the Hub repository holding it):

    python scripts/convert_enhancing_transformers_to_hf.py --checkpoint thuanz123/vitvqgan-imagenet-base \
        --output_dir vit-vqgan-imagenet-base [--push_to_hub --hub_model_id NAME]

The size (small or base) is read from the checkpoint's shapes. Every key of the checkpoint must match the key table
below (the loss module is dropped by pattern); unknown keys, missing weights and wrong shapes stop the conversion.

Parity: `tests/scripts/test_convert.py` converts a checkpoint with the original key names and shapes and compares the
converted model with a functional re-implementation of the original forward pass (token ids equal, pixels within
float32 rounding). The original checkpoints themselves were not available offline; a user measured ImageNet rFID 4.87
for the base one (enhancing-transformers issue #18), which is the figure to expect when evaluating the conversion.
"""

import argparse
import logging
import math
import pickle
import re
from pathlib import Path

import huggingface_hub
import torch
from huggingface_hub import HfApi, hf_hub_download

from vit_vqgan_hf import VitVqganConfig, VitVqganModel
from vit_vqgan_hf.cli import add_hub_args
from vit_vqgan_hf.hub import HUB_ERRORS, create_model_card, push_folder_to_hub
from vit_vqgan_hf.models.vit_vqgan import create_image_processor
from vit_vqgan_hf.models.vit_vqgan.modeling_vit_vqgan import sincos_position_embedding_2d
from vit_vqgan_hf.utils.errors import command_line_errors
from vit_vqgan_hf.utils.file_writes import report_write_errors


logger = logging.getLogger(__name__)


# Original key (regex) -> converted key. Position embeddings and `to_qkv` land on intermediate names that
# `convert_state_dict` resolves (checked against the model's own table; split into three projections).
# fmt: off
ORIGINAL_TO_CONVERTED_KEY_MAPPING = {
    r"^encoder\.to_patch_embedding\.0\.(weight|bias)$":                         r"encoder.patch_embeddings.\1",
    r"^encoder\.en_pos_embedding$":                                              r"encoder.position_embeddings.position_embeddings",
    r"^decoder\.de_pos_embedding$":                                              r"decoder.position_embeddings.position_embeddings",
    r"^(encoder|decoder)\.transformer\.layers\.(\d+)\.0\.norm\.(weight|bias)$": r"\1.stack.layers.\2.layernorm_before.\3",
    r"^(encoder|decoder)\.transformer\.layers\.(\d+)\.0\.fn\.to_qkv\.weight$":  r"\1.stack.layers.\2.attention.qkv_proj.weight",
    r"^(encoder|decoder)\.transformer\.layers\.(\d+)\.0\.fn\.to_out\.(weight|bias)$": r"\1.stack.layers.\2.attention.o_proj.\3",
    r"^(encoder|decoder)\.transformer\.layers\.(\d+)\.1\.norm\.(weight|bias)$": r"\1.stack.layers.\2.layernorm_after.\3",
    r"^(encoder|decoder)\.transformer\.layers\.(\d+)\.1\.fn\.net\.0\.(weight|bias)$": r"\1.stack.layers.\2.mlp.fc1.\3",
    r"^(encoder|decoder)\.transformer\.layers\.(\d+)\.1\.fn\.net\.2\.(weight|bias)$": r"\1.stack.layers.\2.mlp.fc2.\3",
    # The final LayerNorm sits inside `Transformer` in later versions of layers.py and next to it in earlier ones.
    r"^(encoder|decoder)\.(?:transformer\.)?norm\.(weight|bias)$":              r"\1.stack.layernorm.\2",
    # `to_pixel` is `Sequential(Rearrange, ConvTranspose2d)`, named `conv_out` in earlier versions.
    r"^decoder\.to_pixel\.(?:1|conv_out)\.(weight|bias)$":                      r"decoder.head.\1",
    r"^pre_quant\.(weight|bias)$":                                               r"quant_proj.\1",
    r"^post_quant\.(weight|bias)$":                                              r"post_quant_proj.\1",
    r"^quantizer\.embedding\.weight$":                                           r"quantizer.embedding.weight",
}
# fmt: on
# Training-only parts of the Lightning module: LPIPS (`loss.perceptual_loss.*`) and the discriminator.
DROPPED_KEY_PATTERNS = [r"^loss\."]
# `Attention(dim, heads, dim_head=64)`: no released config changes the head width.
ORIGINAL_ATTENTION_HEAD_DIM = 64


def convert_old_keys_to_new_keys(state_dict_keys: list[str]) -> dict[str, str | None]:
    """Map every original key to its converted name, or to `None` when it is dropped; refuse unknown keys."""
    key_mapping, unknown = {}, []
    for key in state_dict_keys:
        if any(re.match(pattern, key) for pattern in DROPPED_KEY_PATTERNS):
            key_mapping[key] = None
            continue
        for pattern, replacement in ORIGINAL_TO_CONVERTED_KEY_MAPPING.items():
            if re.match(pattern, key):
                key_mapping[key] = re.sub(pattern, replacement, key)
                break
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(f"{len(unknown)} checkpoint keys match no conversion rule: {unknown[:10]}")
    return key_mapping


def get_vit_vqgan_config(state_dict: dict[str, torch.Tensor]) -> VitVqganConfig:
    """The configuration of the original model, read from the shapes of its weights."""
    shape_keys = [
        "encoder.to_patch_embedding.0.weight",
        "encoder.en_pos_embedding",
        "quantizer.embedding.weight",
        *(
            f"{stack}.transformer.layers.0.{name}"
            for stack in ("encoder", "decoder")
            for name in ("0.norm.weight", "0.fn.to_qkv.weight", "1.fn.net.0.weight")
        ),
    ]
    if missing := [key for key in shape_keys if key not in state_dict]:
        raise ValueError(f"The checkpoint lacks {missing}, from which the model size is read.")
    patch_weight = state_dict["encoder.to_patch_embedding.0.weight"]  # (dim, channels, patch, patch)
    num_channels, patch_size = patch_weight.shape[1], patch_weight.shape[-1]
    grid_size = math.isqrt(state_dict["encoder.en_pos_embedding"].shape[1])
    codebook_size, codebook_dim = state_dict["quantizer.embedding.weight"].shape
    sizes = {}
    for stack in ("encoder", "decoder"):
        layer_ids = sorted(
            {
                int(match[1])
                for key in state_dict
                if (match := re.match(rf"{stack}\.transformer\.layers\.(\d+)\.", key))
            }
        )
        if layer_ids != list(range(len(layer_ids))):
            # A missing layer would otherwise convert silently into a shallower model.
            missing = sorted(set(range(layer_ids[-1] + 1)) - set(layer_ids))
            raise ValueError(
                f"The checkpoint's {stack} layers are not numbered 0..{layer_ids[-1]} without gaps: layers {missing} "
                "are missing. Is the checkpoint complete?"
            )
        hidden_size = state_dict[f"{stack}.transformer.layers.0.0.norm.weight"].shape[0]
        attention_width = state_dict[f"{stack}.transformer.layers.0.0.fn.to_qkv.weight"].shape[0] // 3
        if attention_width != hidden_size:
            raise ValueError(
                f"The {stack}'s attention width ({attention_width}) differs from its model width ({hidden_size}); "
                "VitVqganModel has no separate attention width."
            )
        sizes.update(
            {
                f"{stack}_hidden_size": hidden_size,
                f"{stack}_num_hidden_layers": len(layer_ids),
                f"{stack}_num_attention_heads": attention_width // ORIGINAL_ATTENTION_HEAD_DIM,
                f"{stack}_intermediate_size": state_dict[f"{stack}.transformer.layers.0.1.fn.net.0.weight"].shape[0],
            }
        )
    return VitVqganConfig(
        image_size=grid_size * patch_size,
        patch_size=patch_size,
        num_channels=num_channels,
        **sizes,
        codebook_size=codebook_size,
        codebook_dim=codebook_dim,
        use_l2_normalized_codes=True,
        commitment_cost=0.25,
        use_logit_laplace=False,
        hidden_act="tanh",
        layer_norm_eps=1e-5,
        qkv_bias=False,
        position_embedding_type="sincos",
        encoder_head_type="none",
        decoder_head_type="linear",
    )


def convert_state_dict(original: dict[str, torch.Tensor]) -> tuple[VitVqganConfig, dict[str, torch.Tensor]]:
    """Convert the original `state_dict` into the configuration and `state_dict` of a `VitVqganModel`."""
    key_mapping = convert_old_keys_to_new_keys(list(original))
    config = get_vit_vqgan_config(original)
    patch = config.patch_size
    converted = {}
    for old_key, new_key in key_mapping.items():
        if new_key is None:
            continue
        tensor = original[old_key].float()
        if new_key.endswith("position_embeddings.position_embeddings"):
            # Fixed tables: recomputed by the model, so only checked here.
            expected = sincos_position_embedding_2d(config.token_grid_size, config.token_grid_size, tensor.shape[-1])
            if tensor.shape[1:] != expected.shape or not torch.allclose(tensor[0], expected, atol=1e-4):
                raise ValueError(f"{old_key} is not the 2D sine-cosine table the converted model computes.")
        elif new_key.endswith("qkv_proj.weight"):
            for name, weight in zip(("q_proj", "k_proj", "v_proj"), tensor.chunk(3, dim=0)):
                converted[new_key.replace("qkv_proj", name)] = weight
        elif new_key.startswith("encoder.patch_embeddings."):
            # The original reads pixels x01 = (x + 1) / 2: conv(x01) = (W / 2) * x + (b + sum(W) / 2).
            weight = original["encoder.to_patch_embedding.0.weight"].float()
            converted[new_key] = tensor / 2 if new_key.endswith("weight") else tensor + weight.sum(dim=(1, 2, 3)) / 2
        elif new_key.startswith("decoder.head."):
            # ConvTranspose2d with kernel = stride = patch writes W[d, c, i, j] * token[d] to pixel (i, j) of channel c
            # of the token's patch; the model's head orders its outputs (i, j, c). Outputs y01 become 2 * y01 - 1.
            if new_key.endswith("weight"):
                if tensor.shape[1] != config.num_channels:
                    raise ValueError(
                        f"{old_key} predicts {tensor.shape[1]} channels per pixel; only checkpoints that predict the "
                        f"{config.num_channels} pixel channels directly (no logit-Laplace output) are supported."
                    )
                converted[new_key] = 2 * tensor.permute(2, 3, 1, 0).reshape(patch * patch * config.num_channels, -1)
            else:
                converted[new_key] = 2 * tensor.repeat(patch * patch) - 1
        else:
            converted[new_key] = tensor
    return config, converted


def check_state_dict(model: VitVqganModel, state_dict: dict[str, torch.Tensor]):
    """Refuse missing weights, extra weights and wrong shapes, naming them."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong_shapes = [
        f"{key}: {tuple(state_dict[key].shape)} instead of {tuple(expected[key].shape)}"
        for key in sorted(set(expected) & set(state_dict))
        if state_dict[key].shape != expected[key].shape
    ]
    problems = [
        f"{label}: {items[:10]}"
        for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shapes", wrong_shapes))
        if items
    ]
    if problems:
        raise ValueError("The converted weights do not fit VitVqganModel; " + "; ".join(problems))


CHECKPOINT_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
EXPECTED_CHECKPOINT = (
    "a downloaded checkpoint of thuanz123/enhancing-transformers (e.g. imagenet_vitvq_base.ckpt, linked from its "
    "README) or a file holding its `state_dict`, or a Hub repository holding one, optionally with the file name "
    "(e.g. thuanz123/vitvqgan-imagenet-base or thuanz123/vitvqgan-imagenet-base/FILE.ckpt)"
)


def resolve_checkpoint(checkpoint: str, revision: str | None = None, token: str | None = None) -> Path:
    """
    The local file named by `--checkpoint`: a path, or `owner/name[/file]` on the Hub, downloaded once through
    huggingface_hub into its cache. Without a file name the repository must hold exactly one checkpoint file.
    """
    path = Path(checkpoint)
    if path.is_file():
        return path
    parts = checkpoint.split("/")
    is_hub_name = all(re.fullmatch(r"[\w.-]+", part) and part not in (".", "..") for part in parts)
    # `dir/file.ckpt` is a local path; a Hub checkpoint is `owner/name` or `owner/name/file`.
    if path.exists() or not is_hub_name or len(parts) < 2 or (len(parts) == 2 and path.suffix in CHECKPOINT_SUFFIXES):
        raise FileNotFoundError(f"{checkpoint} is not a file. Expected {EXPECTED_CHECKPOINT}.")
    repo_id, filename = "/".join(parts[:2]), "/".join(parts[2:]) or None
    offline = " (offline mode is on: HF_HUB_OFFLINE=1)" if huggingface_hub.constants.HF_HUB_OFFLINE else ""
    try:
        if filename is None:
            files = HfApi(token=token).list_repo_files(repo_id, revision=revision)
            candidates = [name for name in files if name.endswith(CHECKPOINT_SUFFIXES)]
            if len(candidates) != 1:
                found = f"the checkpoint files {candidates}" if candidates else f"no checkpoint file (only {files})"
                raise LookupError(f"{repo_id} holds {found}; name one: --checkpoint {repo_id}/FILE.")
            filename = candidates[0]
        return Path(hf_hub_download(repo_id, filename, revision=revision, token=token))
    except LookupError as error:
        raise ValueError(str(error)) from error
    except HUB_ERRORS as error:  # offline, no network, unknown or gated repository, missing file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ValueError(
            f"--checkpoint {checkpoint!r} is no local file, and it could not be downloaded from the Hugging Face "
            f"Hub{offline} ({type(error).__name__}: {reason}). Expected {EXPECTED_CHECKPOINT}; download it where the "
            "Hub can be reached, or pass the local file."
        ) from error


def load_original_state_dict(checkpoint_path: str | Path) -> dict[str, torch.Tensor]:
    """The `state_dict` of a Lightning `.ckpt` (or of a file holding the bare `state_dict`), loaded without
    unpickling arbitrary objects."""
    if not Path(checkpoint_path).is_file():
        raise FileNotFoundError(f"{checkpoint_path} is not a file. Expected {EXPECTED_CHECKPOINT}.")
    try:
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(
            f"{checkpoint_path} holds Python objects besides tensors, which are not loaded for safety ({error}). "
            "If you trust the file (unpickling it can run any code), save its weights alone where the original "
            "code is installed, e.g. `torch.save(torch.load(path, weights_only=False)['state_dict'], "
            "'state_dict.pt')`, and convert that file."
        ) from error
    return checkpoint.get("state_dict", checkpoint)


# The released ImageNet configurations (`configs/imagenet_vitvq_{small,base}.yaml`): width and encoder/decoder depths.
RELEASED_SIZES = {(512, 8, 8): "small", (768, 12, 12): "base"}


def original_size_name(config: VitVqganConfig) -> str:
    """`"small"` or `"base"` for the released configurations, else `"custom-size"`."""
    size = (config.encoder_hidden_size, config.encoder_num_hidden_layers, config.decoder_num_hidden_layers)
    return RELEASED_SIZES.get(size, "custom-size")


def model_card_text(size: str) -> tuple[str, str]:
    """(provenance paragraph, extra citation) of the converted model's card."""
    provenance = (
        f"**Converted weights.** This is the ImageNet ViT-VQGAN {size} checkpoint released by Thuan H. Nguyen in "
        "[thuanz123/enhancing-transformers](https://github.com/thuanz123/enhancing-transformers) (MIT license, "
        f"trained with its `configs/imagenet_vitvq_{size}.yaml`), converted by "
        "`scripts/convert_enhancing_transformers_to_hf.py` of vit-vqgan-hf. That unofficial implementation differs "
        "from the paper: tanh inside every block MLP instead of tanh heads after the stacks, a linear map from each "
        "token to its patch's pixels, fixed 2D sine-cosine position embeddings, bias-free query/key/value "
        "projections, and an ℓ1 + ℓ2 + LPIPS + StyleGAN-discriminator loss without logit-Laplace. Its [0, 1] pixel "
        "range is folded into the first and last layers, so this model takes and returns [-1, 1] like every "
        "vit-vqgan-hf tokenizer. A user measured an ImageNet rFID of 4.87 for the base checkpoint "
        "(enhancing-transformers issue #18, with the FID code of the RQ-VAE repository); the conversion itself has "
        "not been evaluated here."
    )
    citation = (
        "The converted weights: Thuan H. Nguyen, *Enhancing Transformers* (2022), "
        "https://github.com/thuanz123/enhancing-transformers."
    )
    return provenance, citation


@torch.no_grad()
def convert_checkpoint(
    checkpoint: str | Path,
    output_dir: str | Path,
    push_to_hub: bool = False,
    hub_model_id: str | None = None,
    hub_private: bool = False,
    hub_token: str | None = None,
    revision: str | None = None,
    allow_custom_size: bool = False,
) -> VitVqganModel:
    """Convert `checkpoint` (a file or a Hub repository, see [`resolve_checkpoint`]), save the model and its card to
    `output_dir`, optionally push the folder. A checkpoint whose width and depths match neither released configuration
    is refused unless `allow_custom_size` (a release missing its last layers would look like that)."""
    checkpoint_path = resolve_checkpoint(str(checkpoint), revision=revision, token=hub_token)
    config, state_dict = convert_state_dict(load_original_state_dict(checkpoint_path))
    if original_size_name(config) == "custom-size":
        size = (
            f"The checkpoint has width {config.encoder_hidden_size} and {config.encoder_num_hidden_layers} encoder / "
            f"{config.decoder_num_hidden_layers} decoder layers, which matches neither released configuration (small: "
            "512 wide, 8/8 layers; base: 768 wide, 12/12 layers)"
        )
        if not allow_custom_size:
            raise ValueError(
                f"{size}: a released checkpoint missing its last layers looks like this. If it is a model of a custom "
                "size, pass --allow_custom_size to convert it as it is."
            )
        logger.warning(f"{size}. Converting it as it is (--allow_custom_size).")
    model = VitVqganModel(config).eval()
    check_state_dict(model, state_dict)
    model.load_state_dict(state_dict, strict=True)
    with report_write_errors(output_dir, "the converted model", remove=[Path(output_dir, "model.safetensors")]):
        model.save_pretrained(output_dir)
        create_image_processor(config).save_pretrained(output_dir)

    # The saved folder reloads to the same model.
    reloaded = VitVqganModel.from_pretrained(output_dir).eval()
    pixel_values = torch.rand(1, config.num_channels, config.image_size, config.image_size) * 2 - 1
    if not torch.equal(model(pixel_values).reconstruction, reloaded(pixel_values).reconstruction):
        raise RuntimeError(f"The model saved to {output_dir} does not reload to the converted one.")

    provenance, citation = model_card_text(original_size_name(config))
    card = create_model_card(
        config,
        repo_id=hub_model_id if push_to_hub else str(output_dir),
        dataset="ILSVRC/imagenet-1k",
        license="mit",
        provenance=provenance,
        extra_citation=citation,
    )
    card_path = Path(output_dir) / "README.md"
    with report_write_errors(card_path, "the model card", remove=[card_path]):
        card.save(card_path)
    if push_to_hub:
        push_folder_to_hub(output_dir, hub_model_id, private=hub_private, token=hub_token)
    return model


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--checkpoint",
        type=str,
        required=True,
        help="The original Lightning `.ckpt` (imagenet_vitvq_small.ckpt or imagenet_vitvq_base.ckpt), a file "
        "holding its `state_dict` alone, or a Hub repository holding one (`owner/name` or `owner/name/FILE`), "
        "downloaded once into the huggingface_hub cache.",
    )
    parser.add_argument("--revision", default=None, help="Branch, tag or commit of a Hub --checkpoint.")
    parser.add_argument(
        "--output_dir", type=str, required=True, help="Folder to write the converted model and its model card to."
    )
    parser.add_argument(
        "--allow_custom_size",
        action="store_true",
        help="Convert a checkpoint whose width and depths match neither released configuration (refused otherwise: "
        "a released checkpoint missing its last layers looks like that).",
    )
    add_hub_args(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None):
    args = parse_args(argv)
    model = convert_checkpoint(
        args.checkpoint,
        args.output_dir,
        args.push_to_hub,
        args.hub_model_id,
        args.hub_private,
        args.hub_token,
        revision=args.revision,
        allow_custom_size=args.allow_custom_size,
    )
    config = model.config
    print(
        f"Converted a {original_size_name(config)} ViT-VQGAN ({model.num_parameters() / 1e6:.1f}M parameters, "
        f"{config.image_size}px, {config.token_grid_size}x{config.token_grid_size} tokens, "
        f"{config.codebook_size} codes) to {args.output_dir}."
    )


if __name__ == "__main__":
    with command_line_errors():
        main()
