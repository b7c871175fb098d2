# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Model cards filled from a training run.

The card templates are `vit_vqgan_hf/model_cards/{vit-vqgan,vim}.md` (shipped with the package; the repository's
top-level `model_cards/` links to that folder). They are Jinja templates in the form `ModelCard.from_template` of
huggingface_hub expects (`{{ card_data }}` is the YAML metadata); `create_model_card` renders them with undefined
variables as errors, so a template and its caller cannot drift apart silently.
"""

import argparse
import os
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path

import jinja2
import torch
from huggingface_hub import ModelCard, ModelCardData

from ..evaluation.results import load_results, results_to_model_index
from ..models.vim.configuration_vim import PRESETS as VIM_PRESETS
from ..models.vim.configuration_vim import VimConfig
from ..models.vim.modeling_vim import VimForCausalLM
from ..models.vit_vqgan.configuration_vit_vqgan import PRESETS as VIT_VQGAN_PRESETS
from ..models.vit_vqgan.configuration_vit_vqgan import VitVqganConfig
from ..models.vit_vqgan.modeling_vit_vqgan import VitVqganModel


LIBRARY_NAME = "vit-vqgan-hf"
PAPER_TAG = "arxiv:2110.04627"

# Training arguments left out of a card: local paths and Hub settings say nothing about the model (and may be private).
_UNRECORDED_ARGUMENTS = {
    "output_dir",
    "logging_dir",
    "cache_dir",
    "resume_from_checkpoint",
    "push_to_hub",
    "hub_model_id",
    "hub_private",
    "hub_token",
}

_TOKENIZER_VARIANTS = {
    "ss": ("ViT-VQGAN-SS", "Small encoder, Small decoder", 1.99),
    "bb": ("ViT-VQGAN-BB", "Base encoder, Base decoder", 1.55),
    "sl": ("ViT-VQGAN-SL", "Small encoder, Large decoder", 1.28),
    "tiny": ("ViT-VQGAN-tiny", "test and CPU size", None),
}
_VIM_VARIANTS = {
    "base": (
        "VIM-Base",
        "the paper reports class-conditional ImageNet FID 8.81 and IS 110.8 for VIM-Base over ViT-VQGAN-SS tokens "
        "(256×256, 32×32 tokens, no rejection sampling; Table 8).",
    ),
    "large": (
        "VIM-Large",
        "the paper reports class-conditional ImageNet FID 4.17 and IS 175.1 for VIM-Large over ViT-VQGAN-SS tokens "
        "(256×256, no rejection sampling; 3.04 and 227.4 when keeping half of the samples by a ResNet-101 "
        "classifier; Table 6).",
    ),
    "tiny": ("VIM-tiny", ""),
}


def _preset_name(config, presets: Mapping, preset_config) -> str | None:
    """Name of the preset whose architecture `config` has, comparing every field a preset fixes plus the fields
    that decide the model's shapes."""
    for name in presets:
        reference = preset_config(name)
        fields = set(presets[name]) | {"image_size", "patch_size", "codebook_size", "codebook_dim", "token_grid_size"}
        if all(getattr(config, field, None) == getattr(reference, field, None) for field in fields):
            return name
    return None


def _count_parameters(model_class, config) -> int:
    # Built on the meta device: shapes only, no memory and no initialization.
    with torch.device("meta"):
        return model_class(config).num_parameters()


def _format_count(count: int) -> str:
    return f"{count / 1e9:.2f}B" if count >= 1e9 else f"{count / 1e6:.1f}M"


def _format_value(value) -> str:
    if isinstance(value, float):
        value = f"{value:.6g}"
    elif isinstance(value, (list, tuple)):
        value = ", ".join(str(item) for item in value)
    # Markdown table cells: no pipes or line breaks.
    return str(value).replace("|", "\\|").replace("\n", " ")


