"""Tests of VitVqganConfig and VitVqganModel on tiny configs (offline, CPU)."""

import copy

import pytest
import torch
import torch.nn.functional as F
from huggingface_hub.errors import StrictDataclassError
from transformers import AutoConfig, AutoModel

from tests.testing_utils import tiny_tokenizer
from vit_vqgan_hf import VitVqganConfig, VitVqganModel
from vit_vqgan_hf.models.vit_vqgan.modeling_vit_vqgan import code_counts_of, codebook_statistics


# Deliberately odd, distinct sizes so that a swapped dimension fails loudly.
TINY = {
    "image_size": 24,
    "patch_size": 4,
    "encoder_hidden_size": 32,
    "encoder_num_hidden_layers": 2,
    "encoder_num_attention_heads": 4,
    "encoder_intermediate_size": 37,
    "decoder_hidden_size": 40,
    "decoder_num_hidden_layers": 1,
    "decoder_num_attention_heads": 5,
    "decoder_intermediate_size": 43,
    "codebook_size": 24,
    "codebook_dim": 6,
}


def make_model(**overrides) -> VitVqganModel:
    return tiny_tokenizer(**{**TINY, **overrides}).train()


def make_pixels(batch_size=3, size=24, seed=1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch_size, 3, size, size, generator=generator) * 2 - 1


@pytest.mark.parametrize("use_logit_laplace", [True, False])
def test_shapes_and_pixel_range(use_logit_laplace):
    model = make_model(use_logit_laplace=use_logit_laplace).eval()
    pixel_values = make_pixels()
    encoded = model.encode(pixel_values)
    assert encoded.image_tokens.shape == (3, 6, 6) and encoded.image_tokens.dtype == torch.long
    assert encoded.quantized.shape == (3, 6, 6, 6)
    assert encoded.vq_loss.ndim == 0
    output = model(pixel_values)
    assert output.reconstruction.shape == pixel_values.shape
    assert output.reconstruction.min() >= -1 and output.reconstruction.max() <= 1
    assert (output.logit_laplace_loc is not None) == use_logit_laplace
    if use_logit_laplace:
        assert output.logit_laplace_log_scale.shape == pixel_values.shape
        eps = model.config.logit_laplace_eps
        expected = ((torch.sigmoid(output.logit_laplace_loc) - eps) / (1 - 2 * eps)).clamp(0, 1) * 2 - 1
        torch.testing.assert_close(output.reconstruction, expected)


def test_decode_tokens_equals_decode_of_quantized():
    model = make_model().eval()
    with torch.no_grad():
        encoded = model.encode(make_pixels())
        from_quantized = model.decode(encoded.quantized)
        assert torch.equal(model.decode_tokens(encoded.image_tokens), from_quantized)
        assert torch.equal(model.decode_tokens(encoded.image_tokens.flatten(1)), from_quantized)
        assert torch.equal(model.decode_tokens(encoded.image_tokens.to(torch.int16)), from_quantized)


def test_narrow_dtypes_are_accepted():
    # uint8 ids of a 256-code book (`max() >= 256` would overflow in uint8), and float64 or bfloat16 pixels.
    model = make_model(codebook_size=256).eval()
    with torch.no_grad():
        image_tokens = torch.arange(36, dtype=torch.uint8).reshape(1, 6, 6) * 7
        assert torch.equal(model.decode_tokens(image_tokens), model.decode_tokens(image_tokens.long()))
        pixel_values = make_pixels()
        expected = model.encode(pixel_values).image_tokens
        assert torch.equal(model.encode(pixel_values.double()).image_tokens, expected)
        assert model.to(torch.bfloat16).encode(pixel_values).image_tokens.shape == expected.shape  # float32 pixels


@pytest.mark.parametrize("use_l2_normalized_codes", [True, False])
def test_nearest_code_matches_brute_force(use_l2_normalized_codes):
    model = make_model(use_l2_normalized_codes=use_l2_normalized_codes)
    quantizer = model.quantizer
    latents = torch.randn(2, 50, 6, generator=torch.Generator().manual_seed(3))
    _, image_tokens, _, _, _, _ = quantizer(latents)
    codes = quantizer.embedding.weight.detach()
    if use_l2_normalized_codes:
        latents, codes = F.normalize(latents, dim=-1), F.normalize(codes, dim=-1)
    brute_force = torch.cdist(latents.reshape(-1, 6), codes).argmin(dim=-1).reshape(2, 50)
    assert torch.equal(image_tokens, brute_force)

    # The memory-bounded search in small chunks picks the same codes.
    quantizer.max_scores_per_chunk = 7 * 24
    assert torch.equal(quantizer(latents)[1], brute_force)


