"""Loading the app's models: what each wrong folder or name says, and the tokenizer the Tokenizer tab gets."""

import json
import sys

import pytest
import torch
from vim_app.errors import LoadError
from vim_app.loading import DEMO_PIPELINE, load_pipeline, load_tokenizer

from vit_vqgan_hf import VimPipeline
from vit_vqgan_hf.utils.errors import command_line_errors

from .conftest import APP_EXTRA


CPU = torch.device("cpu")


def test_pipeline_loads_on_the_device(tiny_models):
    pipeline = load_pipeline(str(tiny_models.pipeline), CPU, torch.float32)
    assert isinstance(pipeline, VimPipeline) and pipeline.transformer.device == CPU


@pytest.mark.parametrize(
    ("which", "message"),
    [
        ("tokenizer", "is not a VimPipeline folder: it has no model_index.json"),
        ("missing_demo", "There is no pipeline at outputs/demo/pipeline. Run `make demo` first"),
        ("missing", "is no local file or folder, and it does not load as a Hub id either"),
        ("file", "is a file; expected a folder written by train_vim.py"),
    ],
)
def test_wrong_pipelines_get_a_message(tiny_models, tmp_path, monkeypatch, which, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not a pipeline")
    name = {
        "tokenizer": str(tiny_models.tokenizer),
        "missing_demo": DEMO_PIPELINE,
        "missing": str(tmp_path / "no" / "such" / "pipeline"),
        "file": "notes.txt",
    }[which]
    with pytest.raises(LoadError) as error:
        load_pipeline(name, CPU, torch.float32)
    assert message in str(error.value)
    if which == "tokenizer":
        assert "pass it as --tokenizer" in str(error.value)


def test_tokenizer_defaults_to_the_pipelines_with_its_processor(tiny_models):
    pipeline = load_pipeline(str(tiny_models.pipeline), CPU, torch.float32)
    tokenizer = load_tokenizer(None, pipeline, str(tiny_models.pipeline), CPU, torch.float32)
    assert tokenizer.model is pipeline.vqgan and tokenizer.processor_note is None
    assert tokenizer.image_processor.crop_size == {"height": 16, "width": 16}


def test_tokenizer_from_a_pipeline_folder_uses_its_vqgan(tiny_models):
    tokenizer = load_tokenizer(str(tiny_models.pipeline), None, "none", CPU, torch.float32)
    assert tokenizer.model.config.image_size == 16 and tokenizer.processor_note is None


def test_tokenizer_without_processor_gets_the_default_one_and_a_note(tiny_models, tmp_path):
    from vit_vqgan_hf import VitVqganModel

    folder = tmp_path / "bare_tokenizer"
    VitVqganModel.from_pretrained(tiny_models.tokenizer).save_pretrained(folder)  # no preprocessor_config.json
    tokenizer = load_tokenizer(str(folder), None, "none", CPU, torch.float32)
    assert "no preprocessor_config.json" in tokenizer.processor_note
    assert tokenizer.image_processor.size == {"shortest_edge": 16}


def test_a_folder_without_config_is_not_a_tokenizer(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(LoadError, match="is not a tokenizer folder: it has no config.json"):
        load_tokenizer(str(tmp_path / "empty"), None, "none", CPU, torch.float32)


def test_command_line_without_make_demo_says_what_to_do(tmp_path, monkeypatch, capsys):
    """`python examples/app/app.py` where `make demo` has not run: it exits with the message, not a traceback."""
    pytest.importorskip("gradio", reason=APP_EXTRA)
    import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VIM_PIPELINE", raising=False)
    monkeypatch.delenv("VIM_TOKENIZER", raising=False)
    monkeypatch.setattr(sys, "argv", ["app.py", "--device", "cpu"])
    with pytest.raises(SystemExit) as exit, command_line_errors():  # as `python examples/app/app.py` runs it
        app.main()
    assert exit.value.code == 2
    assert capsys.readouterr().err == (
        "error: nothing to serve. There is no pipeline at outputs/demo/pipeline. Run `make demo` first (it writes "
        "outputs/demo/), or pass --pipeline (or set VIM_PIPELINE) with a VimPipeline folder or Hub id.\n"
    )


def test_page_says_when_the_pipeline_folder_is_not_a_pipeline(tiny_models):
    pytest.importorskip("gradio", reason=APP_EXTRA)
    import app

    args = app.parse_args(["--pipeline", str(tiny_models.tokenizer), "--tokenizer", str(tiny_models.tokenizer)])
    state = app.load_app_state(args)
    assert state.pipeline is None and state.tokenizer is not None
    demo = app.build_demo(state)
    config = json.loads(json.dumps(demo.get_config_file(), default=str))
    messages = [c["props"].get("value") for c in config["components"] if c["props"].get("elem_id") == "generate-error"]
    assert len(messages) == 1 and "is not a VimPipeline folder" in messages[0] and "make demo" in messages[0]