def _flatten(mapping: Mapping, prefix: str = "") -> list[tuple[str, str]]:
    rows = []
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            rows.extend(_flatten(value, f"{prefix}{key}."))
        else:
            rows.append((f"{prefix}{key}", _format_value(value)))
    return rows


def _is_local_path(value) -> bool:
    return isinstance(value, str) and (os.path.isabs(value) or (os.sep in value and os.path.exists(value)))


def _training_rows(training_args) -> list[tuple[str, str]]:
    if training_args is None:
        return []
    arguments = vars(training_args) if isinstance(training_args, argparse.Namespace) else dict(training_args)
    return [
        # A local path names someone's machine (absolute) or says nothing to a reader (relative, like
        # `outputs/tokenizer`); preset names and Hub ids stay.
        (name, "(a local path)" if _is_local_path(value) else _format_value(value))
        for name, value in arguments.items()
        if value is not None and name not in _UNRECORDED_ARGUMENTS and name != "token" and not name.endswith("_token")
    ]


def _evaluation(results, model_name: str) -> tuple[list[dict] | None, list[tuple[str, str]], list[tuple[str, str]]]:
    """(model-index entries, metric rows, protocol rows) of a results file of `vit_vqgan_hf.evaluation`."""
    if results is None:
        return None, [], []
    if not isinstance(results, Mapping):
        results = load_results(results)
    model_index = results_to_model_index(dict(results), model_name)
    entry = model_index[0]["results"][0]
    metrics = [
        (
            metric["name"],
            _format_value(metric["value"])
            + (f" ± {_format_value(metric['args']['std'])}" if "std" in metric["args"] else ""),
        )
        for metric in entry["metrics"]
    ]
    protocol = results.get("protocol", {})
    balance = protocol.get("class_balance") or {}
    network = protocol.get("feature_network") or {}
    reference = protocol.get("reference") or {}
    versions = protocol.get("library_versions") or {}
    rows = [
        ("task", entry["task"]["name"]),
        ("data", " / ".join(str(entry["dataset"][key]) for key in ("name", "split") if entry["dataset"].get(key))),
        ("images", protocol.get("num_samples")),
        ("image size", protocol.get("image_size")),
        ("resizing", protocol.get("resize")),
        (
            "class balance",
            f"{balance['num_classes']} classes, {balance['min_images_per_class']} to "
            f"{balance['max_images_per_class']} images per class"
            if balance.get("labelled") and "num_classes" in balance
            else None,
        ),
        (
            "feature network",
            f"{network['name']} (weights sha256 {network['weights_sha256']})" if network.get("name") else None,
        ),
        ("reference", ", ".join(f"{key} {value}" for key, value in _flatten(reference)) or None),
        ("sampling", ", ".join(f"{key} {value}" for key, value in _flatten(protocol.get("sampling") or {})) or None),
        ("seeds", ", ".join(f"{key} {value}" for key, value in _flatten(protocol.get("seeds") or {})) or None),
        *((f"`{name}`", implementation) for name, implementation in (protocol.get("implementations") or {}).items()),
        *((f"`{name}` not computed", reason) for name, reason in (results.get("skipped") or {}).items()),
        ("libraries", ", ".join(f"{name} {version}" for name, version in versions.items() if version) or None),
    ]
    return model_index, metrics, [(name, _format_value(value)) for name, value in rows if value not in (None, "")]


def _training_data(dataset: str | None, training_args) -> tuple[str, str]:
    """(markdown paragraph on the training data, short name of the data for the limitations)."""
    if dataset:
        return f"The [`{dataset}`](https://huggingface.co/datasets/{dataset}) dataset.", f"`{dataset}`"
    if training_args is not None:
        arguments = vars(training_args) if isinstance(training_args, argparse.Namespace) else training_args
        if arguments.get("pretokenized_dataset"):
            return (
                "Token ids of a local image dataset, written by `examples/pretokenize.py` (`--pretokenized_dataset`).",
                "the training images",
            )
        return "A local image folder (`--train_data_dir`).", "the training images"
    return "Not recorded with this checkpoint.", "the training images"


