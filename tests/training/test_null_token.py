"""`fit_null_token`: the null token of a model trained without label dropout, fitted with the rest frozen."""

import itertools

import pytest
import torch

from vit_vqgan_hf import VimConfig, VimForCausalLM
from vit_vqgan_hf.training import fit_null_token
from vit_vqgan_hf.training.tokens import vim_input_ids

from ..testing_utils import tiny_pipeline


def skewed_image_tokens(config: VimConfig, num_sequences: int, seed: int = 0) -> torch.LongTensor:
    """Image tokens drawn from the first 4 codes only: an unconditional distribution far from the model's."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 4, (num_sequences, config.token_grid_size**2), generator=generator)


def unconditional_loss(model: VimForCausalLM, image_tokens: torch.LongTensor) -> float:
    config = model.config
    input_ids = vim_input_ids(image_tokens, torch.full((len(image_tokens),), config.null_class_token_id))
    with torch.no_grad():
        return model(input_ids=input_ids, labels=input_ids).loss.item()


def test_only_the_null_token_row_changes_and_its_loss_falls():
    pipe = tiny_pipeline(class_dropout_prob=0.0)  # the paper: no label dropout
    model = pipe.transformer.train()
    model.lm_head.weight.requires_grad_(False)  # a flag of the caller's, restored as it was
    config = model.config
    data = skewed_image_tokens(config, 64)
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    loss_before = unconditional_loss(model, data)
    with pytest.raises(ValueError, match="Classifier-free guidance needs a trained null token"):
        pipe(class_labels=[0], guidance_scale=2.0, output_type="tokens")

    losses = fit_null_token(model, itertools.cycle(data.split(16)), num_steps=40, learning_rate=0.05)

    assert losses.shape == (40,) and losses[-8:].mean() < losses[:8].mean()
    assert unconditional_loss(model, data) < loss_before
    null_row = config.null_class_token_id
    for name, tensor in model.state_dict().items():
        if name.endswith("embed_tokens.weight"):
            changed = (tensor != before[name]).any(dim=1).nonzero().flatten().tolist()
            assert changed == [null_row]
        else:
            assert torch.equal(tensor, before[name]), name
    assert model.training and not model.lm_head.weight.requires_grad
    assert all(p.requires_grad for name, p in model.named_parameters() if not name.startswith("lm_head"))
    # Guidance and unconditional samples now have their prefix; the flag survives saving.
    assert config.null_token_fitted and config.has_trained_null_token
    pipe = type(pipe)(vqgan=pipe.vqgan, transformer=model.eval())
    pipe.set_progress_bar_config(disable=True)
    assert pipe(class_labels=[0], guidance_scale=2.0, output_type="tokens").images.shape == (1, 4, 4)
    assert pipe(class_labels=None, output_type="tokens").images.shape == (1, 4, 4)


def test_the_flag_is_saved_with_the_config(tmp_path):
    VimConfig.from_preset("tiny", null_token_fitted=True).save_pretrained(tmp_path)
    config = VimConfig.from_pretrained(tmp_path)
    assert config.null_token_fitted and config.has_trained_null_token
    assert not VimConfig.from_preset("tiny").has_trained_null_token
    assert VimConfig.from_preset("tiny", num_classes=0).has_trained_null_token


@pytest.mark.parametrize(
    ("overrides", "num_steps", "batches", "message"),
    [
        ({"num_classes": 0}, 2, 2, "`model` is unconditional"),
        ({}, 0, 2, "`num_steps` must be a positive number"),
        ({}, 3, 2, "gave 2 batches for 3 steps"),
    ],
)
def test_impossible_fits_are_refused(overrides, num_steps, batches, message):
    model = tiny_pipeline(**{"class_dropout_prob": 0.0, **overrides}).transformer
    before = model.get_input_embeddings().weight.clone()
    data = skewed_image_tokens(model.config, 4 * batches).split(4)
    with pytest.raises(ValueError, match=message):
        fit_null_token(model, iter(data), num_steps=num_steps)
    assert torch.equal(model.get_input_embeddings().weight, before) and not model.config.null_token_fitted
