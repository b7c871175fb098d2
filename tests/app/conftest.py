"""Tiny models for the app tests, and the app itself served in this process on a free port of 127.0.0.1."""

import shutil
import socket
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest


APP_DIR = Path(__file__).resolve().parents[2] / "examples" / "app"
CLASSES = ("circle", "square", "triangle")
IMAGE_SIZE, PATCH_SIZE = 16, 2  # 8x8 = 64 tokens per image
PREVIEW_EVERY = 16

APP_EXTRA = "the app needs its extra: pip install -e '.[app]'"
if str(APP_DIR) not in sys.path:
    sys.path.insert(0, str(APP_DIR))


def save_tiny_models(root: Path) -> SimpleNamespace:
    """A tiny tokenizer (16x16 images, patch 2, 32 codes) with its image processor, and a 3-class VIM pipeline marked
    (in its config) as trained with label dropout, both saved as `make demo` saves them."""
    from vit_vqgan_hf import VimPipeline
    from vit_vqgan_hf.models.vit_vqgan import create_image_processor

    from ..testing_utils import tiny_tokenizer, tiny_transformer

    tokenizer = tiny_tokenizer(
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
        codebook_size=32,
        encoder_hidden_size=16,
        encoder_num_hidden_layers=1,
        encoder_num_attention_heads=2,
        encoder_intermediate_size=20,
        decoder_hidden_size=16,
        decoder_num_hidden_layers=1,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=20,
        initializer_range=0.2,  # random weights that decode to visible patterns, not a flat gray
    )
    transformer = tiny_transformer(
        codebook_size=32,
        token_grid_size=IMAGE_SIZE // PATCH_SIZE,
        hidden_size=24,
        num_attention_heads=2,
        intermediate_size=37,
        num_classes=len(CLASSES),
        id2label=dict(enumerate(CLASSES)),
        class_dropout_prob=0.1,
    )
    pipeline = VimPipeline(vqgan=tokenizer, transformer=transformer)
    paths = SimpleNamespace(tokenizer=root / "tokenizer", pipeline=root / "pipeline")
    tokenizer.save_pretrained(paths.tokenizer)
    create_image_processor(tokenizer.config).save_pretrained(paths.tokenizer)
    pipeline.save_pretrained(paths.pipeline)
    create_image_processor(tokenizer.config).save_pretrained(paths.pipeline / "vqgan")
    return paths


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    return save_tiny_models(tmp_path_factory.mktemp("app_models"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def served_app(tiny_models, tmp_path_factory):
    """The app over the tiny models, served on 127.0.0.1 for the session; yields its URL, state and Blocks."""
    pytest.importorskip("gradio", reason=APP_EXTRA)
    import app

    port = free_port()
    args = app.parse_args(
        ["--pipeline", str(tiny_models.pipeline), "--tokenizer", str(tiny_models.tokenizer), "--device", "cpu"]
        + ["--max_images", "4", "--preview_every", str(PREVIEW_EVERY), "--host", "127.0.0.1", "--port", str(port)]
    )
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path_factory.mktemp("gradio")))
        state = app.load_app_state(args)
        demo = app.build_demo(state)
        app.launch(demo, args, prevent_thread_lock=True, quiet=True)
        try:
            yield SimpleNamespace(url=f"http://127.0.0.1:{port}/", state=state, demo=demo, max_images=4)
        finally:
            demo.close()
            if state.downloads_dir is not None:
                shutil.rmtree(state.downloads_dir, ignore_errors=True)