def _tokenizer_variables(config: VitVqganConfig) -> dict:
    preset = _preset_name(config, VIT_VQGAN_PRESETS, VitVqganConfig.from_preset)
    name, description, rfid = _TOKENIZER_VARIANTS.get(preset, ("ViT-VQGAN", "custom size", None))
    grid = config.token_grid_size
    pixel_outputs = "μ and log b per channel, reconstruction = sigmoid(μ)" if config.use_logit_laplace else "pixels"
    heads = {"mlp": f"Linear–{config.head_act}–Linear", "none": "none", "linear": "Linear"}
    num_parameters = _format_count(_count_parameters(VitVqganModel, config))
    architecture = [
        ("Variant", f"{name} ({description})"),
        ("Parameters", num_parameters),
        ("Input", f"{config.image_size}×{config.image_size}×{config.num_channels}, pixel values in [-1, 1]"),
        ("Tokens", f"{grid}×{grid} per image, one per {config.patch_size}×{config.patch_size} patch"),
        (
            "Codebook",
            f"{config.codebook_size} codes of dimension {config.codebook_dim}"
            + (", l2-normalized (cosine lookup)" if config.use_l2_normalized_codes else "")
            + (", a learned linear map of frozen codes (SimVQ)" if config.use_codebook_linear_map else ""),
        ),
        (
            "Quantizer gradient",
            "rotation trick (Fifty et al. 2024)" if config.quantizer_gradient == "rotation" else "straight-through",
        ),
        (
            "Codebook entropy penalty",
            f"weight {config.codebook_entropy_weight:g}, temperature {config.codebook_entropy_temperature:g} (not in the "
            "paper)"
            if config.codebook_entropy_weight > 0
            else "none (as in the paper)",
        ),
        *(
            (
                stack.capitalize(),
                f"{getattr(config, f'{stack}_num_hidden_layers')} pre-LayerNorm blocks, width "
                f"{getattr(config, f'{stack}_hidden_size')}, {getattr(config, f'{stack}_num_attention_heads')} heads, "
                f"MLP {getattr(config, f'{stack}_intermediate_size')} ({config.hidden_act}), final LayerNorm",
            )
            for stack in ("encoder", "decoder")
        ),
        ("Encoder head", heads[config.encoder_head_type]),
        ("Decoder head", f"{heads[config.decoder_head_type]} to each patch's {pixel_outputs}"),
        (
            "Position embeddings",
            "fixed 2D sine-cosine" if config.position_embedding_type == "sincos" else "learned, absolute",
        ),
    ]
    return {
        "model_name": name,
        "variant": f"{name}, {description}",
        "num_parameters": num_parameters,
        "architecture": architecture,
        "image_size": config.image_size,
        "patch_size": config.patch_size,
        "token_grid_size": grid,
        "codebook_size": config.codebook_size,
        "codebook_dim": config.codebook_dim,
        "paper_reference": (
            f"the paper reports an ImageNet reconstruction FID (rFID) of {rfid} for its own {name} at 256×256 "
            "(Table 4)."
            if rfid is not None
            else ""
        ),
    }


