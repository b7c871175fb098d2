"""Tests of VimConfig, VimModel and VimForCausalLM on tiny configs (offline, CPU)."""

import dataclasses
import re

import pytest
import torch
import torch.nn.functional as F
from huggingface_hub.errors import StrictDataclassError
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, DynamicCache, GenerationConfig

from tests.testing_utils import tiny_transformer, tiny_vim_config
from vit_vqgan_hf import VimConfig, VimForCausalLM, VimModel
from vit_vqgan_hf.models.vim import modeling_vim


# Deliberately odd, distinct sizes so that a swapped dimension fails loudly: 3x3 token grid -> 10 positions,
# vocabulary 23 image tokens + 5 classes + null = 29.
TINY = {
    "codebook_size": 23,
    "num_classes": 5,
    "token_grid_size": 3,
    "hidden_size": 36,
    "num_hidden_layers": 2,
    "num_attention_heads": 3,
    "intermediate_size": 37,
    "hidden_dropout_prob": 0.0,
    "attention_dropout": 0.0,
    "class_dropout_prob": 0.0,
}
CONFIG_ERRORS = (ValueError, StrictDataclassError)  # a field's validator, or `validate_architecture`


def make_config(**overrides) -> VimConfig:
    return tiny_vim_config(**{**TINY, **overrides})


def make_model(model_class=VimForCausalLM, **overrides):
    return tiny_transformer(model_class=model_class, **{**TINY, **overrides})


def make_sequences(config: VimConfig, batch_size=3, class_labels=None, seed=1) -> torch.LongTensor:
    generator = torch.Generator().manual_seed(seed)
    if class_labels is None:
        class_labels = torch.randint(0, config.num_classes, (batch_size,), generator=generator).tolist()
    prefix = torch.tensor([[config.class_token_id(label)] for label in class_labels])
    image_tokens = torch.randint(
        0, config.codebook_size, (len(class_labels), config.num_image_tokens), generator=generator
    )
    return torch.cat([prefix, image_tokens], dim=1)


# Configuration


def test_token_id_helpers():
    config = make_config()
    assert config.vocab_size == 23 + 5 + 1
    assert config.null_class_token_id == 28
    assert config.class_token_id(0) == 23 and config.class_token_id(4) == 27
    assert config.num_image_tokens == 9 and config.max_position_embeddings == 10
    assert len(config.id2label) == 5
    with pytest.raises(ValueError, match="out of range"):
        config.class_token_id(5)
    unconditional = make_config(num_classes=0)
    assert unconditional.null_class_token_id == 23 and unconditional.vocab_size == 24
    assert unconditional.id2label == {}


def test_documented_defaults_match_fields():
    docstring = VimConfig.__doc__
    own_fields = [field for field in dataclasses.fields(VimConfig) if field.name in VimConfig.__annotations__]
    assert own_fields
    for field in own_fields:
        default = field.default
        expected = (
            f'`"{default}"`' if isinstance(default, str) else f"`{default}`" if isinstance(default, bool) else default
        )
        assert re.search(
            rf"{field.name} \(`[^`]+`, \*optional\*, defaults to {re.escape(str(expected))}\):", docstring
        ), field.name


def test_defaults_are_the_base_preset_which_names_the_imagenet_classes():
    defaults, base = VimConfig().to_dict(), VimConfig.from_preset("base").to_dict()
    for labels in ("id2label", "label2id"):
        defaults.pop(labels), base.pop(labels)
    assert defaults == base
    id2label = VimConfig.from_preset("base").id2label
    assert len(id2label) == 1000 and id2label[1].startswith("goldfish")
    assert VimConfig.from_preset("base", num_classes=10).id2label[0] == "LABEL_0"


@pytest.mark.parametrize(("name", "paper_parameters"), [("base", 650e6), ("large", 1697e6)])
def test_preset_parameter_counts(name, paper_parameters):
    config = VimConfig.from_preset(name)
    assert (config.codebook_size, config.num_classes, config.token_grid_size) == (8192, 1000, 32)
    assert config.hidden_dropout_prob == config.attention_dropout == 0.1
    with torch.device("meta"):
        model = VimForCausalLM(config)
    num_parameters = sum(parameter.numel() for parameter in model.parameters())
    assert abs(num_parameters / paper_parameters - 1) < 0.15


