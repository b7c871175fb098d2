"""Every tab through the app's HTTP API with `gradio_client` (no browser), against the app served on 127.0.0.1."""

import json
import os
import re

import numpy as np
import PIL.Image
import pytest
import torch

from .conftest import APP_EXTRA, IMAGE_SIZE, PREVIEW_EVERY


pytest.importorskip("gradio_client", reason=APP_EXTRA)


@pytest.fixture(scope="module")
def client(served_app):
    from gradio_client import Client

    return Client(served_app.url, verbose=False, download_files=False)


def local_path(file) -> str:
    """The server's path of a file output (the server runs on this machine)."""
    return file["path"] if isinstance(file, dict) else file


def generate(client, class_name="square", num_images=3, seed=11, guidance=1.0, parallel=False):
    job = client.submit(class_name, num_images, seed, 1.0, 0, 1.0, guidance, parallel, api_name="/generate")
    job.result(timeout=120)
    return job.outputs()


def test_generate_streams_previews_then_final_images_and_downloads(client, served_app):
    outputs = generate(client)
    *previews, (gallery, status, downloads) = outputs
    assert previews and all("Sampling token" in preview[1] for preview in previews)
    assert all(len(preview[0]) == 3 for preview in previews)
    assert status.startswith("**Done**: 3 image(s) × 64 sampled tokens")
    assert [item["caption"] for item in gallery] == ["square · seed 11", "square · seed 12", "square · seed 13"]

    # The downloads hold what the pipeline samples with one generator per image from seed + i.
    paths = [local_path(item) for item in downloads]
    pngs = sorted((path for path in paths if path.endswith(".png")), key=os.path.basename)
    (tokens_path,) = [path for path in paths if path.endswith("_tokens.json")]
    pipeline = served_app.state.pipeline
    generators = [torch.Generator().manual_seed(seed) for seed in (11, 12, 13)]
    expected = pipeline(class_labels=[1], num_images_per_label=3, generator=generators, output_type="np").images
    images = np.stack([np.asarray(PIL.Image.open(path)) for path in pngs])
    assert images.shape == (3, IMAGE_SIZE, IMAGE_SIZE, 3) and images.std() > 5  # not blank
    np.testing.assert_array_equal(images, (expected * 255).round().astype(np.uint8))
    record = json.loads(open(tokens_path).read())
    assert record["class_name"] == "square" and record["seeds"] == [11, 12, 13]
    with torch.no_grad():
        decoded = pipeline.vqgan.decode_tokens(torch.tensor(record["image_tokens"]))
    np.testing.assert_allclose(((decoded + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).numpy(), expected, atol=1e-6)


def test_generate_with_parallel_decoding_shows_tokens_per_call(client, served_app):
    *previews, (gallery, status, downloads) = generate(client, num_images=2, parallel=True)
    assert all("tokens per call" in preview[1] or "starting" in preview[1] for preview in previews)
    calls, per_call = re.search(r"(\d+) transformer calls, ([\d.]+) tokens per call", status).groups()
    assert int(calls) < 64 and float(per_call) == pytest.approx(64 / int(calls), abs=0.01)
    generators = [torch.Generator().manual_seed(seed) for seed in (11, 12)]
    expected = served_app.state.pipeline(
        class_labels=[1], num_images_per_label=2, generator=generators, decoding="speculative_jacobi", output_type="np"
    ).images
    pngs = sorted((local_path(item) for item in downloads if local_path(item).endswith(".png")), key=os.path.basename)
    images = np.stack([np.asarray(PIL.Image.open(path)) for path in pngs])
    np.testing.assert_array_equal(images, (expected * 255).round().astype(np.uint8))


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"class_name": "hexagon"}, "Unknown class name 'hexagon'"),
        ({"num_images": 5}, "At most 4 images per request"),
        ({"class_name": "(unconditional)", "guidance": 3.0}, "Guidance steers towards a class"),
    ],
)
def test_generate_refusals_come_back_as_messages(client, inputs, message):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match=message.replace("(", r"\(").replace(")", r"\)")):
        generate(client, **inputs)


