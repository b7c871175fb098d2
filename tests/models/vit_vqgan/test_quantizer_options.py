"""The quantizer's options (`quantizer_gradient`, `use_codebook_linear_map`, `codebook_entropy_weight`): forward values
unchanged, the rotation trick's gradient against the paper's formula, the linear map's frozen codes, the entropy term's
value and reach, saving and loading."""

import pytest
import torch
import torch.nn.functional as F
from huggingface_hub.errors import StrictDataclassError
from transformers import AutoConfig, AutoModel

from tests.testing_utils import tiny_tokenizer
from vit_vqgan_hf import VitVqganConfig, VitVqganModel
from vit_vqgan_hf.models.vit_vqgan.modeling_vit_vqgan import codebook_entropy_loss, rotate_onto_codes


def pixels(batch_size=3, seed=1):
    return torch.rand(batch_size, 3, 32, 32, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("use_l2_normalized_codes", [True, False])
def test_the_estimator_changes_gradients_not_forward_values(use_l2_normalized_codes):
    straight = tiny_tokenizer(use_l2_normalized_codes=use_l2_normalized_codes).train()
    rotation = tiny_tokenizer(use_l2_normalized_codes=use_l2_normalized_codes, quantizer_gradient="rotation").train()
    rotation.load_state_dict(straight.state_dict())
    outputs = [model(pixels()) for model in (straight, rotation)]
    for name in ("image_tokens", "quantized", "reconstruction", "vq_loss"):
        assert torch.equal(getattr(outputs[0], name), getattr(outputs[1], name)), name
    for output in outputs:
        output.reconstruction.square().mean().backward()
    gradients = [model.quant_proj.weight.grad for model in (straight, rotation)]
    assert gradients[1].abs().sum() > 0
    assert not torch.allclose(gradients[0], gradients[1])
    # The codebook term trains the codes the same way under both estimators.
    for model in (straight, rotation):
        model.zero_grad()
    for model in (straight, rotation):
        model(pixels()).codebook_loss.backward()
    torch.testing.assert_close(straight.quantizer.embedding.weight.grad, rotation.quantizer.embedding.weight.grad)


def test_rotation_gradient_matches_the_paper_formula():
    # Fifty et al. 2024, Eq. 4-5: q~ = sg[lambda R] e with R = I - 2 r r^T + 2 q^ e^^T, r = (e^ + q^) / ||e^ + q^||,
    # lambda = ||q|| / ||e||: the gradient reaching e is (lambda R)^T times the gradient at q~.
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(5, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    codes = torch.randn(5, 4, generator=generator, dtype=torch.float64)
    upstream = torch.randn(5, 4, generator=generator, dtype=torch.float64)
    rotated = rotate_onto_codes(latents, codes)
    torch.testing.assert_close(rotated.detach(), codes)  # the value is the code
    (rotated * upstream).sum().backward()
    for row in range(5):
        e, q = latents[row].detach(), codes[row]
        e_hat, q_hat = e / e.norm(), q / q.norm()
        r = (e_hat + q_hat) / (e_hat + q_hat).norm()
        rotation = torch.eye(4, dtype=torch.float64) - 2 * torch.outer(r, r) + 2 * torch.outer(q_hat, e_hat)
        torch.testing.assert_close(rotation @ e_hat, q_hat)  # a rotation of e^ onto q^
        torch.testing.assert_close(rotation.T @ rotation, torch.eye(4, dtype=torch.float64))
        expected = (q.norm() / e.norm()) * rotation.T @ upstream[row]
        torch.testing.assert_close(latents.grad[row], expected)


def test_the_linear_map_trains_the_map_and_keeps_the_stored_codes():
    model = tiny_tokenizer(use_codebook_linear_map=True).train()
    quantizer = model.quantizer
    assert "quantizer.embedding.weight" not in dict(model.named_parameters())
    assert "quantizer.embedding.weight" in model.state_dict() and "quantizer.codebook_map" in model.state_dict()
    torch.testing.assert_close(
        quantizer.codebook(), F.normalize(quantizer.embedding.weight @ quantizer.codebook_map, dim=-1)
    )
    # SimVQ's initialization of the map (nn.Linear's): entries uniform in +-1/sqrt(dim).
    bound = model.config.codebook_dim**-0.5
    assert quantizer.codebook_map.abs().max() <= bound and quantizer.codebook_map.std() > bound / 3
    stored = quantizer.embedding.weight.clone()
    before = quantizer.codebook().clone()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    output = model(pixels())
    (output.vq_loss + output.reconstruction.square().mean()).backward()
    assert quantizer.codebook_map.grad.abs().sum() > 0
    optimizer.step()
    assert torch.equal(quantizer.embedding.weight, stored)
    moved = (quantizer.codebook() - before).norm(dim=-1) > 1e-6
    # Every code moves, the unused ones too: the map is shared.
    assert moved.all() and output.code_counts.eq(0).any()


@pytest.mark.parametrize("use_l2_normalized_codes", [True, False])
def test_entropy_term_on_constructed_cases(use_l2_normalized_codes):
    # Four orthogonal unit codes and a temperature far below their separation: assignments are one-hot.
    codebook = torch.eye(4, dtype=torch.float64)
    quantizer = tiny_tokenizer(use_l2_normalized_codes=use_l2_normalized_codes).quantizer

    def entropy(latents):
        return codebook_entropy_loss(quantizer.code_scores(latents, codebook), 1e-3)

    spread = codebook.repeat(3, 1)  # every code picked equally: token entropy 0, batch entropy log 4
    loss = entropy(spread)
    torch.testing.assert_close(loss, -torch.log(torch.tensor(4.0, dtype=torch.float64)))
    collapsed = codebook[:1].repeat(12, 1)  # one code for every token: both entropies 0
    torch.testing.assert_close(entropy(collapsed).abs().item(), 0.0)
    # A latent halfway between two codes is split between them: token entropy log 2.
    between = F.normalize(codebook[0] + codebook[1], dim=0)[None]
    scale = 1.0 if use_l2_normalized_codes else between.norm()
    loss = entropy(between * scale)
    torch.testing.assert_close(loss, torch.tensor(0.0, dtype=torch.float64), atol=1e-12, rtol=0)


@pytest.mark.parametrize("use_codebook_linear_map", [False, True])
def test_entropy_term_joins_the_vq_loss_in_training_only(use_codebook_linear_map):
    options = {"use_codebook_linear_map": use_codebook_linear_map}
    plain = tiny_tokenizer(**options).train()
    entropic = tiny_tokenizer(codebook_entropy_weight=0.5, codebook_entropy_temperature=0.05, **options).train()
    entropic.load_state_dict(plain.state_dict())
    outputs = [model(pixels()) for model in (plain, entropic)]
    for name in ("image_tokens", "quantized", "reconstruction", "codebook_loss", "commitment_loss"):
        assert torch.equal(getattr(outputs[0], name), getattr(outputs[1], name)), name
    assert outputs[0].codebook_entropy_loss is None
    entropy = outputs[1].codebook_entropy_loss
    torch.testing.assert_close(outputs[1].vq_loss, outputs[0].vq_loss + 0.5 * entropy)
    # The term trains both the encoder and the codes (the map, with the linear map).
    entropy.backward()
    codes = entropic.quantizer.codebook_map if use_codebook_linear_map else entropic.quantizer.embedding.weight
    assert codes.grad.abs().sum() > 0 and entropic.quant_proj.weight.grad.abs().sum() > 0
    # Evaluation reports the paper's VQ loss: the term is a training regularizer.
    with torch.no_grad():
        evaluated = [model.eval()(pixels()) for model in (plain, entropic)]
    assert evaluated[1].codebook_entropy_loss is None
    assert torch.equal(evaluated[0].vq_loss, evaluated[1].vq_loss)


def test_quantizer_options_round_trip_through_save_and_auto_classes(tmp_path):
    model = tiny_tokenizer(
        quantizer_gradient="rotation",
        use_codebook_linear_map=True,
        codebook_entropy_weight=0.1,
        codebook_entropy_temperature=0.02,
    )
    with torch.no_grad():
        model.quantizer.codebook_map.add_(0.1 * torch.randn_like(model.quantizer.codebook_map))
    model.save_pretrained(tmp_path)
    config = AutoConfig.from_pretrained(tmp_path)
    assert config.quantizer_gradient == "rotation" and config.use_codebook_linear_map
    assert (config.codebook_entropy_weight, config.codebook_entropy_temperature) == (0.1, 0.02)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, VitVqganModel)
    assert not any(parameter is loaded.quantizer.embedding.weight for parameter in loaded.parameters())
    with torch.no_grad():
        torch.testing.assert_close(loaded.quantizer.codebook(), model.quantizer.codebook(), rtol=0, atol=0)
        expected = model.eval().encode(pixels()).image_tokens
        assert torch.equal(loaded.encode(pixels()).image_tokens, expected)


def test_configs_without_the_options_load_the_papers_quantizer(tmp_path):
    # A config saved before the options existed (e.g. a converted enhancing-transformers tokenizer) has neither key.
    config = VitVqganConfig.from_preset("tiny")
    assert config.quantizer_gradient == "straight_through" and not config.use_codebook_linear_map
    assert config.codebook_entropy_weight == 0
    config.save_pretrained(tmp_path)
    text = (tmp_path / "config.json").read_text()
    assert "quantizer_gradient" not in text or '"straight_through"' in text
    assert VitVqganConfig.from_pretrained(tmp_path).quantizer_gradient == "straight_through"


def test_unknown_quantizer_gradient_is_refused():
    with pytest.raises(StrictDataclassError, match="`quantizer_gradient` must be one of"):
        VitVqganConfig.from_preset("tiny", quantizer_gradient="gumbel")


def test_bad_entropy_settings_are_refused():
    with pytest.raises(StrictDataclassError, match="codebook_entropy_weight"):
        VitVqganConfig.from_preset("tiny", codebook_entropy_weight=-0.1)
    with pytest.raises(StrictDataclassError, match="codebook_entropy_temperature"):
        VitVqganConfig.from_preset("tiny", codebook_entropy_temperature=0.0)