def test_lookup_stays_float32_under_bf16_autocast():
    model = make_model()
    latents = torch.randn(2, 36, 6, generator=torch.Generator().manual_seed(4))
    reference = model.quantizer(latents)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        quantized, image_tokens, vq_loss, _, _, _ = model.quantizer(latents)
    assert quantized.dtype == torch.float32 and vq_loss.dtype == torch.float32
    assert torch.equal(image_tokens, reference[1])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model(make_pixels()).image_tokens.shape == (3, 6, 6)


def _grad_norms(model, loss):
    model.zero_grad()
    loss.backward(retain_graph=True)
    return {
        "codebook": model.quantizer.embedding.weight.grad,
        "encoder": model.quant_proj.weight.grad,
    }


def test_commitment_cost_reaches_the_encoder_and_codebook_term_reaches_the_codes():
    model = make_model(commitment_cost=0.25)
    encoded = model.encode(make_pixels())

    grads = _grad_norms(model, encoded.codebook_loss)
    assert grads["codebook"].abs().sum() > 0
    assert grads["encoder"] is None or grads["encoder"].abs().sum() == 0

    grads = _grad_norms(model, encoded.commitment_loss)
    assert grads["encoder"].abs().sum() > 0
    assert grads["codebook"] is None or grads["codebook"].abs().sum() == 0

    # beta weighs the commitment term, not the codebook term.
    torch.testing.assert_close(encoded.vq_loss, encoded.codebook_loss + 0.25 * encoded.commitment_loss)
    model.zero_grad()
    encoded.vq_loss.backward()
    encoder_grad_beta, codebook_grad_beta = model.quant_proj.weight.grad.clone(), model.quantizer.embedding.weight.grad
    model_double = make_model(commitment_cost=0.5)
    encoded_double = model_double.encode(make_pixels())
    encoded_double.vq_loss.backward()
    torch.testing.assert_close(model_double.quant_proj.weight.grad, 2 * encoder_grad_beta)
    torch.testing.assert_close(model_double.quantizer.embedding.weight.grad, codebook_grad_beta)


def test_straight_through_gradients_reach_the_encoder():
    model = make_model()
    output = model(make_pixels())
    output.reconstruction.pow(2).mean().backward()
    assert model.encoder.patch_embeddings.weight.grad.abs().sum() > 0
    assert model.quant_proj.weight.grad.abs().sum() > 0
    # The reconstruction loss alone must not move the codes: they learn from the VQ loss.
    assert model.quantizer.embedding.weight.grad is None or model.quantizer.embedding.weight.grad.abs().sum() == 0


def test_codebook_statistics_on_a_constructed_case():
    image_tokens = torch.tensor([[[0, 0], [1, 1]], [[2, 2], [3, 3]]])  # 4 of 8 codes, each used twice
    counts = code_counts_of(image_tokens, 8)
    assert counts.tolist() == [2, 2, 2, 2, 0, 0, 0, 0]
    usage, perplexity = codebook_statistics(counts)
    assert usage.item() == 0.5
    assert perplexity.item() == pytest.approx(4.0)
    usage, perplexity = codebook_statistics(code_counts_of(torch.zeros(1, 2, 2, dtype=torch.long), 8))
    assert usage.item() == 1 / 8 and perplexity.item() == pytest.approx(1.0)

    model = make_model().eval()
    encoded = model.encode(make_pixels())
    assert encoded.code_counts.sum() == 3 * 36
    assert encoded.codebook_usage == (encoded.code_counts > 0).float().mean()


def test_save_load_round_trip_is_bit_identical(tmp_path):
    model = make_model().eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    reloaded = VitVqganModel.from_pretrained(tmp_path).eval()
    auto = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(auto, VitVqganModel)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), VitVqganConfig)
    pixel_values = make_pixels()
    with torch.no_grad():
        expected = model(pixel_values)
        for loaded in (reloaded, auto):
            actual = loaded(pixel_values)
            assert torch.equal(actual.reconstruction, expected.reconstruction)
            assert torch.equal(actual.image_tokens, expected.image_tokens)