def test_presets_and_overrides():
    tiny = VimConfig.from_preset("tiny", num_classes=0)
    assert (tiny.hidden_size, tiny.codebook_size, tiny.num_classes, tiny.token_grid_size) == (64, 256, 0, 8)
    with pytest.raises(ValueError, match="Unknown VIM preset 'huge'"):
        VimConfig.from_preset("huge")
    with pytest.raises(ValueError, match="'num_clases' is not a field of VimConfig.*Did you mean 'num_classes'"):
        VimConfig.from_preset("tiny", num_clases=0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"num_attention_heads": 5}, "must divide `hidden_size`"),
        ({"num_classes": -1}, "(?s)field 'num_classes'.*greater or equal to 0"),
        ({"codebook_size": 0}, "(?s)field 'codebook_size'.*positive integer"),
        ({"class_dropout_prob": 1.5}, "(?s)field 'class_dropout_prob'.*probability"),
        ({"hidden_act": "swishy"}, "(?s)field 'hidden_act'.*activation function"),
        ({"id2label": {0: "cat"}}, "`id2label` names 1 classes"),
    ],
)
def test_invalid_configs_raise(overrides, message):
    with pytest.raises(CONFIG_ERRORS, match=message):
        make_config(**overrides)


# Forward pass


def test_modeling_module_exposes_pretrained_model_for_diffusers():
    assert modeling_vim.PreTrainedModel.__name__ == "PreTrainedModel"


def test_output_shapes_and_hidden_states():
    model = make_model()
    input_ids = make_sequences(model.config)
    with torch.no_grad():
        output = model(input_ids, output_hidden_states=True, use_cache=True)
    assert output.logits.shape == (3, 10, model.config.codebook_size)
    assert len(output.hidden_states) == model.config.num_hidden_layers + 1
    assert all(hidden.shape == (3, 10, 36) for hidden in output.hidden_states)
    # Every block's raw output is kept; the final LayerNorm is applied only to the last hidden state.
    torch.testing.assert_close(output.logits, model.lm_head(model.model.norm(output.hidden_states[-1])))
    assert isinstance(output.cache, DynamicCache) and output.cache.get_seq_length() == 10
    assert model(input_ids, use_cache=False).cache is None and model(input_ids).hidden_states is None


def test_positional_arguments_follow_the_contract():
    # contract.md: forward(input_ids, attention_mask=None, cache=None, use_cache=None, labels=None,
    # output_hidden_states=None, ...); a positional call must not land in another argument.
    model = make_model()
    input_ids = make_sequences(model.config)
    attention_mask = torch.ones_like(input_ids)
    with torch.no_grad():
        output = model(input_ids, attention_mask, None, True, input_ids, True)
        expected = model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            use_cache=True,
            labels=input_ids,
            output_hidden_states=True,
        )
    assert output.cache.get_seq_length() == 10 and len(output.hidden_states) == model.config.num_hidden_layers + 1
    torch.testing.assert_close(output.loss, expected.loss)
    with torch.no_grad():
        base_output = model.model(input_ids, attention_mask, None, False, True)
    assert base_output.cache is None and len(base_output.hidden_states) == model.config.num_hidden_layers + 1


def test_inputs_embeds_match_input_ids():
    model = make_model()
    input_ids = make_sequences(model.config)
    with torch.no_grad():
        expected = model(input_ids).logits
        from_embeds = model(inputs_embeds=model.model.embed_tokens(input_ids)).logits
    torch.testing.assert_close(from_embeds, expected)


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_incremental_decoding_matches_full_forward(attn_implementation):
    model = make_model()
    model.set_attn_implementation(attn_implementation)
    input_ids = make_sequences(model.config)
    with torch.no_grad():
        full = model(input_ids, use_cache=False).logits
        output = model(input_ids[:, :4], use_cache=True)
        steps = [output.logits]
        cache = output.cache
        for position in range(4, input_ids.shape[1]):
            output = model(input_ids[:, position : position + 1], cache=cache, use_cache=True)
            cache = output.cache
            steps.append(output.logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-5, atol=1e-5)


