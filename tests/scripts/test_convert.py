"""Tests of scripts/convert_enhancing_transformers_to_hf.py on checkpoints with the original key names and shapes.

The original code (thuanz123/enhancing-transformers, `enhancing/modules/stage1/`) is not installed here, so
`original_forward` re-implements its forward pass from the original weights, following that code's structure: conv
patch embedding on [0, 1] pixels, pre-LayerNorm blocks with a fused bias-free qkv and a tanh MLP, final LayerNorm,
`pre_quant`, l2-normalized nearest code by squared distance, `post_quant`, and a transposed convolution to pixels.
"""

import json
import math
import re
from pathlib import Path

import huggingface_hub
import pytest
import torch
import torch.nn.functional as F
from huggingface_hub.errors import StrictDataclassClassValidationError
from transformers import AutoImageProcessor

from tests.conftest import fill_disk
from tests.testing_utils import load_script
from vit_vqgan_hf import VitVqganConfig, VitVqganModel
from vit_vqgan_hf.models.vit_vqgan.configuration_vit_vqgan import PRESETS
from vit_vqgan_hf.utils.file_writes import OutputWriteError


SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "convert_enhancing_transformers_to_hf.py"
convert = load_script(SCRIPT)

# Original-side sizes, distinct for encoder and decoder; the original attention head width is 64.
IMAGE_SIZE, PATCH_SIZE = 16, 4
GRID = IMAGE_SIZE // PATCH_SIZE
STACKS = {"encoder": (128, 2, 96), "decoder": (192, 1, 80)}  # width, depth, MLP width
CODEBOOK_SIZE, CODEBOOK_DIM = 24, 6
LAYOUTS = ("late", "early")  # where the final LayerNorm and the transposed convolution are named


def original_sincos(dim: int, grid: int) -> torch.Tensor:
    """The original 2D sine-cosine table (MAE's): columns in the first half of the channels, rows in the second."""
    rows, cols = torch.meshgrid(
        torch.arange(grid, dtype=torch.float64), torch.arange(grid, dtype=torch.float64), indexing="ij"
    )
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim / 4))
    halves = []
    for positions in (cols.reshape(-1), rows.reshape(-1)):
        angles = positions[:, None] * omega[None, :]
        halves.append(torch.cat([angles.sin(), angles.cos()], dim=1))
    return torch.cat(halves, dim=1).float()[None]


def original_state_dict(layout: str = "late", seed: int = 0, out_channels: int = 3) -> dict[str, torch.Tensor]:
    """Random weights under the original key names and shapes, plus loss-module keys, as in a Lightning checkpoint."""
    generator = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=0.2, offset=0.0):
        return torch.randn(*shape, generator=generator) * scale + offset

    encoder_width, decoder_width = STACKS["encoder"][0], STACKS["decoder"][0]
    state_dict = {
        "encoder.to_patch_embedding.0.weight": rand(encoder_width, 3, PATCH_SIZE, PATCH_SIZE),
        "encoder.to_patch_embedding.0.bias": rand(encoder_width),
        "encoder.en_pos_embedding": original_sincos(encoder_width, GRID),
        "decoder.de_pos_embedding": original_sincos(decoder_width, GRID),
        "pre_quant.weight": rand(CODEBOOK_DIM, encoder_width),
        "pre_quant.bias": rand(CODEBOOK_DIM),
        "post_quant.weight": rand(decoder_width, CODEBOOK_DIM),
        "post_quant.bias": rand(decoder_width),
        "quantizer.embedding.weight": rand(CODEBOOK_SIZE, CODEBOOK_DIM, scale=1.0),
        "loss.perceptual_loss.net.slice1.0.weight": rand(4, 3, 3, 3),
        "loss.perceptual_loss.scaling_layer.shift": rand(1, 3, 1, 1),
        "loss.discriminator.convs.0.0.weight": rand(8, 3, 1, 1),
    }
    for stack, (width, depth, mlp_width) in STACKS.items():
        for index in range(depth):
            prefix = f"{stack}.transformer.layers.{index}"
            state_dict |= {
                f"{prefix}.0.norm.weight": rand(width, offset=1.0),
                f"{prefix}.0.norm.bias": rand(width),
                f"{prefix}.0.fn.to_qkv.weight": rand(3 * width, width, scale=0.1),
                f"{prefix}.0.fn.to_out.weight": rand(width, width, scale=0.1),
                f"{prefix}.0.fn.to_out.bias": rand(width),
                f"{prefix}.1.norm.weight": rand(width, offset=1.0),
                f"{prefix}.1.norm.bias": rand(width),
                f"{prefix}.1.fn.net.0.weight": rand(mlp_width, width, scale=0.1),
                f"{prefix}.1.fn.net.0.bias": rand(mlp_width),
                f"{prefix}.1.fn.net.2.weight": rand(width, mlp_width, scale=0.1),
                f"{prefix}.1.fn.net.2.bias": rand(width),
            }
        norm = f"{stack}.transformer.norm" if layout == "late" else f"{stack}.norm"
        state_dict |= {f"{norm}.weight": rand(width, offset=1.0), f"{norm}.bias": rand(width)}
    to_pixel = "decoder.to_pixel.1" if layout == "late" else "decoder.to_pixel.conv_out"
    state_dict[f"{to_pixel}.weight"] = rand(decoder_width, out_channels, PATCH_SIZE, PATCH_SIZE, scale=0.02)
    state_dict[f"{to_pixel}.bias"] = rand(out_channels, scale=0.05, offset=0.5)
    return state_dict


