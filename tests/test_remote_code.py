"""Saved folders carry their modeling code: `trust_remote_code=True` loading where `vit_vqgan_hf` cannot be imported."""

import json
import os
import re
import subprocess
import sys
import textwrap

import torch
from transformers import AutoModel

import vit_vqgan_hf
from tests.testing_utils import tiny_pipeline, tiny_tokenizer, tiny_transformer
from vit_vqgan_hf import VimForCausalLM, VitVqganModel
from vit_vqgan_hf.hub import create_model_card


# Runs in a fresh interpreter where importing `vit_vqgan_hf` fails (the editable install puts it on the path), then runs
# the "without the package" snippets of the tokenizer card and of the pipeline card.
LOAD_WITHOUT_PACKAGE = textwrap.dedent(
    """
    import sys

    class BlockPackage:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "vit_vqgan_hf":
                raise ImportError(f"{name} is blocked in this test")

    sys.meta_path.insert(0, BlockPackage())

    import json

    import torch
    from transformers import AutoModel

    folder, inputs_path, outputs_path, tokenizer_snippet, pipeline_snippet = sys.argv[1:]
    try:
        AutoModel.from_pretrained(folder + "/vqgan")
    except ValueError as error:
        assert "trust_remote_code" in str(error), error
    else:
        raise AssertionError("loading custom code without trust_remote_code=True should fail")

    exec(tokenizer_snippet)  # defines `model`
    exec(pipeline_snippet)  # defines `transformer` and `vqgan`
    inputs = torch.load(inputs_path)
    with torch.no_grad():
        outputs = {
            "reconstruction": model.eval()(inputs["pixel_values"]).reconstruction,
            "pipeline_reconstruction": vqgan.eval()(inputs["pixel_values"]).reconstruction,
            "logits": transformer.eval()(inputs["input_ids"]).logits,
        }
    torch.save(outputs, outputs_path)
    modules = [type(model).__module__, type(vqgan).__module__, type(transformer).__module__]
    print("\\nRESULT", json.dumps([modules, [name for name in sys.modules if name.startswith("vit_vqgan_hf")]]))
    """
)


def remote_code_snippet(card) -> str:
    (snippet,) = [
        block
        for block in re.findall(r"```python\n(.*?)```", str(card), flags=re.DOTALL)
        if "trust_remote_code" in block
    ]
    return snippet


def test_folders_load_with_trust_remote_code_without_the_package(tmp_path):
    # Non-default options too, so that the copied configuration and modeling files must understand them.
    tokenizer = tiny_tokenizer(
        position_embedding_type="sincos",
        encoder_head_type="none",
        decoder_head_type="linear",
        quantizer_gradient="rotation",
        use_codebook_linear_map=True,
        codebook_entropy_weight=0.01,
        codebook_entropy_temperature=0.02,
    )
    transformer = tiny_transformer()
    # The component folders of a pipeline.
    tokenizer.save_pretrained(tmp_path / "vqgan")
    transformer.save_pretrained(tmp_path / "transformer")

    assert json.loads((tmp_path / "vqgan" / "config.json").read_text())["auto_map"] == {
        "AutoConfig": "configuration_vit_vqgan.VitVqganConfig",
        "AutoModel": "modeling_vit_vqgan.VitVqganModel",
    }
    assert json.loads((tmp_path / "transformer" / "config.json").read_text())["auto_map"] == {
        "AutoConfig": "configuration_vim.VimConfig",
        "AutoModelForCausalLM": "modeling_vim.VimForCausalLM",
    }
    for folder, module in (("vqgan", "modeling_vit_vqgan.py"), ("transformer", "modeling_vim.py")):
        assert (tmp_path / folder / module).is_file()

    snippets = [
        remote_code_snippet(create_model_card(tokenizer.config, repo_id=str(tmp_path / "vqgan"))),
        remote_code_snippet(
            create_model_card(transformer.config, tokenizer_config=tokenizer.config, repo_id=str(tmp_path))
        ),
    ]
    inputs = {
        "pixel_values": torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1,
        "input_ids": torch.tensor([[transformer.config.class_token_id(3), 5, 17, 200]]),
    }
    torch.save(inputs, tmp_path / "inputs.pt")
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    command = [sys.executable, "-c", LOAD_WITHOUT_PACKAGE, str(tmp_path), str(tmp_path / "inputs.pt")]
    result = subprocess.run(
        [*command, str(tmp_path / "out.pt"), *snippets],
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    modules, imported = json.loads(result.stdout.split("\nRESULT ")[-1])
    assert all(module.startswith("transformers_modules.") for module in modules) and imported == []

    outputs = torch.load(tmp_path / "out.pt")
    with torch.no_grad():
        reconstruction = tokenizer(inputs["pixel_values"]).reconstruction
        assert torch.equal(outputs["reconstruction"], reconstruction)
        assert torch.equal(outputs["pipeline_reconstruction"], reconstruction)
        assert torch.equal(outputs["logits"], transformer(inputs["input_ids"]).logits)


def test_the_package_classes_take_precedence_over_the_copied_code(tmp_path):
    tiny_tokenizer().save_pretrained(tmp_path)
    assert type(AutoModel.from_pretrained(tmp_path)) is VitVqganModel


def test_pipeline_folders_keep_loading_with_the_package(tmp_path):
    pipe = tiny_pipeline(tiny_tokenizer(), tiny_transformer())
    pipe.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "model_index.json").read_text())["vqgan"] == [
        "vit_vqgan_hf.models.vit_vqgan.modeling_vit_vqgan",
        "VitVqganModel",
    ]
    assert (tmp_path / "vqgan" / "modeling_vit_vqgan.py").is_file()
    reloaded = vit_vqgan_hf.VimPipeline.from_pretrained(tmp_path)
    assert type(reloaded.vqgan) is VitVqganModel and type(reloaded.transformer) is VimForCausalLM
    tokens = [
        p(class_labels=[1], generator=torch.Generator().manual_seed(0), output_type="tokens").images
        for p in (pipe, reloaded)
    ]
    assert torch.equal(*tokens)