def test_eager_and_sdpa_agree():
    model = make_model()
    input_ids = make_sequences(model.config)
    with torch.no_grad():
        sdpa = model(input_ids).logits
        model.set_attn_implementation("eager")
        eager = model(input_ids).logits
    torch.testing.assert_close(eager, sdpa, rtol=1e-5, atol=1e-5)


def test_class_token_changes_logits():
    model = make_model()
    config = model.config
    input_ids = make_sequences(config, class_labels=[0, 3])
    input_ids[1, 1:] = input_ids[0, 1:]
    unconditional = input_ids[:1].clone()
    unconditional[0, 0] = config.null_class_token_id
    with torch.no_grad():
        logits = model(torch.cat([input_ids, unconditional])).logits
    for first, second in [(0, 1), (0, 2)]:
        assert (logits[first] - logits[second]).abs().amax(dim=-1).min() > 1e-4


def test_loss_covers_image_tokens_only():
    model = make_model()
    input_ids = make_sequences(model.config)
    with torch.no_grad():
        output = model(input_ids, labels=input_ids)
        manual = F.cross_entropy(
            output.logits[:, :-1].reshape(-1, model.config.codebook_size), input_ids[:, 1:].flatten()
        )
        torch.testing.assert_close(output.loss, manual)
        # Whatever sits at the prefix position of the labels is ignored.
        for prefix_label in (-100, 12345):
            labels = input_ids.clone()
            labels[:, 0] = prefix_label
            torch.testing.assert_close(model(input_ids, labels=labels).loss, manual)


def test_residual_and_activation_dropout_only_in_training():
    model = make_model(hidden_dropout_prob=0.5)
    without_dropout = make_model(hidden_dropout_prob=0.0)
    without_dropout.load_state_dict(model.state_dict())
    sequences = make_sequences(model.config)
    with torch.no_grad():
        torch.testing.assert_close(model(sequences).logits, without_dropout(sequences).logits)
        model.train()
        torch.manual_seed(0)
        first = model(sequences).logits
        assert not torch.allclose(first, without_dropout(sequences).logits)
        assert not torch.allclose(first, model(sequences).logits)  # a new draw each call
        # The activation dropout of the MLP applies too: at p = 1 the outputs change again.
        for block in model.model.layers:
            block.mlp.dropout.p = 1.0
        assert not torch.allclose(model(sequences).logits, first)


def test_class_dropout_only_in_training():
    model = make_model(class_dropout_prob=1.0)
    config = model.config
    conditional = make_sequences(config, class_labels=[2, 2, 2, 2, 2, 2, 2, 2])
    unconditional = conditional.clone()
    unconditional[:, 0] = config.null_class_token_id
    with torch.no_grad():
        conditional_logits = model(conditional).logits
        unconditional_logits = model(unconditional).logits
        model.train()
        torch.testing.assert_close(model(conditional).logits, unconditional_logits)

        # With p = 0.5 some rows are dropped, each row is either fully conditional or fully unconditional, and the
        # draw is reproducible under torch.manual_seed.
        model.config.class_dropout_prob = 0.5
        torch.manual_seed(3)
        first = model(conditional).logits
        torch.manual_seed(3)
        assert torch.equal(model(conditional).logits, first)
    dropped = [torch.allclose(row, reference, atol=1e-5) for row, reference in zip(first, unconditional_logits)]
    kept = [torch.allclose(row, reference, atol=1e-5) for row, reference in zip(first, conditional_logits)]
    assert all(d != k for d, k in zip(dropped, kept)) and any(dropped) and any(kept)


def test_gradient_checkpointing_gives_same_gradients():
    model = make_model().train()
    input_ids = make_sequences(model.config)

    def gradients():
        model.zero_grad()
        model(input_ids, labels=input_ids, use_cache=False).loss.backward()
        return {name: parameter.grad.clone() for name, parameter in model.named_parameters()}

    expected = gradients()
    model.activation_checkpointing_enable()
    assert all(layer.gradient_checkpointing for layer in model.model.layers)
    checkpointed = gradients()
    for name, gradient in expected.items():
        torch.testing.assert_close(checkpointed[name], gradient, msg=name)