def _pipeline_variables(config: VimConfig, tokenizer_config: VitVqganConfig) -> dict:
    preset = _preset_name(config, VIM_PRESETS, VimConfig.from_preset)
    name, paper_reference = _VIM_VARIANTS.get(preset, ("VIM", ""))
    if config.num_classes != 1000:
        paper_reference = ""
    tokenizer = _tokenizer_variables(tokenizer_config)
    if config.num_classes:
        conditioning = f"a class token (one of {config.num_classes} classes)"
        if config.has_trained_null_token:  # otherwise the null token was never trained
            conditioning += " or the null token"
        example_label = 207 if config.num_classes == 1000 else 0
        example_name = config.id2label.get(example_label, "")
        intended_use = "class-conditional image generation: images of chosen classes (`class_labels`)"
        if config.has_trained_null_token:
            intended_use += ", optionally with classifier-free guidance (`guidance_scale`)"
        conditioning_row = f"class-conditional, {config.num_classes} classes; " + (
            f"class token replaced by the null token with probability {config.class_dropout_prob} in training"
            if config.class_dropout_prob > 0
            else "no label dropout (the paper); null token fitted after training, the transformer frozen, for guidance"
            if config.null_token_fitted
            else "no label dropout (the paper), so no guidance"
        )
    else:
        conditioning = "the null token (unconditional)"
        example_label, example_name = None, ""
        intended_use = "unconditional image generation"
        conditioning_row = "unconditional"
    architecture = [
        ("Variant", f"{name} ({preset or 'custom'} size)"),
        ("Transformer parameters", _format_count(_count_parameters(VimForCausalLM, config))),
        (
            "Transformer",
            f"{config.num_hidden_layers} pre-LayerNorm decoder blocks, width {config.hidden_size}, "
            f"{config.num_attention_heads} heads, MLP {config.intermediate_size} ({config.hidden_act}), "
            f"dropout {config.hidden_dropout_prob}",
        ),
        (
            "Vocabulary",
            f"{config.codebook_size} image tokens + {config.num_classes} class tokens + 1 null token; logits over "
            "image tokens only",
        ),
        ("Sequence", f"1 prefix token + {config.num_image_tokens} image tokens in raster order"),
        ("Conditioning", conditioning_row),
        ("Tokenizer", f"{tokenizer['variant']} ({tokenizer['num_parameters']} parameters)"),
    ]
    return {
        "model_name": name,
        "variant": name,
        "architecture": architecture,
        "image_size": tokenizer_config.image_size,
        "token_grid_size": config.token_grid_size,
        "num_image_tokens": config.num_image_tokens,
        "conditioning": conditioning,
        "intended_use": intended_use,
        "example_class_labels": "None" if example_label is None else f"[{example_label}]",
        # Only real class names, not the generic `LABEL_<i>` of an unnamed config.
        "example_class_name": "" if example_name.startswith("LABEL_") else example_name,
        "paper_reference": paper_reference,
    }