def test_determinism():
    first, second = make_model().eval(), make_model().eval()
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), name
    pixel_values = make_pixels()
    with torch.no_grad():
        assert torch.equal(first(pixel_values).reconstruction, first(pixel_values).reconstruction)


@pytest.mark.parametrize("position_embedding_type", ["learned", "sincos"])
def test_interpolate_pos_encoding(position_embedding_type):
    model = make_model(position_embedding_type=position_embedding_type).eval()
    pixel_values = make_pixels(size=32)
    with pytest.raises(ValueError, match="interpolate_pos_encoding=True"):
        model.encode(pixel_values)
    output = model(pixel_values, interpolate_pos_encoding=True)
    assert output.image_tokens.shape == (3, 8, 8)
    assert output.reconstruction.shape == (3, 3, 32, 32)
    # At the trained size, interpolation is the identity.
    pixel_values = make_pixels()
    torch.testing.assert_close(
        model(pixel_values, interpolate_pos_encoding=True).reconstruction, model(pixel_values).reconstruction
    )


def test_sdpa_and_eager_attention_agree():
    model = make_model().eval()
    assert model.config._attn_implementation == "sdpa"
    eager = VitVqganModel._from_config(copy.deepcopy(model.config), attn_implementation="eager").eval()
    eager.load_state_dict(model.state_dict())
    assert eager.config._attn_implementation == "eager"
    pixel_values = make_pixels()
    with torch.no_grad():
        torch.testing.assert_close(model(pixel_values).reconstruction, eager(pixel_values).reconstruction)


def test_gradient_checkpointing_gives_the_same_gradients():
    pixel_values = make_pixels()
    gradients = []
    for checkpointing in (False, True):
        model = make_model()
        if checkpointing:
            model.activation_checkpointing_enable()
        model.train()
        output = model(pixel_values)
        (output.reconstruction.pow(2).mean() + output.vq_loss).backward()
        gradients.append({name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None})
    assert gradients[0].keys() == gradients[1].keys()
    for name in gradients[0]:
        torch.testing.assert_close(gradients[0][name], gradients[1][name], msg=name)


@pytest.mark.parametrize(
    "pixel_values, message",
    [
        (torch.zeros(3, 24, 24), "must have shape"),
        (torch.zeros(1, 1, 24, 24), "has 1 channels"),
        (torch.zeros(1, 3, 24, 24, dtype=torch.uint8), "float tensor"),
        (torch.zeros(1, 3, 32, 32), "does not match"),
        ([[0.0]], "torch.Tensor"),
    ],
)
def test_bad_pixel_values(pixel_values, message):
    model = make_model()
    with pytest.raises(ValueError, match=message):
        model.encode(pixel_values)
    with pytest.raises(ValueError, match=message):
        model(pixel_values)


def imagenet_normalized_pixels() -> torch.Tensor:
    """[0, 1] images normalized with the ImageNet mean and std instead of 0.5 and 0.5: values in about [-2.1, 2.6]."""
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return (torch.linspace(0, 1, 24).expand(1, 3, 24, 24) - mean) / std


@pytest.mark.parametrize(
    "pixel_values, message",
    [
        (torch.full((1, 3, 24, 24), 255.0), r"scaled to \[-1, 1\], got values in \[255, 255\]"),
        (imagenet_normalized_pixels(), r"got values in \[-2.118, 2.64\].*not the ImageNet statistics"),
        (torch.full((1, 3, 24, 24), -1.01), r"\[-1.01, -1.01\]"),
        (make_pixels(1).index_put_((torch.tensor([0]),) * 4, torch.tensor(float("nan"))), "NaN or infinite"),
        (make_pixels(1).index_put_((torch.tensor([0]),) * 4, torch.tensor(float("inf"))), "NaN or infinite"),
    ],
)
def test_pixel_values_outside_the_range_are_refused(pixel_values, message):
    # Checked where data enters, a model in eval mode; a training step reads no values (tests/test_host_syncs.py).
    model = make_model().eval()
    for call in (model.encode, model):
        with pytest.raises(ValueError, match=message):
            call(pixel_values)


