"""A training step of either model reads no tensor value back to the host: on a GPU, no device sync (issue 15).

Value checks run where data enters instead: in eval mode, `generate()` and the pipeline (tests of the models' and the
pipeline's invalid inputs)."""

import pytest
import torch
import torch.nn.functional as F

from tests.testing_utils import tiny_tokenizer, tiny_transformer


@pytest.mark.parametrize("use_logit_laplace", [True, False])
def test_tokenizer_training_step_makes_no_host_sync(host_syncs, use_logit_laplace):
    model = tiny_tokenizer(use_logit_laplace=use_logit_laplace).train()
    pixel_values = torch.rand(2, 3, 32, 32) * 2 - 1
    host_syncs.clear()
    output = model(pixel_values)
    loss = F.l1_loss(output.reconstruction, pixel_values) + output.vq_loss
    if use_logit_laplace:
        loss = loss + output.logit_laplace_log_scale.mean()
    loss.backward()
    assert dict(host_syncs) == {}
    assert model.encoder.patch_embeddings.weight.grad is not None


@pytest.mark.parametrize("gradient_checkpointing", [False, True])
def test_vim_training_step_makes_no_host_sync(host_syncs, gradient_checkpointing):
    model = tiny_transformer(class_dropout_prob=0.1).train()
    config = model.config
    if gradient_checkpointing:
        model.activation_checkpointing_enable()
    prefix = torch.tensor([[config.class_token_id(3)], [config.null_class_token_id]])
    input_ids = torch.cat([prefix, torch.randint(0, config.codebook_size, (2, config.num_image_tokens))], dim=1)
    host_syncs.clear()
    model(input_ids.to(torch.int16), labels=input_ids, use_cache=False).loss.backward()
    assert dict(host_syncs) == {}
    assert model.model.embed_tokens.weight.grad is not None


def test_eval_mode_still_reads_values_once(host_syncs):
    # The counter sees the checks the training step skips: an inference call on a prompt reads the token ids once.
    model = tiny_transformer()
    config = model.config
    input_ids = torch.tensor([[config.class_token_id(3), 1, 2]])
    host_syncs.clear()
    with torch.no_grad():
        model(input_ids)
    assert sum(host_syncs.values()) == 1


@pytest.mark.parametrize("cache_implementation", [None, "static"])
def test_generate_checks_its_prompt(cache_implementation):
    model = tiny_transformer()
    with pytest.raises(ValueError, match="The prefix token .* is 5, but it must be a class token"):
        model.generate(torch.tensor([[5]]), do_sample=False, cache_implementation=cache_implementation)
