import math

import pytest
import torch

from tests.testing_utils import tiny_discriminator
from vit_vqgan_hf import VitVqganModelOutput
from vit_vqgan_hf.training import (
    LpipsVgg16,
    VitVqganLossWeights,
    discriminator_loss,
    discriminator_step_loss,
    generator_adversarial_loss,
    generator_loss,
    l2_loss,
    lazy_r1_loss,
    logit_laplace_loss,
    r1_penalty,
)


BATCH_SIZE, IMAGE_SIZE = 3, 32


def random_images(seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(BATCH_SIZE, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator) * 2 - 1


def fake_model_output(
    pixel_values: torch.Tensor, with_logit_laplace: bool = True, codebook_entropy_loss: torch.Tensor | None = None
) -> VitVqganModelOutput:
    """A `VitVqganModelOutput` with the fields the losses read, with a graph back to `loc`."""
    generator = torch.Generator().manual_seed(1)
    loc = torch.randn(pixel_values.shape, generator=generator).requires_grad_(True)
    log_scale = (torch.randn(pixel_values.shape, generator=generator) * 0.3 - 1).requires_grad_(True)
    codebook_loss, commitment_loss = torch.tensor(0.3), torch.tensor(0.4)
    vq_loss = codebook_loss + 0.25 * commitment_loss
    if codebook_entropy_loss is not None:
        vq_loss = vq_loss + 0.01 * codebook_entropy_loss
    return VitVqganModelOutput(
        reconstruction=2 * torch.sigmoid(loc) - 1,
        logit_laplace_loc=loc if with_logit_laplace else None,
        logit_laplace_log_scale=log_scale if with_logit_laplace else None,
        vq_loss=vq_loss,
        codebook_loss=codebook_loss,
        commitment_loss=commitment_loss,
        codebook_entropy_loss=codebook_entropy_loss,
    )


@pytest.mark.parametrize("eps", [0.1, 0.01])
def test_logit_laplace_loss_matches_closed_form(eps):
    pixel_values = random_images(0)
    pixel_values[0, 0, 0, :2] = torch.tensor([-1.0, 1.0])  # the extremes must stay finite
    generator = torch.Generator().manual_seed(2)
    loc = torch.randn(pixel_values.shape, generator=generator)
    log_scale = torch.randn(pixel_values.shape, generator=generator) * 0.5

    # Density of x in (0, 1): Laplace(mu, b) on logit(x), times the Jacobian 1 / (x (1 - x)).
    pixels = (1 - 2 * eps) * (pixel_values + 1) / 2 + eps
    laplace = torch.distributions.Laplace(loc, log_scale.exp())
    expected = -(laplace.log_prob(torch.logit(pixels)) - torch.log(pixels * (1 - pixels))).mean()

    loss = logit_laplace_loss(pixel_values, loc, log_scale, eps=eps)
    assert torch.isfinite(loss)
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-5)


def test_logit_laplace_loss_is_a_negative_log_density_near_table_4():
    # A sharp prediction on the right logit gives a negative NLL, as in paper Table 4 (about -2.2 to -2.6).
    pixel_values = random_images(0)
    pixels = 0.8 * (pixel_values + 1) / 2 + 0.1
    loss = logit_laplace_loss(pixel_values, torch.logit(pixels), torch.full_like(pixels, math.log(0.1)))
    assert -4.0 < loss.item() < -2.0


def test_logit_laplace_loss_rejects_eps_outside_open_interval():
    pixel_values = random_images(0)
    with pytest.raises(ValueError, match="eps"):
        logit_laplace_loss(pixel_values, pixel_values, pixel_values, eps=0.0)


def test_l2_loss_is_measured_on_unit_pixel_scale():
    pixel_values = random_images(0)
    # 0.2 on [-1, 1] is 0.1 on [0, 1]: squared error 0.01.
    torch.testing.assert_close(l2_loss(pixel_values, pixel_values + 0.2), torch.tensor(0.01))


def test_adversarial_losses_on_constructed_logits():
    fake_logits = torch.tensor([0.0, math.log(3.0)])
    # softplus(-0) = log 2, softplus(-log 3) = log(1 + 1/3).
    expected_generator = (math.log(2.0) + math.log(4.0 / 3.0)) / 2
    torch.testing.assert_close(generator_adversarial_loss(fake_logits), torch.tensor(expected_generator))

    real_logits, fake_logits = torch.tensor([2.0]), torch.tensor([-1.0])
    expected_discriminator = math.log1p(math.exp(-1.0)) + math.log1p(math.exp(-2.0))
    torch.testing.assert_close(
        discriminator_loss(real_logits, fake_logits), torch.tensor(expected_discriminator, dtype=torch.float32)
    )