def original_transformer(state_dict, stack: str, hidden_states: torch.Tensor, layout: str) -> torch.Tensor:
    width, depth, _ = STACKS[stack]
    heads = width // 64
    batch_size, length = hidden_states.shape[:2]
    for index in range(depth):
        weights = {
            key.split(f"layers.{index}.", 1)[1]: value
            for key, value in state_dict.items()
            if f"{stack}.transformer.layers.{index}." in key
        }
        normed = F.layer_norm(hidden_states, (width,), weights["0.norm.weight"], weights["0.norm.bias"], eps=1e-5)
        query, key, value = (
            part.reshape(batch_size, length, heads, 64).transpose(1, 2)
            for part in F.linear(normed, weights["0.fn.to_qkv.weight"]).chunk(3, dim=-1)
        )
        attention = torch.softmax(query @ key.transpose(-1, -2) * 64**-0.5, dim=-1) @ value
        attention = attention.transpose(1, 2).reshape(batch_size, length, width)
        hidden_states = hidden_states + F.linear(attention, weights["0.fn.to_out.weight"], weights["0.fn.to_out.bias"])
        normed = F.layer_norm(hidden_states, (width,), weights["1.norm.weight"], weights["1.norm.bias"], eps=1e-5)
        mlp = torch.tanh(F.linear(normed, weights["1.fn.net.0.weight"], weights["1.fn.net.0.bias"]))
        hidden_states = hidden_states + F.linear(mlp, weights["1.fn.net.2.weight"], weights["1.fn.net.2.bias"])
    norm = f"{stack}.transformer.norm" if layout == "late" else f"{stack}.norm"
    return F.layer_norm(hidden_states, (width,), state_dict[f"{norm}.weight"], state_dict[f"{norm}.bias"], eps=1e-5)


def original_forward(state_dict, pixels: torch.Tensor, layout: str = "late"):
    """(latents before quantization, token ids, pixels) of the original model, for `pixels` in [0, 1]."""
    embeddings = F.conv2d(
        pixels,
        state_dict["encoder.to_patch_embedding.0.weight"],
        state_dict["encoder.to_patch_embedding.0.bias"],
        stride=PATCH_SIZE,
    )
    hidden_states = embeddings.flatten(2).transpose(1, 2) + state_dict["encoder.en_pos_embedding"]
    hidden_states = original_transformer(state_dict, "encoder", hidden_states, layout)
    latents = F.linear(hidden_states, state_dict["pre_quant.weight"], state_dict["pre_quant.bias"])
    normalized = F.normalize(latents, dim=-1)
    codes = F.normalize(state_dict["quantizer.embedding.weight"], dim=-1)
    distances = normalized.pow(2).sum(-1, keepdim=True) + codes.pow(2).sum(-1) - 2 * normalized @ codes.T
    token_ids = distances.argmin(dim=-1)
    hidden_states = F.linear(codes[token_ids], state_dict["post_quant.weight"], state_dict["post_quant.bias"])
    hidden_states = original_transformer(
        state_dict, "decoder", hidden_states + state_dict["decoder.de_pos_embedding"], layout
    )
    grid = hidden_states.transpose(1, 2).reshape(pixels.shape[0], -1, GRID, GRID)
    to_pixel = "decoder.to_pixel.1" if layout == "late" else "decoder.to_pixel.conv_out"
    output = F.conv_transpose2d(
        grid, state_dict[f"{to_pixel}.weight"], state_dict[f"{to_pixel}.bias"], stride=PATCH_SIZE
    )
    return latents, token_ids, output


