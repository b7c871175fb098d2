import json

import pytest
import torch
from huggingface_hub.errors import StrictDataclassClassValidationError

from tests.testing_utils import tiny_discriminator
from vit_vqgan_hf.training import VitVqganDiscriminator, VitVqganDiscriminatorConfig
from vit_vqgan_hf.training.discriminator import VitVqganDiscriminatorMinibatchStd, make_blur_kernel


@pytest.mark.parametrize("image_size", [32, 64])
@pytest.mark.parametrize("batch_size", [1, 3, 4, 5])
def test_logits_shape(image_size, batch_size):
    discriminator = tiny_discriminator(image_size=image_size)
    # 32 -> 4 takes three residual blocks, 64 -> 4 four.
    assert len(discriminator.blocks) == {32: 3, 64: 4}[image_size]
    logits = discriminator(torch.rand(batch_size, 3, image_size, image_size) * 2 - 1).logits
    assert logits.shape == (batch_size,)
    assert torch.isfinite(logits).all()


def test_default_config_matches_stylegan2_channel_table():
    config = VitVqganDiscriminatorConfig()
    # rosinality/stylegan2-pytorch with channel_multiplier=2.
    assert [config.channels_at(resolution) for resolution in (4, 32, 64, 128, 256, 512)] == [
        512,
        512,
        512,
        256,
        128,
        64,
    ]


@pytest.mark.parametrize("image_size", [4, 48])
def test_config_rejects_image_sizes_that_are_not_powers_of_two_from_8(image_size):
    # @strict wraps the ValueError of `validate_architecture`.
    with pytest.raises(StrictDataclassClassValidationError, match="power of two"):
        VitVqganDiscriminatorConfig(image_size=image_size)


def test_preset_overrides_must_be_fields():
    with pytest.raises(ValueError, match="'image_sise' is not a field .*Did you mean 'image_size'"):
        VitVqganDiscriminatorConfig.from_preset("tiny", image_sise=64)


def test_wrong_image_size_is_reported():
    with pytest.raises(ValueError, match="32x32"):
        tiny_discriminator()(torch.zeros(2, 3, 64, 64))


def test_minibatch_std_groups_and_fallback():
    config = VitVqganDiscriminatorConfig.from_preset("tiny")
    layer = VitVqganDiscriminatorMinibatchStd(config)
    hidden_states = torch.randn(6, 2, 3, 3, generator=torch.Generator().manual_seed(0))

    # 6 is not divisible by 4: groups of 3, sample n in group n % 2.
    output = layer(hidden_states)
    assert output.shape == (6, 3, 3, 3)
    torch.testing.assert_close(output[:, :2], hidden_states)
    for members in ([0, 2, 4], [1, 3, 5]):
        expected = torch.sqrt(hidden_states[members].var(dim=0, unbiased=False) + 1e-8).mean()
        for member in members:
            torch.testing.assert_close(output[member, 2], expected.expand(3, 3))

    # A prime batch size falls back to groups of one: a constant feature.
    output = layer(hidden_states[:5])
    torch.testing.assert_close(output[:, 2], torch.full((5, 3, 3), 1e-4))


def test_weights_follow_equalized_learning_rate_init():
    discriminator = tiny_discriminator()
    weight = discriminator.final_dense.weight
    assert abs(weight.std().item() - 1.0) < 0.05
    assert torch.count_nonzero(discriminator.final_dense.bias) == 0
    torch.testing.assert_close(discriminator.blocks[0].conv2.blur.kernel.sum(), torch.tensor(1.0))


def test_save_load_round_trip_is_exact(tmp_path):
    discriminator = tiny_discriminator().eval()
    pixel_values = torch.rand(3, 3, 32, 32) * 2 - 1
    discriminator.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "vit_vqgan_discriminator"

    loaded = VitVqganDiscriminator.from_pretrained(tmp_path).eval()
    assert loaded.config.to_json_string(use_diff=True) == discriminator.config.to_json_string(use_diff=True)
    original_state, loaded_state = discriminator.state_dict(), loaded.state_dict()
    assert original_state.keys() == loaded_state.keys()
    assert all(torch.equal(original_state[name], loaded_state[name]) for name in original_state)
    # The blur kernel is not saved; it must be rebuilt from the config.
    assert torch.equal(loaded.blocks[0].conv2.blur.kernel, make_blur_kernel((1, 3, 3, 1)))
    with torch.no_grad():
        assert torch.equal(loaded(pixel_values).logits, discriminator(pixel_values).logits)