def test_tokenize_returns_reconstruction_metrics_and_tokens(client, served_app, tmp_path):
    from gradio_client import handle_file

    from vit_vqgan_hf.evaluation import per_image_psnr

    image = PIL.Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8))
    image.save(tmp_path / "noise.png")
    shown, reconstruction, metrics, grid, codebook, tokens_path = client.predict(
        handle_file(str(tmp_path / "noise.png")), api_name="/tokenize"
    )
    shown, reconstruction, grid, codebook, tokens_path = map(
        local_path, (shown, reconstruction, grid, codebook, tokens_path)
    )
    assert PIL.Image.open(shown).size == PIL.Image.open(reconstruction).size == (256, 256)  # 16x16, shown 16 times
    tokens = torch.tensor(json.loads(open(tokens_path).read())["image_tokens"])
    assert tokens.shape == (8, 8)
    # The figures are the tokenizer's on the image its processor prepares.
    tokenizer = served_app.state.tokenizer
    pixel_values = tokenizer.image_processor(images=image, return_tensors="pt").pixel_values
    with torch.no_grad():
        output = tokenizer.model(pixel_values)
    torch.testing.assert_close(tokens, output.image_tokens[0])
    psnr = per_image_psnr((output.reconstruction + 1) / 2, (pixel_values + 1) / 2)[0]
    assert f"**PSNR** {float(psnr):.2f} dB" in metrics and "**SSIM** 0." in metrics
    used = int((output.code_counts > 0).sum())
    assert f"{used} of 32 codes" in metrics
    assert PIL.Image.open(grid).size == (512, 512) and PIL.Image.open(codebook).width > 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"plain text, not an image\n", "'notes.png' is not an image this app can read"),
        (None, "The image is 3x2 pixels, too small"),
    ],
)
def test_tokenize_refusals_come_back_as_messages(client, tmp_path, content, message):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    path = tmp_path / "notes.png"
    if content is None:
        PIL.Image.new("RGB", (3, 2), "red").save(path)
    else:
        path.write_bytes(content)
    with pytest.raises(AppError, match=message.replace("(", r"\(")):
        client.predict(handle_file(str(path)), api_name="/tokenize")


def complete(client, path, num_prefix_rows=4, class_name="triangle", num_images=2, seed=5, guidance=1.0):
    from gradio_client import handle_file

    job = client.submit(
        handle_file(str(path)), num_prefix_rows, class_name, num_images, seed, 1.0, 0, 1.0, guidance,
        api_name="/complete",
    )  # fmt: skip
    job.result(timeout=120)
    return job.outputs()


def test_complete_keeps_the_inputs_rows_and_streams_the_rest(client, served_app, tmp_path):
    image = PIL.Image.fromarray(np.random.default_rng(1).integers(0, 256, (20, 24, 3), dtype=np.uint8))
    image.save(tmp_path / "photo.png")
    *previews, (kept, gallery, status, downloads) = complete(client, tmp_path / "photo.png", num_prefix_rows=3)
    assert previews and all("Sampling token" in preview[2] for preview in previews)
    # 8x8 tokens, 3 rows kept: the previews start after the kept 24 tokens.
    assert status.startswith("**Done**: 2 image(s) × 40 sampled tokens")
    assert [item["caption"] for item in gallery] == ["triangle · seed 5", "triangle · seed 6"]
    assert PIL.Image.open(local_path(kept)).size == (256, 256)

    # The completions are the pipeline's, and their kept rows are the input's tokens.
    pipeline = served_app.state.pipeline
    generators = [torch.Generator().manual_seed(seed) for seed in (5, 6)]
    expected = pipeline(
        class_labels=[2], image=[image], num_prefix_rows=3, num_images_per_label=2, generator=generators,
        output_type="tokens",
    ).images  # fmt: skip
    (tokens_path,) = [local_path(item) for item in downloads if local_path(item).endswith("_tokens.json")]
    record = json.loads(open(tokens_path).read())
    tokens = torch.tensor(record["image_tokens"])
    torch.testing.assert_close(tokens, expected)
    pixel_values = pipeline.vqgan_image_processor(image, return_tensors="pt").pixel_values
    with torch.no_grad():
        input_tokens = pipeline.vqgan.encode(pixel_values).image_tokens
    assert torch.equal(tokens[:, :3], input_tokens[:, :3].expand(2, -1, -1))
    assert record["num_prefix_rows"] == 3 and os.path.basename(tokens_path).startswith("completion_class2_seed5")


@pytest.mark.parametrize(
    ("inputs", "content", "message"),
    [
        ({"num_prefix_rows": 2.5}, None, "The rows to keep must be a whole number from 1 to 7"),
        ({"num_prefix_rows": 8}, None, "Value 8 is greater than maximum value 7"),  # Gradio's slider bounds
        ({"num_images": 5}, None, "At most 4 images per request"),
        ({"num_images": 2.5}, None, "The number of images must be a whole number from 1 to 4"),
        ({}, b"plain text, not an image\n", "'notes.png' is not an image this app can read"),
    ],
)
def test_complete_refusals_come_back_as_messages(client, tmp_path, inputs, content, message):
    from gradio_client.exceptions import AppError

    path = tmp_path / "notes.png"
    if content is None:
        PIL.Image.new("RGB", (16, 16), "red").save(path)
    else:
        path.write_bytes(content)
    with pytest.raises(AppError, match=message):
        complete(client, path, **inputs)


def test_preview_interval_is_the_command_lines(served_app):
    assert served_app.state.preview_every == PREVIEW_EVERY