def converted_model(state_dict) -> VitVqganModel:
    config, converted = convert.convert_state_dict(state_dict)
    model = VitVqganModel(config).eval()
    convert.check_state_dict(model, converted)
    model.load_state_dict(converted, strict=True)
    return model


def test_every_rule_is_used_and_loss_keys_are_dropped():
    used = set()
    for layout in LAYOUTS:
        mapping = convert.convert_old_keys_to_new_keys(list(original_state_dict(layout)))
        for old_key, new_key in mapping.items():
            if old_key.startswith("loss."):
                assert new_key is None
                continue
            used |= {pattern for pattern in convert.ORIGINAL_TO_CONVERTED_KEY_MAPPING if re.match(pattern, old_key)}
    assert used == set(convert.ORIGINAL_TO_CONVERTED_KEY_MAPPING)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_converted_model_reproduces_the_original_forward(layout):
    state_dict = original_state_dict(layout)
    model = converted_model(state_dict)
    config = model.config
    assert (config.hidden_act, config.qkv_bias, config.layer_norm_eps) == ("tanh", False, 1e-5)
    assert (config.encoder_head_type, config.decoder_head_type, config.use_logit_laplace) == ("none", "linear", False)
    assert (config.image_size, config.patch_size, config.codebook_size, config.codebook_dim) == (16, 4, 24, 6)
    assert (config.encoder_num_attention_heads, config.decoder_num_attention_heads) == (2, 3)
    assert (config.encoder_num_hidden_layers, config.decoder_intermediate_size) == (2, 80)

    pixels = torch.rand(3, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(1))
    latents, token_ids, output = original_forward(state_dict, pixels, layout)
    pixel_values = pixels * 2 - 1  # the converted model works in [-1, 1]
    with torch.no_grad():
        torch.testing.assert_close(model.quant_proj(model.encoder(pixel_values)), latents, rtol=1e-4, atol=1e-5)
        encoded = model.encode(pixel_values)
        assert torch.equal(encoded.image_tokens.flatten(1), token_ids)
        hidden_states = model.post_quant_proj(encoded.quantized.flatten(2).transpose(1, 2))
        raw = model.decoder(hidden_states, GRID, GRID)
        torch.testing.assert_close(raw, output * 2 - 1, rtol=1e-4, atol=1e-5)
        reconstruction = model(pixel_values).reconstruction
    assert 0.1 < (reconstruction.abs() < 1).float().mean()  # not all clamped: the comparison above means something
    torch.testing.assert_close(reconstruction, (output * 2 - 1).clamp(-1, 1), rtol=1e-4, atol=1e-5)


def test_unknown_key_is_refused():
    state_dict = original_state_dict() | {"encoder.extra_projection.weight": torch.zeros(2, 2)}
    with pytest.raises(ValueError, match="match no conversion rule.*encoder.extra_projection.weight"):
        convert.convert_state_dict(state_dict)


def test_missing_weight_is_refused():
    state_dict = original_state_dict()
    del state_dict["decoder.transformer.layers.0.1.fn.net.2.bias"]
    _, converted = convert.convert_state_dict(state_dict)
    with pytest.raises(ValueError, match=r"missing: \['decoder.stack.layers.0.mlp.fc2.bias'\]"):
        convert.check_state_dict(VitVqganModel(convert.get_vit_vqgan_config(state_dict)), converted)
    del state_dict["quantizer.embedding.weight"]
    with pytest.raises(ValueError, match="lacks.*quantizer.embedding.weight"):
        convert.convert_state_dict(state_dict)


def test_wrong_shape_is_refused():
    state_dict = original_state_dict()
    state_dict["post_quant.bias"] = torch.zeros(STACKS["decoder"][0] + 1)
    config, converted = convert.convert_state_dict(state_dict)
    with pytest.raises(ValueError, match=r"wrong shapes: \['post_quant_proj.bias: \(193,\) instead of \(192,\)'\]"):
        convert.check_state_dict(VitVqganModel(config), converted)


def test_learned_position_embeddings_are_refused():
    state_dict = original_state_dict()
    state_dict["decoder.de_pos_embedding"] = torch.randn_like(state_dict["decoder.de_pos_embedding"])
    with pytest.raises(ValueError, match="decoder.de_pos_embedding is not the 2D sine-cosine table"):
        convert.convert_state_dict(state_dict)