def test_pixel_values_at_the_ends_of_the_range_pass():
    model = make_model().eval()
    pixel_values = make_pixels(2)
    pixel_values[0] = -1.0
    pixel_values[1] = 1.0
    expected = model.encode(pixel_values).image_tokens
    # Rounding slack of a caller's normalization is tolerated and gives the same tokens.
    nudged = pixel_values.clone()
    nudged[0, 0, 0, 0], nudged[1, 0, 0, 0] = -1.0005, 1.0005
    assert torch.equal(model.encode(nudged).image_tokens, expected)


def test_bad_sizes_with_interpolation_and_bad_tokens():
    model = make_model()
    with pytest.raises(ValueError, match="multiple of the patch size"):
        model.encode(torch.zeros(1, 3, 26, 24), interpolate_pos_encoding=True)
    with pytest.raises(ValueError, match=r"\[0, 24\)"):
        model.decode_tokens(torch.full((1, 6, 6), 24))
    with pytest.raises(ValueError, match="not a square grid"):
        model.decode_tokens(torch.zeros(1, 35, dtype=torch.long))
    with pytest.raises(ValueError, match="integer tensor"):
        model.decode_tokens(torch.zeros(1, 6, 6))
    with pytest.raises(ValueError, match="must have shape"):
        model.decode(torch.zeros(1, 5, 6, 6))


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"patch_size": 5}, "must divide `image_size`"),
        ({"encoder_num_attention_heads": 5}, "must divide `encoder_hidden_size`"),
        ({"decoder_num_attention_heads": 3}, "must divide `decoder_hidden_size`"),
        ({"codebook_dim": 33}, "must not exceed"),
        ({"position_embedding_type": "rope"}, "position_embedding_type"),
        ({"hidden_act": "swishy"}, "(?s)field 'hidden_act'.*activation function"),
        ({"codebook_size": 1}, "(?s)field 'codebook_size'.*greater or equal to 2"),
        ({"logit_laplace_eps": 0.5}, "(?s)field 'logit_laplace_eps'.*smaller than 0.5"),
    ],
)
def test_invalid_config_fails_at_construction(overrides, message):
    # A field's validator or `validate_architecture` (StrictDataclassFieldValidationError / ClassValidationError).
    with pytest.raises(StrictDataclassError, match=message):
        VitVqganConfig(**{**TINY, **overrides})


def test_unknown_preset():
    with pytest.raises(ValueError, match="Unknown ViT-VQGAN preset 'xl'"):
        VitVqganConfig.from_preset("xl")


def test_misspelt_preset_override():
    # `VitVqganConfig(codebook_sz=5)` keeps the stray attribute, as every `PreTrainedConfig` does; a preset's
    # overrides are checked, because a misspelt one would silently leave the preset's value in place.
    with pytest.raises(
        ValueError, match="'codebook_sz' is not a field of VitVqganConfig.*Did you mean 'codebook_size'"
    ):
        VitVqganConfig.from_preset("tiny", codebook_sz=5)
    with pytest.raises(
        ValueError, match="'frobnicate' is not a field of VitVqganConfig, so it cannot override the preset.$"
    ):
        VitVqganConfig.from_preset("tiny", frobnicate=1)


@pytest.mark.parametrize("name, encoder_millions, decoder_millions", [("ss", 32, 32), ("bb", 91, 91), ("sl", 32, 599)])
def test_preset_parameter_counts_match_the_paper(name, encoder_millions, decoder_millions):
    config = VitVqganConfig.from_preset(name)
    assert (config.image_size, config.patch_size, config.token_grid_size) == (256, 8, 32)
    assert (config.codebook_size, config.codebook_dim) == (8192, 32)
    with torch.device("meta"):
        model = VitVqganModel(config)
    encoder = sum(p.numel() for p in model.encoder.parameters()) / 1e6
    decoder = sum(p.numel() for p in model.decoder.parameters()) / 1e6
    assert abs(encoder - encoder_millions) / encoder_millions <= 0.25
    assert abs(decoder - decoder_millions) / decoder_millions <= 0.25


def test_tiny_preset_and_overrides():
    config = VitVqganConfig.from_preset("tiny", codebook_size=64)
    assert config.codebook_size == 64 and config.token_grid_size == 8
    model = VitVqganModel(config).eval()
    assert model.encode(make_pixels(size=32)).image_tokens.shape == (3, 8, 8)
