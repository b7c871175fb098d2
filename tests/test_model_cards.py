"""Tests of the model-card templates and `vit_vqgan_hf.hub.create_model_card` (offline)."""

import argparse
import json
import re
import shutil
import subprocess
import sys
import zipfile
from importlib.resources import files
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

import vit_vqgan_hf
from tests.testing_utils import tiny_pipeline, tiny_tokenizer, tiny_tokenizer_config, tiny_transformer, tiny_vim_config
from vit_vqgan_hf import VimConfig, VitVqganConfig
from vit_vqgan_hf.evaluation import build_results, save_results
from vit_vqgan_hf.evaluation.results import linear_probe_results
from vit_vqgan_hf.hub import create_model_card
from vit_vqgan_hf.models.vit_vqgan import create_image_processor


REPOSITORY = Path(__file__).resolve().parents[1]
TEMPLATES = ("vit-vqgan.md", "vim.md")
TRAINING_ARGS = argparse.Namespace(
    dataset_name="ILSVRC/imagenet-1k",
    model_config="ss",
    learning_rate=1e-4,
    train_batch_size=32,
    seed=0,
    output_dir="/home/someone/private/run",
    perceptual_model="/home/someone/weights/lpips_vgg16.safetensors",
    hub_token="hf_secret_value",
    report_to=None,
)


def tokenizer_results() -> dict:
    return build_results(
        "image-reconstruction",
        {"rfid": 2.25, "psnr": 24.5, "inception_score": 151.0, "inception_score_std": 2.5, "codebook_usage": 0.96},
        num_samples=50000,
        class_balance={
            "labelled": True,
            "num_classes": 1000,
            "images_per_class": {},
            "min_images_per_class": 50,
            "max_images_per_class": 50,
            "balanced": True,
        },
        image_size=256,
        resize="shorter side to 256, center crop",
        feature_network={"name": "FidInceptionV3", "weights_sha256": "0123abcd"},
        reference={"kind": "originals of the evaluated split (rFID)"},
        seeds={"seed": 0},
        skipped={"kid": "not requested"},
        data={"source": {"kind": "dataset", "name": "ILSVRC/imagenet-1k", "split": "validation"}},
    )


def pipeline_results() -> dict:
    return build_results(
        "class-conditional-image-generation",
        {"fid": 4.5, "inception_score": 170.0},
        num_samples=50000,
        class_balance={"labelled": True, "num_classes": 1000, "min_images_per_class": 50, "max_images_per_class": 50},
        image_size=256,
        resize=None,
        feature_network={"name": "FidInceptionV3", "weights_sha256": "0123abcd"},
        reference={"path": "imagenet_train_stats.npz", "file_sha256": "feedbeef", "num_samples": 1281167},
        seeds={"seed": 0},
        sampling={"temperature": 1.0, "top_k": None, "guidance_scale": 1.0},
        data={"source": {"kind": "dataset", "name": "ILSVRC/imagenet-1k", "split": "train"}},
    )


def check_card(card: ModelCard) -> str:
    """Common checks; returns the text. The metadata must survive a save/load round trip."""
    text = str(card)
    assert "{{" not in text and "{%" not in text
    reloaded = ModelCard(text)
    assert reloaded.data.to_dict() == card.data.to_dict()
    assert card.data.library_name == "vit-vqgan-hf" and "arxiv:2110.04627" in card.data.tags
    for section in ("## Model details", "## Intended uses and limitations", "## How to use", "## Training data"):
        assert section in text
    assert "@inproceedings{yu2022vectorquantized" in text
    assert "hf_secret_value" not in text and "/home/someone" not in text
    return text


def test_templates_ship_in_the_package_and_sit_at_the_repository_top_level():
    for name in TEMPLATES:
        packaged = files("vit_vqgan_hf").joinpath("model_cards", name)
        assert packaged.is_file()
        text = packaged.read_text(encoding="utf-8")
        assert text.startswith("---\n{{ card_data }}\n---\n")  # the form ModelCard.from_template expects
        assert (REPOSITORY / "model_cards" / name).samefile(Path(str(packaged)))