def test_initialization():
    model = make_model()
    # GPT-2 residual scaling: output projections of the blocks use std 0.02 / sqrt(2 * num_hidden_layers) = 0.01.
    for layer in model.model.layers:
        assert 0.008 < layer.mlp.fc2.weight.std() < 0.012 and 0.008 < layer.self_attn.o_proj.weight.std() < 0.012
    assert 0.017 < model.model.layers[0].mlp.fc1.weight.std() < 0.023
    assert model.model.position_embeddings.prefix_embedding.abs().sum() > 0
    assert all(torch.isfinite(parameter).all() for parameter in model.parameters())


# Invalid inputs


def _with(input_ids, position, value):
    input_ids = input_ids.clone()
    input_ids[1, position] = value
    return input_ids


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (
            lambda ids, config: _with(ids, 4, config.codebook_size + 50),
            r"Image tokens must be in \[0, 22\].*position 4",
        ),
        (lambda ids, config: _with(ids, 4, -1), r"Image tokens must be in \[0, 22\]"),
        (lambda ids, config: _with(ids, 2, config.class_token_id(1)), "may only appear at position 0"),
        (lambda ids, config: _with(ids, 0, 7), "every sequence starts with a class or null token"),
        (lambda ids, config: _with(ids, 0, config.null_class_token_id + 1), "class 6 is out of range for 5 classes"),
        (lambda ids, config: torch.cat([ids, ids[:, -1:]], dim=1), "at most 10: 1 prefix token and 3x3 image tokens"),
    ],
)
def test_invalid_input_ids_raise(corrupt, message):
    model = make_model()
    input_ids = corrupt(make_sequences(model.config), model.config)
    with pytest.raises(ValueError, match=message):
        model(input_ids)


def test_other_invalid_inputs_raise():
    model = make_model()
    input_ids = make_sequences(model.config)
    with pytest.raises(ValueError, match="exactly one of `input_ids` or `inputs_embeds`"):
        model()
    with pytest.raises(ValueError, match=r"at most 10.*\(10 cached\)|\(10 cached\)"):
        cache = model(input_ids, use_cache=True).cache
        model(input_ids[:, -1:], cache=cache)
    with pytest.raises(ValueError, match="`position_ids` must lie in"):
        model(input_ids[:, :2], position_ids=torch.tensor([[0, 10]]))
    labels = _with(input_ids, 3, model.config.codebook_size)
    with pytest.raises(ValueError, match="`labels` after position 0 must be image tokens"):
        model(input_ids, labels=labels)
    with pytest.raises(ValueError, match="`labels` must have the shape"):
        model(input_ids, labels=input_ids[:, 1:])
    with pytest.raises(TypeError, match="`labels` must be a torch.Tensor, got numpy.ndarray"):
        model(input_ids, labels=input_ids.numpy())
    with pytest.raises(
        ValueError, match="`input_ids` must be an integer tensor of token ids, got dtype torch.float32"
    ):
        model(input_ids.float())


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda model, ids: model(ids[0]),
            ValueError,
            r"`input_ids` must be 2-D \(batch_size, sequence_length\), got shape \(10,\)\. Add a batch dimension",
        ),
        (
            lambda model, ids: model(ids.numpy()),
            TypeError,
            r"`input_ids` must be a torch.Tensor of shape \(batch_size, sequence_length\), got numpy.ndarray",
        ),
        (lambda model, ids: model(ids.tolist()), TypeError, "`input_ids` must be a torch.Tensor.*got list"),
        (
            lambda model, ids: model(ids[:, :0]),
            ValueError,
            r"`input_ids` must hold at least one sequence of at least one token, got shape \(3, 0\)",
        ),
        (lambda model, ids: model(ids[:0]), ValueError, r"`input_ids` must hold at least one sequence.*\(0, 10\)"),
        (lambda model, ids: model(inputs_embeds=torch.zeros(10, 36)), ValueError, "`inputs_embeds` must be 3-D"),
        (
            lambda model, ids: model(inputs_embeds=torch.zeros(3, 10, 35)),
            ValueError,
            r"`inputs_embeds` must have shape \(batch_size, sequence_length, 36\).*got \(3, 10, 35\)",
        ),
        (
            lambda model, ids: model(ids, attention_mask=torch.ones(3, 9)),
            ValueError,
            r"`attention_mask` must have shape \(batch_size, cached_length \+ sequence_length\) = \(3, 10\) "
            r"\(0 cached and 10 new tokens\), got \(3, 9\)",
        ),
        (lambda model, ids: model(ids, attention_mask=torch.ones(1, 10)), ValueError, r"= \(3, 10\).*got \(1, 10\)"),
        (
            # With a cache, a 2-D mask covers the cached tokens too.
            lambda model, ids: model(
                ids[:, 4:5], cache=model(ids[:, :4], use_cache=True).cache, attention_mask=torch.ones(3, 1)
            ),
            ValueError,
            r"`attention_mask` must have shape .* = \(3, 5\) \(4 cached and 1 new tokens\), got \(3, 1\)",
        ),
        (lambda model, ids: model(ids, attention_mask=torch.ones(10)), ValueError, "`attention_mask` must be 2-D"),
        (
            lambda model, ids: model(ids, attention_mask=torch.zeros(3, 1, 9, 10)),
            ValueError,
            r"A 4-D `attention_mask` must have shape \(3 or 1, heads, 10, key_length\)",
        ),
        (
            lambda model, ids: model(ids, attention_mask=[[1] * 10] * 3),
            TypeError,
            "`attention_mask` must be a torch.Tensor, got list",
        ),
        (
            lambda model, ids: model(ids, position_ids=torch.arange(9)[None]),
            ValueError,
            r"`position_ids` must have shape \(3 or 1, 10\).*got \(1, 9\)",
        ),
        (lambda model, ids: model(ids, position_ids=torch.arange(10)), ValueError, "`position_ids` must be 2-D"),
    ],
)
def test_invalid_input_types_and_shapes_raise_before_compute(call, error, message):
    model = make_model()
    input_ids = make_sequences(model.config)
    calls = []
    hook = model.model.layers[0].register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        with pytest.raises(error, match=message):
            call(model, input_ids)
    finally:
        hook.remove()
    # The cached case runs the model once to fill its cache; the faulty call itself must not reach a layer.
    assert len(calls) <= 1