def create_model_card(
    config: VitVqganConfig | VimConfig,
    training_args: argparse.Namespace | Mapping | None = None,
    *,
    tokenizer_config: VitVqganConfig | None = None,
    results: Mapping | str | os.PathLike | None = None,
    repo_id: str | None = None,
    base_model: str | None = None,
    dataset: str | None = None,
    license: str = "apache-2.0",
    provenance: str = "",
    extra_citation: str = "",
) -> ModelCard:
    r"""
    Fill the model card of a tokenizer folder (`config` is a [`VitVqganConfig`], template `model_cards/vit-vqgan.md`)
    or of a VIM pipeline folder (`config` is the transformer's [`VimConfig`], template `model_cards/vim.md`).

    Args:
        config ([`VitVqganConfig`] or [`VimConfig`]):
            Configuration of the model the card describes; it chooses the template.
        training_args (`argparse.Namespace` or `Mapping`, *optional*):
            Arguments of the training run, listed in the card. `None` values, run folders, Hub settings and tokens
            (`output_dir`, `hub_token`, any `*_token`, ...) are left out; local paths show as "(a local path)".
        tokenizer_config ([`VitVqganConfig`], *optional*):
            Configuration of the pipeline's tokenizer (`pipe.vqgan.config`); required with a [`VimConfig`].
        results (`Mapping`, `str` or `os.PathLike`, *optional*):
            A results dict of `vit_vqgan_hf.evaluation` (`build_results`, `linear_probe_results`) or the path of its
            JSON file (`save_results`). Its headline metrics become the card's `model-index` metadata
            (`results_to_model_index`) and its evaluation table, its protocol (data, sample count, class balance,
            feature network, reference, sampling, seeds, implementations, library versions) is listed under it.
            Needs the `training` extras.
        repo_id (`str`, *optional*):
            Hub repository id (or local folder) used in the title and the usage snippets; defaults to a placeholder.
        base_model (`str`, *optional*):
            Hub repository id of the model this one builds on: the tokenizer of a pipeline. A local folder is refused.
        dataset (`str`, *optional*):
            Hub dataset id of the training data; defaults to `training_args.dataset_name`.
        license (`str`, *optional*, defaults to `"apache-2.0"`):
            License of the weights.
        provenance (`str`, *optional*, defaults to `""`):
            Markdown paragraph on where the weights come from (e.g. a converted checkpoint), shown after the summary.
        extra_citation (`str`, *optional*, defaults to `""`):
            Markdown shown after the paper's BibTeX (e.g. the citation of converted weights).

    Returns:
        [`huggingface_hub.ModelCard`]: save it as `README.md` of the folder with `card.save(path)`.

    Example:

    ```python
    >>> from vit_vqgan_hf import VitVqganConfig
    >>> from vit_vqgan_hf.hub import create_model_card

    >>> card = create_model_card(VitVqganConfig.from_preset("ss"), {"dataset_name": "ILSVRC/imagenet-1k"})
    >>> card.data.library_name, card.data.datasets
    ('vit-vqgan-hf', ['ILSVRC/imagenet-1k'])
    ```
    """
    if base_model is not None and os.path.isdir(base_model):
        raise ValueError(
            f"`base_model` must be a Hub repository id, got the local folder {base_model!r}; pass `base_model=None` "
            "for a tokenizer that is not on the Hub."
        )
    if training_args is not None and dataset is None:
        arguments = vars(training_args) if isinstance(training_args, argparse.Namespace) else training_args
        dataset = arguments.get("dataset_name")
    if isinstance(config, VitVqganConfig):
        template_name = "vit-vqgan.md"
        variables = _tokenizer_variables(config)
        pipeline_tag = "image-feature-extraction"
        tags = ["vit-vqgan", "image-tokenizer", "vector-quantization", PAPER_TAG]
    elif isinstance(config, VimConfig):
        if not isinstance(tokenizer_config, VitVqganConfig):
            raise ValueError("A VIM pipeline card needs `tokenizer_config`, the VitVqganConfig of `pipe.vqgan`.")
        template_name = "vim.md"
        variables = _pipeline_variables(config, tokenizer_config)
        pipeline_tag = "unconditional-image-generation"
        conditioning_tags = ["class-conditional"] if config.num_classes else ["unconditional"]
        tags = ["vim", "vit-vqgan", "autoregressive", "image-generation", *conditioning_tags, PAPER_TAG]
    else:
        raise ValueError(f"`config` must be a VitVqganConfig or a VimConfig, got {type(config).__name__}.")

    if repo_id:
        variables["model_name"] = Path(repo_id).name
    model_index, metrics, protocol = _evaluation(results, variables["model_name"])
    card_data = ModelCardData(
        license=license,
        library_name=LIBRARY_NAME,
        pipeline_tag=pipeline_tag,
        tags=tags,
        datasets=[dataset] if dataset else None,
        base_model=base_model,
        **({"model-index": model_index} if model_index else {}),
    )
    training_data, dataset_description = _training_data(dataset, training_args)
    variables.update(
        repo_id=repo_id or "path/to/this/folder",
        repo_is_local=repo_id is None or os.path.isdir(repo_id),
        base_model=base_model or "",
        provenance=provenance,
        extra_citation=extra_citation,
        training_data=training_data,
        dataset_description=dataset_description,
        training_args=_training_rows(training_args),
        metrics=metrics,
        protocol=protocol,
    )
    template = files("vit_vqgan_hf").joinpath("model_cards", template_name).read_text(encoding="utf-8")
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return ModelCard(environment.from_string(template).render(card_data=card_data.to_yaml(), **variables))


__all__ = ["LIBRARY_NAME", "create_model_card"]