def test_the_wheel_carries_the_templates(tmp_path):
    # An installed package reads the templates from its own folder (importlib.resources), so shipping them in the
    # wheel is what makes `create_model_card` work outside the repository.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(REPOSITORY / name, source / name)
    shutil.copytree(REPOSITORY / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", "wheel", str(source)]
    subprocess.run([*command, "--no-deps", "--no-build-isolation", "-w", str(tmp_path)], check=True)
    (wheel,) = tmp_path.glob("vit_vqgan_hf-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"vit_vqgan_hf/model_cards/{name}" for name in TEMPLATES} <= names
    assert "vit_vqgan_hf/hub/model_cards.py" in names


@pytest.mark.parametrize("preset", ["ss", "bb", "sl", "tiny"])
@pytest.mark.parametrize("with_results", [False, True])
def test_tokenizer_cards(preset, with_results, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("data/images").mkdir(parents=True)
    config = VitVqganConfig.from_preset(preset)
    results = tokenizer_results() if with_results else None
    training_args = argparse.Namespace(**vars(TRAINING_ARGS), train_data_dir="data/images")
    card = create_model_card(config, training_args, results=results, repo_id="someone/vit-vqgan-" + preset)
    text = check_card(card)
    assert card.data.pipeline_tag == "image-feature-extraction"
    assert card.data.datasets == ["ILSVRC/imagenet-1k"] and card.data.license == "apache-2.0"
    assert card.data.base_model is None
    assert "# vit-vqgan-" + preset in text
    assert 'VitVqganModel.from_pretrained("someone/vit-vqgan-' + preset + '")' in text
    assert "| `learning_rate` | 0.0001 |" in text and "hub_token" not in text and "output_dir" not in text
    assert "| `perceptual_model` | (a local path) |" in text and "| `train_data_dir` | (a local path) |" in text
    assert "| `model_config` | ss |" in text
    rfid = {"ss": "1.99", "bb": "1.55", "sl": "1.28"}.get(preset)
    assert (f"rFID) of {rfid} for its own ViT-VQGAN-{preset.upper()}" in text) == (rfid is not None)
    if with_results:
        (result,) = card.data.eval_results[:1]
        assert (result.task_type, result.dataset_type, result.dataset_split) == (
            "image-reconstruction",
            "ILSVRC/imagenet-1k",
            "validation",
        )
        assert {r.metric_name: r.metric_value for r in card.data.eval_results} == {
            "rFID": 2.25,
            "PSNR": 24.5,
            "Inception Score": 151.0,
            "Codebook usage": 0.96,
        }
        assert "| Inception Score | 151 ± 2.5 |" in text
        assert "- images: 50000" in text and "1000 classes, 50 to 50 images per class" in text
        assert "- `kid` not computed: not requested" in text
    else:
        assert card.data.eval_results is None and "No evaluation results were recorded" in text


def test_tokenizer_card_without_training_args_or_known_size():
    config = tiny_tokenizer_config(encoder_hidden_size=64, decoder_num_hidden_layers=3)
    card = create_model_card(config)
    text = check_card(card)
    assert card.data.datasets is None
    assert "\n# ViT-VQGAN\n" in text
    assert "custom size" in text and "Not recorded with this checkpoint." in text
    assert "No training configuration was recorded" in text and "For reference" not in text
    assert 'from_pretrained("path/to/this/folder")' in text


@pytest.mark.parametrize("preset", ["base", "large", "tiny"])
@pytest.mark.parametrize("num_classes", [1000, 0])
@pytest.mark.parametrize("with_results", [False, True])
def test_pipeline_cards(preset, num_classes, with_results):
    config = VimConfig.from_preset(preset, num_classes=num_classes)
    tokenizer_config = VitVqganConfig.from_preset("tiny" if preset == "tiny" else "ss")
    results = pipeline_results() if with_results else None
    card = create_model_card(
        config,
        {"dataset_name": "ILSVRC/imagenet-1k", "tokenizer": "someone/vit-vqgan-ss", "learning_rate": 4.5e-4},
        tokenizer_config=tokenizer_config,
        results=results,
        repo_id="someone/vim-" + preset,
        base_model="someone/vit-vqgan-ss",
    )
    text = check_card(card)
    assert card.data.pipeline_tag == "unconditional-image-generation"
    assert card.data.base_model == "someone/vit-vqgan-ss"
    assert ("class-conditional" in card.data.tags) == bool(num_classes)
    assert 'VimPipeline.from_pretrained("someone/vim-' + preset + '")' in text
    assert ("class_labels=[207]" in text) == bool(num_classes) and ("class_labels=None" in text) != bool(num_classes)
    # The paper's sizes name the ImageNet classes; the tiny one has no names to show.
    assert ("\n# golden retriever\n" in text) == (bool(num_classes) and preset != "tiny")
    assert "[someone/vit-vqgan-ss](https://huggingface.co/someone/vit-vqgan-ss)" in text
    assert "| `tokenizer` | someone/vit-vqgan-ss |" in text
    expected_reference = {"base": "FID 8.81", "large": "FID 4.17"}.get(preset) if num_classes else None
    if expected_reference:
        assert expected_reference in text
    else:
        assert "For reference" not in text
    if with_results:
        assert {r.metric_name: r.metric_value for r in card.data.eval_results} == {
            "FID": 4.5,
            "Inception Score": 170.0,
        }
        assert card.data.eval_results[0].task_type == "class-conditional-image-generation"
        assert "- sampling: temperature 1, top_k None, guidance_scale 1" in text
        assert "- reference: path imagenet_train_stats.npz, file_sha256 feedbeef, num_samples 1281167" in text


def test_pipeline_card_with_a_linear_probe_results_file(tmp_path):
    results = linear_probe_results({12: 0.61, 18: 0.65}, dataset="ILSVRC/imagenet-1k", split="validation")
    path = save_results(results, tmp_path / "linear_probe.json")
    card = create_model_card(tiny_vim_config(), tokenizer_config=tiny_tokenizer_config(), results=path)
    check_card(card)
    (result,) = card.data.eval_results
    assert (result.task_type, result.metric_type, result.metric_value) == ("image-classification", "accuracy", 0.65)


def test_a_converted_checkpoint_card_states_its_source():
    config = VitVqganConfig.from_preset(
        "bb", hidden_act="tanh", encoder_head_type="none", decoder_head_type="linear", use_logit_laplace=False
    )
    card = create_model_card(
        config,
        dataset="ILSVRC/imagenet-1k",
        license="mit",
        provenance="**Converted weights.** From elsewhere.",
        extra_citation="The converted weights: someone, 2022.",
    )
    text = check_card(card)
    assert card.data.license == "mit"
    assert "**Converted weights.** From elsewhere." in text and text.rstrip().endswith("someone, 2022.")
    assert "| Encoder head | none |" in text and "| Decoder head | Linear to each patch's pixels |" in text
    assert "MLP 3072 (tanh)" in text


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="needs `tokenizer_config`"):
        create_model_card(tiny_vim_config())
    with pytest.raises(ValueError, match="must be a Hub repository id, got the local folder"):
        create_model_card(
            tiny_vim_config(),
            tokenizer_config=tiny_tokenizer_config(),
            base_model=str(tmp_path),
        )
    with pytest.raises(ValueError, match="VitVqganConfig or a VimConfig"):
        create_model_card({"model_type": "vit_vqgan"})
    with pytest.raises(ValueError, match="none of the reportable metrics"):
        create_model_card(tiny_tokenizer_config(), results={**tokenizer_results(), "metrics": {"x": 1}})


def run_usage_snippet(card: ModelCard) -> dict:
    """Run the card's first snippet (the `vit_vqgan_hf` one) and return its variables. The second one, loading with
    `trust_remote_code=True` without the package, is what tests/test_remote_code.py runs."""
    snippets = re.findall(r"```python\n(.*?)```", str(card), flags=re.DOTALL)
    assert len(snippets) == 2 and "trust_remote_code=True" in snippets[1]
    namespace = {}
    exec(compile(snippets[0], "model card", "exec"), namespace)
    return namespace


def test_tokenizer_card_snippet_runs(tmp_path):
    tokenizer = tiny_tokenizer()
    config = tokenizer.config
    tokenizer.save_pretrained(tmp_path)
    create_image_processor(config).save_pretrained(tmp_path)
    namespace = run_usage_snippet(create_model_card(config, repo_id=str(tmp_path)))
    assert namespace["image_tokens"].shape == (1, 8, 8) and namespace["reconstruction"].shape == (1, 3, 32, 32)


@pytest.mark.skipif(not hasattr(vit_vqgan_hf, "VimPipeline"), reason="VimPipeline is not exported by vit_vqgan_hf yet")
def test_pipeline_card_snippet_runs(tmp_path):
    tokenizer, transformer = tiny_tokenizer(), tiny_transformer()
    tiny_pipeline(tokenizer, transformer).save_pretrained(tmp_path)
    card = create_model_card(transformer.config, tokenizer_config=tokenizer.config, repo_id=str(tmp_path))
    images = run_usage_snippet(card)["images"]
    assert len(images) == 1 and images[0].size == (32, 32)


def test_results_file_and_dict_give_the_same_card(tmp_path):
    results = tokenizer_results()
    path = save_results(results, tmp_path / "results.json")
    config = VitVqganConfig.from_preset("ss")
    from_file = create_model_card(config, results=path, repo_id="a/b")
    from_dict = create_model_card(config, results=json.loads(Path(path).read_text()), repo_id="a/b")
    assert str(from_file) == str(from_dict)


@pytest.mark.parametrize(
    "arguments, expected",
    [
        ({"train_data_dir": "/data/images"}, "A local image folder (`--train_data_dir`)."),
        ({"pretokenized_dataset": "/data/tokens"}, "written by `examples/pretokenize.py` (`--pretokenized_dataset`)"),
    ],
)
def test_local_training_data_is_described_by_the_flag_that_gave_it(arguments, expected):
    card = create_model_card(tiny_vim_config(), arguments, tokenizer_config=tiny_tokenizer_config())
    assert expected in check_card(card)


@pytest.mark.parametrize(
    "class_dropout_prob, null_token_fitted, expected",
    [
        (0.0, False, "no label dropout (the paper), so no guidance"),
        (0.1, False, "probability 0.1 in training"),
        (0.0, True, "null token fitted after training, the transformer frozen, for guidance"),
    ],
)
def test_pipeline_card_says_whether_guidance_was_trained(class_dropout_prob, null_token_fitted, expected):
    config = tiny_vim_config(class_dropout_prob=class_dropout_prob, null_token_fitted=null_token_fitted)
    text = check_card(create_model_card(config, tokenizer_config=tiny_tokenizer_config()))
    guidance = class_dropout_prob > 0 or null_token_fitted
    assert expected in text and ("classifier-free guidance (`guidance_scale`)" in text) == guidance
    assert ("or the null token." in text) == guidance