def test_valid_attention_masks_are_accepted():
    model = make_model()
    input_ids = make_sequences(model.config)
    with torch.no_grad():
        expected = model(input_ids).logits
        torch.testing.assert_close(model(input_ids, attention_mask=torch.ones(3, 10)).logits, expected)
        cache = model(input_ids[:, :4], use_cache=True).cache
        step = model(input_ids[:, 4:5], cache=cache, attention_mask=torch.ones(3, 5)).logits
        torch.testing.assert_close(step[:, 0], expected[:, 4], rtol=1e-5, atol=1e-5)
        causal = torch.zeros(1, 1, 10, 10).masked_fill(torch.ones(10, 10, dtype=torch.bool).triu(1), float("-inf"))
        torch.testing.assert_close(model(input_ids, attention_mask=causal).logits, expected, rtol=1e-5, atol=1e-5)


def test_narrow_integer_ids_are_accepted():
    # Pretokenized data stores int16 ids.
    model = make_model()
    input_ids = make_sequences(model.config)
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids.to(torch.int16)).logits, model(input_ids).logits)


# Generation


def test_generate_greedy_with_and_without_cache():
    model = make_model()
    prefix = make_sequences(model.config, class_labels=[1, 4])[:, :1]
    with_cache = model.generate(prefix, do_sample=False, use_cache=True)
    without_cache = model.generate(prefix, do_sample=False, use_cache=False)
    # By default a whole image is generated.
    assert with_cache.shape == (2, model.config.max_position_embeddings)
    assert torch.equal(with_cache, without_cache)
    assert torch.equal(with_cache[:, :1], prefix)
    # Greedy decoding is the argmax of the teacher-forced logits at every step.
    with torch.no_grad():
        logits = model(with_cache).logits
    assert torch.equal(logits[:, :-1].argmax(dim=-1), with_cache[:, 1:])