def test_logit_laplace_output_is_refused():
    with pytest.raises(ValueError, match="predicts 6 channels per pixel"):
        convert.convert_state_dict(original_state_dict(out_channels=6))


@pytest.mark.parametrize(("size", "preset"), [("small", "ss"), ("base", "bb")])
def test_released_sizes_are_read_from_shapes(size, preset):
    # The released configs (configs/imagenet_vitvq_{small,base}.yaml): the same width and depth for both stacks.
    width, depth, heads, mlp_width = {"small": (512, 8, 8, 2048), "base": (768, 12, 12, 3072)}[size]
    shapes = {
        "encoder.to_patch_embedding.0.weight": (width, 3, 8, 8),
        "encoder.en_pos_embedding": (1, 1024, width),
        "quantizer.embedding.weight": (8192, 32),
    }
    for stack in ("encoder", "decoder"):
        for index in range(depth):
            prefix = f"{stack}.transformer.layers.{index}"
            shapes |= {
                f"{prefix}.0.norm.weight": (width,),
                f"{prefix}.0.fn.to_qkv.weight": (3 * heads * 64, width),
                f"{prefix}.1.fn.net.0.weight": (mlp_width, width),
            }
    state_dict = {key: torch.empty(shape, device="meta") for key, shape in shapes.items()}
    config = convert.get_vit_vqgan_config(state_dict)
    reference = VitVqganConfig.from_preset(preset)
    for field in ("image_size", "patch_size", "codebook_size", "codebook_dim", *PRESETS[preset]):
        assert getattr(config, field) == getattr(reference, field), field
    assert convert.original_size_name(config) == size


def test_a_checkpoint_missing_a_layer_is_refused():
    # Renumbering the encoder's layer 1 as 2 leaves a gap where a layer is missing; reading the depth from the keys
    # would otherwise convert the rest silently into a shallower model.
    state_dict = {
        key.replace("encoder.transformer.layers.1.", "encoder.transformer.layers.2."): value
        for key, value in original_state_dict().items()
    }
    with pytest.raises(
        ValueError, match=r"encoder layers are not numbered 0\.\.2 without gaps: layers \[1\] are missing"
    ):
        convert.get_vit_vqgan_config(state_dict)


def test_sizes_of_neither_released_configuration_need_the_custom_size_flag(tmp_path, caplog):
    checkpoint = tmp_path / "state_dict.pt"
    torch.save(original_state_dict(), checkpoint)
    # A released checkpoint missing its last layer reads as a custom size: refused unless the user says it is one.
    with pytest.raises(ValueError, match=r"matches neither released configuration .* pass --allow_custom_size"):
        convert.main(["--checkpoint", str(checkpoint), "--output_dir", str(tmp_path / "refused")])
    assert not (tmp_path / "refused").exists()
    with caplog.at_level("WARNING"):
        convert.convert_checkpoint(checkpoint, tmp_path / "converted", allow_custom_size=True)
    assert "matches neither released configuration (small: 512 wide, 8/8 layers; base: 768 wide, 12/12" in caplog.text


def test_command_line_writes_a_loadable_folder_with_its_card(tmp_path):
    state_dict = original_state_dict()
    checkpoint = tmp_path / "imagenet_vitvq_tiny.ckpt"
    # What a Lightning checkpoint holds besides the weights: counters, versions, optimizer states.
    torch.save(
        {
            "epoch": 3,
            "global_step": 1000,
            "pytorch-lightning_version": "1.5.10",
            "state_dict": state_dict,
            "optimizer_states": [
                {"state": {0: {"step": 10, "exp_avg": torch.zeros(2)}}, "param_groups": [{"lr": 1e-4}]}
            ],
        },
        checkpoint,
    )
    output_dir = tmp_path / "converted"
    convert.main(["--checkpoint", str(checkpoint), "--output_dir", str(output_dir), "--allow_custom_size"])

    model = VitVqganModel.from_pretrained(output_dir).eval()
    pixels = torch.rand(2, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(2))
    _, token_ids, output = original_forward(state_dict, pixels)
    with torch.no_grad():
        reconstruction = model(pixels * 2 - 1)
    assert torch.equal(reconstruction.image_tokens.flatten(1), token_ids)
    torch.testing.assert_close(reconstruction.reconstruction, (output * 2 - 1).clamp(-1, 1), rtol=1e-4, atol=1e-5)

    saved = json.loads((output_dir / "config.json").read_text())
    assert saved["position_embedding_type"] == "sincos" and saved["hidden_act"] == "tanh"
    from huggingface_hub import ModelCard

    card = ModelCard.load(output_dir / "README.md")
    assert card.data.license == "mit" and card.data.datasets == ["ILSVRC/imagenet-1k"]
    assert "thuanz123/enhancing-transformers" in card.text and "4.87" in card.text
    assert f'VitVqganModel.from_pretrained("{output_dir}")' in card.text
    # The card's snippet prepares images with the processor saved next to the model.
    assert AutoImageProcessor.from_pretrained(output_dir).crop_size == {"height": IMAGE_SIZE, "width": IMAGE_SIZE}