def test_r1_penalty_of_a_linear_discriminator():
    # D(x) = sum(w * x) has gradient w for every image, so the penalty is ||w||^2 and its gradient in w is 2 w.
    weight = torch.randn(3, 4, 4, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    real_images = torch.randn(5, 3, 4, 4).requires_grad_(True)
    real_logits = (real_images * weight).flatten(1).sum(dim=1)

    penalty = r1_penalty(real_logits, real_images)
    torch.testing.assert_close(penalty, weight.detach().pow(2).sum())
    penalty.backward()  # needs create_graph=True
    torch.testing.assert_close(weight.grad, 2 * weight.detach())


def test_lazy_r1_loss_follows_stylegan2_scaling():
    torch.testing.assert_close(lazy_r1_loss(torch.tensor(2.0), gamma=10.0, interval=16), torch.tensor(160.0))
    torch.testing.assert_close(lazy_r1_loss(torch.tensor(2.0), gamma=10.0, interval=1), torch.tensor(10.0))


def test_loss_weights_defaults_and_validation():
    weights = VitVqganLossWeights()
    assert (weights.l2_weight, weights.logit_laplace_weight) == (1.0, 0.1)
    assert (weights.perceptual_weight, weights.adversarial_weight) == (0.1, 0.1)
    with pytest.raises(ValueError, match="perceptual_weight"):
        VitVqganLossWeights(perceptual_weight=-1.0)


def test_generator_loss_total_is_the_weighted_sum():
    torch.manual_seed(0)
    pixel_values = random_images(0)
    output = fake_model_output(pixel_values)
    perceptual = LpipsVgg16(channels=(4, 8, 8, 8, 8)).requires_grad_(False)
    discriminator = tiny_discriminator()
    weights = VitVqganLossWeights(
        l2_weight=1.0, logit_laplace_weight=0.2, perceptual_weight=0.3, adversarial_weight=0.4
    )

    total, logs = generator_loss(pixel_values, output, weights, perceptual=perceptual, discriminator=discriminator)

    reconstruction = output.reconstruction
    terms = {
        "l2": l2_loss(pixel_values, reconstruction),
        "logit_laplace": logit_laplace_loss(pixel_values, output.logit_laplace_loc, output.logit_laplace_log_scale),
        "perceptual": perceptual(reconstruction, pixel_values).mean(),
        "adversarial": generator_adversarial_loss(discriminator(reconstruction).logits),
    }
    expected = output.vq_loss + terms["l2"] + 0.2 * terms["logit_laplace"]
    expected = expected + 0.3 * terms["perceptual"] + 0.4 * terms["adversarial"]
    torch.testing.assert_close(total, expected)
    assert set(logs) == {"vq", "codebook", "commitment", "total", *terms}
    for name, value in terms.items():
        torch.testing.assert_close(logs[name], value.detach())
    assert all(not value.requires_grad for value in logs.values())

    # The codebook entropy term is part of `vq_loss` already, and logged on its own when the model computed it.
    entropic = fake_model_output(pixel_values, codebook_entropy_loss=torch.tensor(-2.0))
    total_with_entropy, logs = generator_loss(
        pixel_values, entropic, weights, perceptual=perceptual, discriminator=discriminator
    )
    torch.testing.assert_close(total_with_entropy, expected - 0.02)
    assert logs["codebook_entropy"] == -2.0
    total.backward()
    assert output.logit_laplace_loc.grad is not None and output.logit_laplace_log_scale.grad is not None


def test_generator_loss_skips_zero_weight_and_inactive_terms():
    pixel_values = random_images(0)
    weights = VitVqganLossWeights(logit_laplace_weight=0.0, perceptual_weight=0.0)
    # No perceptual network, no discriminator and no logit-Laplace outputs: nothing may need them.
    total, logs = generator_loss(
        pixel_values, fake_model_output(pixel_values, with_logit_laplace=False), weights, adversarial_active=False
    )
    assert set(logs) == {"vq", "codebook", "commitment", "l2", "total"}
    torch.testing.assert_close(total, logs["vq"] + logs["l2"])


def test_generator_loss_names_what_is_missing():
    pixel_values = random_images(0)
    with pytest.raises(ValueError, match="use_logit_laplace"):
        generator_loss(pixel_values, fake_model_output(pixel_values, with_logit_laplace=False), VitVqganLossWeights())
    with pytest.raises(ValueError, match="perceptual"):
        generator_loss(pixel_values, fake_model_output(pixel_values), VitVqganLossWeights(adversarial_weight=0.0))
    with pytest.raises(ValueError, match="discriminator"):
        generator_loss(pixel_values, fake_model_output(pixel_values), VitVqganLossWeights(perceptual_weight=0.0))


@pytest.mark.parametrize("apply_r1", [False, True])
def test_discriminator_step_loss(apply_r1):
    discriminator = tiny_discriminator()
    real = random_images(0)
    fake = random_images(1).requires_grad_(True)

    total, logs = discriminator_step_loss(discriminator, real, fake, apply_r1=apply_r1, r1_gamma=10.0, r1_interval=4)

    expected = discriminator_loss(discriminator(real).logits, discriminator(fake).logits)
    torch.testing.assert_close(logs["adversarial"], expected.detach())
    if apply_r1:
        assert logs["r1_penalty"] > 0
        expected = expected + 10.0 / 2 * 4 * logs["r1_penalty"]
    else:
        assert "r1_penalty" not in logs
    torch.testing.assert_close(total.detach(), expected.detach())
    total.backward()
    assert fake.grad is None  # the tokenizer gets nothing from the discriminator's step
    assert all(parameter.grad is not None for parameter in discriminator.parameters())