@pytest.mark.parametrize("num_classes", [5, 0])
def test_generate_sampling(num_classes):
    model = make_model(num_classes=num_classes)
    prefix_id = model.config.class_token_id(2) if num_classes else model.config.null_class_token_id
    prefix = torch.full((3, 1), prefix_id)
    torch.manual_seed(0)
    sequences = model.generate(prefix, do_sample=True, temperature=0.7, top_k=7, top_p=0.9)
    assert sequences.shape == (3, 10)
    image_tokens = sequences[:, 1:]
    assert image_tokens.min() >= 0 and image_tokens.max() < model.config.codebook_size


def test_generate_with_classifier_free_guidance():
    model = make_model()
    config = model.config
    prefix = torch.tensor([[config.class_token_id(1)], [config.class_token_id(3)]])
    null = torch.full_like(prefix, config.null_class_token_id)
    guidance_scale = 3.0
    sequences = model.generate(prefix, do_sample=False, guidance_scale=guidance_scale, negative_prompt_ids=null)
    assert sequences.shape == (2, 10) and sequences[:, 1:].max() < config.codebook_size
    # The first token is the argmax of the guided log-probabilities.
    with torch.no_grad():
        conditional = model(prefix).logits[:, -1].log_softmax(-1)
        unconditional = model(null).logits[:, -1].log_softmax(-1)
    guided = unconditional + guidance_scale * (conditional - unconditional)
    assert torch.equal(sequences[:, 1], guided.argmax(dim=-1))
    # The sampling variant runs as well.
    sampled = model.generate(prefix, do_sample=True, top_k=5, guidance_scale=guidance_scale, negative_prompt_ids=null)
    assert sampled.shape == (2, 10)


@pytest.mark.parametrize(
    ("prompt_length", "arguments", "message"),
    [
        (
            1,
            {"max_new_tokens": 10},
            r"`max_new_tokens=10` after a 1-token prompt asks for sequences of 11 tokens, but a VIM sequence has at "
            r"most 10 \(`config.max_position_embeddings`\): 1 prefix token and 3x3 image tokens\. "
            r"Pass `max_new_tokens` <= 9",
        ),
        (4, {"max_new_tokens": 7}, r"`max_new_tokens=7` after a 4-token prompt .* Pass `max_new_tokens` <= 6"),
        (1, {"max_length": 11}, r"`max_length=11` asks for sequences of 11 tokens.*at most 10"),
        (1, {"generation_config": GenerationConfig(max_new_tokens=12)}, "`max_new_tokens=12`"),
    ],
)
def test_generate_past_the_last_image_token_raises_before_decoding(prompt_length, arguments, message):
    model = make_model()
    prompt = make_sequences(model.config, class_labels=[1, 4])[:, :prompt_length]
    calls = []
    hook = model.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        with pytest.raises(ValueError, match=message):
            model.generate(prompt, do_sample=False, **arguments)
    finally:
        hook.remove()
    assert calls == []
    # Exactly the rest of the image is fine.
    max_new_tokens = model.config.max_position_embeddings - prompt_length
    assert model.generate(prompt, do_sample=False, max_new_tokens=max_new_tokens).shape == (2, 10)


# Serialization


def test_save_and_load_round_trips(tmp_path):
    model = make_model()
    input_ids = make_sequences(model.config)
    model.save_pretrained(tmp_path)
    with torch.no_grad():
        expected = model(input_ids).logits
        expected_hidden = model.model(input_ids).last_hidden_state

        reloaded = VimForCausalLM.from_pretrained(tmp_path).eval()
        assert torch.equal(reloaded(input_ids).logits, expected)
        assert reloaded.generation_config.max_length == model.config.max_position_embeddings

        auto_causal_lm = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
        assert type(auto_causal_lm) is VimForCausalLM
        assert torch.equal(auto_causal_lm(input_ids).logits, expected)

        auto_model = AutoModel.from_pretrained(tmp_path).eval()
        assert type(auto_model) is VimModel
        assert torch.equal(auto_model(input_ids).last_hidden_state, expected_hidden)

    config = AutoConfig.from_pretrained(tmp_path)
    assert type(config) is VimConfig
    assert {**config.to_dict(), "_name_or_path": ""} == model.config.to_dict()
    assert config.null_class_token_id == model.config.null_class_token_id