def test_a_missing_checkpoint_says_what_to_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="imagenet_vitvq_base.ckpt is not a file.*enhancing-transformers"):
        convert.main(
            ["--checkpoint", str(tmp_path / "imagenet_vitvq_base.ckpt"), "--output_dir", str(tmp_path / "out")]
        )


def test_checkpoint_with_python_objects_is_refused(tmp_path, monkeypatch):
    checkpoint = tmp_path / "with_objects.ckpt"
    torch.save(
        {"state_dict": original_state_dict(), "hyper_parameters": math.nan, "callbacks": {"x": object}}, checkpoint
    )
    with pytest.raises(ValueError, match="holds Python objects besides tensors") as error:
        convert.load_original_state_dict(checkpoint)
    # The hint works on current torch (weights_only defaults to True there) for a file the user trusts.
    hint = re.search(r"`(torch\.save\(.*?)`", str(error.value)).group(1)
    monkeypatch.chdir(tmp_path)
    exec(hint, {"torch": torch, "path": checkpoint})
    assert convert.load_original_state_dict("state_dict.pt").keys() == original_state_dict().keys()


@pytest.mark.parametrize(("field", "value"), [("encoder_head_type", "linear"), ("decoder_head_type", "none")])
def test_head_types_the_conversion_needs_are_validated(field, value):
    with pytest.raises(StrictDataclassClassValidationError, match=f"`{field}` must be one of"):
        VitVqganConfig.from_preset("tiny", **{field: value})


@pytest.mark.parametrize("checkpoint", ["thuanz123/vitvqgan-imagenet-base", "thuanz123/vitvqgan-imagenet-base/x.ckpt"])
def test_a_hub_checkpoint_offline_fails_at_once_and_says_so(checkpoint, tmp_path, monkeypatch):
    # Offline mode refuses every request before it is sent; the cache of this test is empty.
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf_home" / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ValueError, match=r"could not be downloaded from the Hugging Face Hub \(offline mode is on"):
        convert.main(["--checkpoint", checkpoint, "--output_dir", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_a_hub_checkpoint_is_downloaded_through_the_cache(tmp_path, monkeypatch):
    # A file already in the huggingface_hub cache (as a first, online download leaves it) is used offline.
    cache = tmp_path / "hub"
    repo_folder = cache / "models--someone--vitvqgan-tiny"
    commit = "0" * 40
    snapshot = repo_folder / "snapshots" / commit
    snapshot.mkdir(parents=True)
    torch.save(original_state_dict(), snapshot / "vitvq_tiny.ckpt")
    (repo_folder / "refs").mkdir()
    (repo_folder / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert convert.resolve_checkpoint("someone/vitvqgan-tiny/vitvq_tiny.ckpt") == snapshot / "vitvq_tiny.ckpt"
    # A relative path with one folder is a local file, not a repository.
    with pytest.raises(FileNotFoundError, match="missing/state_dict.pt is not a file"):
        convert.resolve_checkpoint("missing/state_dict.pt")


def test_a_full_disk_names_the_output_and_removes_the_partial_weights(small_tmpfs, tmp_path):
    checkpoint = tmp_path / "state_dict.pt"  # outside the full file system: only the outputs fail
    torch.save(original_state_dict(), checkpoint)
    output_dir = small_tmpfs / "converted"
    output_dir.mkdir()
    filler = fill_disk(small_tmpfs)
    with pytest.raises(OutputWriteError, match=rf"Writing the converted model to {output_dir} failed .*; \d+ bytes"):
        convert.convert_checkpoint(checkpoint, output_dir, allow_custom_size=True)
    assert not (output_dir / "model.safetensors").exists()
    filler.unlink()
    convert.convert_checkpoint(checkpoint, output_dir, allow_custom_size=True)
    assert VitVqganModel.from_pretrained(output_dir).config.encoder_num_hidden_layers == 2
