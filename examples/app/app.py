# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Watch VIM paint an image token by token, and see the ViT-VQGAN tokenizer at work: a Gradio app.

    make app                                            # the models `make demo` trained, on http://127.0.0.1:7860
    python examples/app/app.py --pipeline PATH_OR_HUB_ID [--tokenizer PATH_OR_HUB_ID] [--device cpu|cuda]
        [--max_images N] [--port P]

- Generate: pick a class by name (search over the transformer's `id2label`), or none when the model allows
  unconditional samples; the tokens so far stream to the page as images while `VimPipeline` samples them (through
  its `callback_on_step_end`), with a progress bar, a stop button and downloads of the PNGs and token ids.
- Complete: an uploaded (or bundled) image whose top rows of tokens VIM keeps while it writes the rest, streamed the
  same way (`VimPipeline(image=..., num_prefix_rows=...)`).
- Tokenizer: an uploaded (or bundled) image prepared by the tokenizer folder's own image processor, its
  reconstruction, PSNR / SSIM, the token grid and the codebook codes it uses.

The models load once, at start; requests wait in a queue with a concurrency limit. On a GPU the models run in bf16.
Every flag has an environment variable for Hugging Face Spaces, which start `app.py` without arguments (see README.md
beside this file): VIM_PIPELINE, VIM_TOKENIZER, VIM_DEVICE, VIM_MAX_IMAGES, VIM_THREADS.
"""

import argparse
import atexit
import json
import logging
import math
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry calls from a local or offline app

import gradio as gr
import PIL.Image
import torch
from vim_app.completion import check_completion_request, kept_rows_picture
from vim_app.errors import LoadError, RequestError
from vim_app.generation import (
    UNCONDITIONAL,
    check_request,
    class_choices,
    guidance_unavailable_reason,
    save_downloads,
    stream_generation,
)
from vim_app.loading import (
    DEMO_PIPELINE,
    LoadedTokenizer,
    default_cpu_threads,
    dtype_for,
    load_pipeline,
    load_tokenizer,
    resolve_device,
)
from vim_app.tokenizer_view import (
    SSIM_MIN_SIDE,
    codebook_usage_picture,
    minimum_side,
    open_image,
    token_grid_picture,
    tokenize_image,
    upscale_for_display,
)

from vit_vqgan_hf.utils.errors import command_line_errors


logger = logging.getLogger("vim_app")

APP_DIR = Path(__file__).resolve().parent
EXAMPLE_IMAGES_DIR = APP_DIR / "example_images"
# Files of finished requests are kept this long for their download links, then removed.
DOWNLOADS_MAX_AGE_SECONDS = 3600
GUIDANCE_INFO = "Classifier-free guidance: 1 is off (the paper's sampling); higher follows the class more closely."
PARALLEL_DECODING_INFO = (
    "Speculative Jacobi decoding: each transformer call checks a window of draft tokens and keeps several, with the "
    "same distribution as one token per call (other images for a seed)."
)
CSS = """
.pixelated img { image-rendering: pixelated; }
"""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--pipeline",
        default=os.environ.get("VIM_PIPELINE", DEMO_PIPELINE),
        help="A VimPipeline folder or Hub id (default: what `make demo` writes; env VIM_PIPELINE); `none` for the "
        "Tokenizer tab alone.",
    )
    parser.add_argument(
        "--tokenizer",
        default=os.environ.get("VIM_TOKENIZER"),
        help="A VitVqganModel folder or Hub id for the Tokenizer tab, e.g. one written by train_tokenizer.py or "
        "scripts/convert_enhancing_transformers_to_hf.py (default: the pipeline's own, its vqgan/; env VIM_TOKENIZER).",
    )
    parser.add_argument(
        "--device",
        default=os.environ.get("VIM_DEVICE"),
        help="cpu, cuda or cuda:N (default: cuda when there is a GPU; env VIM_DEVICE). Models run in bf16 on a GPU.",
    )
    parser.add_argument(
        "--max_images",
        type=int,
        default=os.environ.get("VIM_MAX_IMAGES", "8"),
        help="The most images one request may ask for (env VIM_MAX_IMAGES).",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=os.environ.get("VIM_THREADS"),
        help="torch threads on the CPU (default: the cores but one, left to the server; env VIM_THREADS).",
    )
    parser.add_argument("--concurrency", type=int, default=1, help="Requests of each tab run at once; others queue.")
    parser.add_argument("--queue_size", type=int, default=16, help="Requests that may wait; more are turned away.")
    parser.add_argument(
        "--preview_every",
        type=int,
        default=None,
        help="Decode the tokens so far every N tokens (default: as often as costs at most 5%% of sampling time).",
    )
    parser.add_argument("--host", default=None, help="Address to serve on (default: Gradio's, 127.0.0.1 locally).")
    parser.add_argument("--port", type=int, default=None, help="Port (default: Gradio's, 7860 or the first free).")
    args = parser.parse_args(argv)
    for name in ("max_images", "threads", "concurrency", "queue_size", "preview_every"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be at least 1, got {value}.")
    return args


@dataclass
class AppState:
    """What the app serves: the models (loaded once) or why they did not load, and its limits."""

    pipeline: object | None
    tokenizer: LoadedTokenizer | None
    pipeline_source: str
    device: torch.device
    max_images: int = 8
    preview_every: int | None = None
    pipeline_error: str | None = None
    tokenizer_error: str | None = None
    downloads_dir: Path | None = None  # made on first use, removed at exit
    stop_events: dict = field(default_factory=dict)


def load_app_state(args: argparse.Namespace) -> AppState:
    """Load the pipeline and the tokenizer; a model that does not load leaves its message for its tab."""
    device = resolve_device(args.device)
    dtype = dtype_for(device)
    pipeline, pipeline_error, tokenizer, tokenizer_error = None, None, None, None
    if args.pipeline.lower() == "none":
        pipeline_error = "This app was started without a pipeline (--pipeline none): only the Tokenizer tab works."
    else:
        try:
            pipeline = load_pipeline(args.pipeline, device, dtype)
        except LoadError as error:
            pipeline_error = str(error)
    try:
        tokenizer = load_tokenizer(args.tokenizer, pipeline, args.pipeline, device, dtype)
    except LoadError as error:
        tokenizer_error = str(error)
    return AppState(
        pipeline=pipeline,
        tokenizer=tokenizer,
        pipeline_source=args.pipeline,
        device=device,
        max_images=args.max_images,
        preview_every=args.preview_every,
        pipeline_error=pipeline_error,
        tokenizer_error=tokenizer_error,
    )


class VimApp:
    """The event handlers of both tabs, over one `AppState`."""

    def __init__(self, state: AppState):
        self.state = state

    # Generate tab

    def generate(
        self, class_name, num_images, seed, temperature, top_k, top_p, guidance_scale, parallel_decoding=False,
        request: gr.Request = None, progress=gr.Progress(),  # noqa: B008 (how Gradio asks for a progress bar)
    ):  # fmt: skip
        """Stream (gallery, status, downloads) from previews of the tokens so far to the final images."""
        pipeline = self._pipeline()
        try:
            checked = check_request(
                pipeline, class_name, num_images, seed, guidance_scale, temperature, top_k, top_p,
                self.state.max_images, parallel_decoding,
            )  # fmt: skip
        except RequestError as error:
            raise gr.Error(str(error), print_exception=False) from None
        yield from self._stream(checked, request, progress, "generate")

    def complete(
        self, path, num_prefix_rows, class_name, num_images, seed, temperature, top_k, top_p, guidance_scale,
        parallel_decoding=False, request: gr.Request = None,
        progress=gr.Progress(),  # noqa: B008 (how Gradio asks for a progress bar)
    ):  # fmt: skip
        """Stream (kept rows, gallery, status, downloads): the image's kept rows, then its completions appearing."""
        pipeline = self._pipeline()
        try:
            checked = check_completion_request(
                pipeline, path, num_prefix_rows, class_name, num_images, seed, guidance_scale, temperature, top_k,
                top_p, self.state.max_images, parallel_decoding,
            )  # fmt: skip
        except RequestError as error:
            raise gr.Error(str(error), print_exception=False) from None
        kept_rows = upscale_for_display(kept_rows_picture(pipeline, checked))
        for outputs in self._stream(checked, request, progress, "complete"):
            yield (kept_rows, *outputs)

    def _pipeline(self):
        if self.state.pipeline is None:
            raise gr.Error(self.state.pipeline_error, print_exception=False)
        return self.state.pipeline

    def _stream(self, checked, request: gr.Request, progress, tab: str):
        """(gallery, status, downloads) of each update of `checked`'s sampling; the stop button of `tab` ends it."""
        key = (_session(request), tab)
        stop_event = self.state.stop_events[key] = threading.Event()
        progress(0, desc="Sampling image tokens")
        try:
            for update in stream_generation(
                self.state.pipeline, checked, stop_event, preview_every=self.state.preview_every
            ):
                progress((update.num_sampled, update.num_tokens), desc="Sampling image tokens", unit="tokens")
                yield self._generation_outputs(checked, update)
        except ValueError as error:  # the pipeline's checks of its arguments
            raise gr.Error(str(error), print_exception=False) from None
        except Exception as error:
            logger.exception("Sampling failed")
            raise gr.Error(f"Sampling failed: {type(error).__name__}: {error}", print_exception=False) from None
        finally:
            self.state.stop_events.pop(key, None)

    def _generation_outputs(self, checked, update):
        total = update.num_tokens
        caption = f"{checked.class_name} · seed {{}}"
        gallery = [(image, caption.format(checked.seed + index)) for index, image in enumerate(update.images)]
        kept = getattr(checked, "num_prefix_rows", 0) * math.isqrt(total)
        # Tokens per transformer call: 1 sequentially, more with parallel (speculative Jacobi) decoding.
        per_call = f"{(update.num_sampled - kept) / update.num_calls:.2f} tokens per call" if update.num_calls else ""
        if not (update.finished or update.stopped):
            status = f"Sampling token {update.num_sampled} of {total} of each image… ({per_call or 'starting'})"
            return gallery, status, None
        if update.stopped:
            status = f"**Stopped** after {update.num_sampled} of {total} tokens per image ({update.seconds:.1f} s)."
            return gallery, status, None
        sampled = total - kept
        rate = checked.num_images * sampled / update.seconds
        status = (
            f"**Done**: {checked.num_images} image(s) × {sampled} sampled tokens in {update.seconds:.2f} s ({rate:.0f} "
            f"tokens/s on {self.state.device.type}; {update.num_calls} transformer calls, {per_call}); "
            f"{update.num_previews} preview{'' if update.num_previews == 1 else 's'} streamed."
        )
        folder = self._downloads_folder()
        return (
            gallery,
            status,
            [str(path) for path in save_downloads(folder, checked, update.images, update.image_tokens)],
        )

    def _downloads_folder(self) -> Path:
        """A fresh folder for one request's files; folders of requests older than an hour are removed."""
        if self.state.downloads_dir is None:
            self.state.downloads_dir = Path(tempfile.mkdtemp(prefix="vim_app_"))
            atexit.register(shutil.rmtree, self.state.downloads_dir, ignore_errors=True)
        now = time.time()
        for old in self.state.downloads_dir.iterdir():
            try:
                expired = now - old.stat().st_mtime > DOWNLOADS_MAX_AGE_SECONDS
            except FileNotFoundError:  # removed by a concurrent request
                continue
            if expired:
                shutil.rmtree(old, ignore_errors=True)
        return Path(tempfile.mkdtemp(dir=self.state.downloads_dir))

    def stop(self, request: gr.Request):
        """Stop this session's generation; its last preview stays on the page."""
        self._stop(request, "generate")

    def stop_completion(self, request: gr.Request):
        """Stop this session's completion; its last preview stays on the page."""
        self._stop(request, "complete")

    def _stop(self, request: gr.Request, tab: str):
        stop_event = self.state.stop_events.get((_session(request), tab))
        if stop_event is not None:
            stop_event.set()

    def guidance_for_class(self, class_name):
        """The guidance slider for the class picked: off for unconditional samples."""
        reason = guidance_unavailable_reason(self.state.pipeline)
        if reason is None and class_name == UNCONDITIONAL:
            return gr.update(interactive=False, value=1.0, info="Guidance steers towards a class: pick one to use it.")
        return gr.update(interactive=reason is None, info=reason or GUIDANCE_INFO)

    # Tokenizer tab

    def tokenize(self, path):
        """(input, reconstruction, metrics, token grid, codebook usage, tokens download) of an uploaded image."""
        tokenizer = self.state.tokenizer
        if tokenizer is None:
            raise gr.Error(self.state.tokenizer_error or "No tokenizer loaded.", print_exception=False)
        if not path:
            raise gr.Error("Upload an image, or pick one of the examples.", print_exception=False)
        try:
            image = open_image(path, tokenizer.model.config)
            result = tokenize_image(tokenizer.model, tokenizer.image_processor, image)
        except RequestError as error:
            raise gr.Error(str(error), print_exception=False) from None
        config = tokenizer.model.config
        grid = result.image_tokens.shape
        used = int((result.code_counts > 0).sum())
        ssim = (
            f"{result.ssim:.4f}" if result.ssim is not None else f"n/a (needs {SSIM_MIN_SIDE}x{SSIM_MIN_SIDE} pixels)"
        )
        metrics = (
            f"**PSNR** {result.psnr:.2f} dB · **SSIM** {ssim} (at {config.image_size}x{config.image_size}, "
            f"pixels in [0, 1])\n\n"
            f"**Tokens**: {grid[0]}x{grid[1]} = {grid[0] * grid[1]} · **codebook usage of this image**: {used} of "
            f"{config.codebook_size} codes ({100 * result.codebook_usage:.1f}%), perplexity "
            f"{result.codebook_perplexity:.1f}. In the codebook picture each square is a code, in id order: blue "
            "where this image uses it (darker: more tokens), gray where not."
        )
        tokens_path = self._downloads_folder() / "image_tokens.json"
        tokens_path.write_text(json.dumps({"image_tokens": result.image_tokens.tolist()}) + "\n")
        return (
            upscale_for_display(result.input_image),
            upscale_for_display(result.reconstruction),
            metrics,
            token_grid_picture(result.image_tokens),
            codebook_usage_picture(result.code_counts),
            str(tokens_path),
        )


def _session(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "default"


def _model_summary(state: AppState) -> str:
    lines = []
    if state.pipeline is not None:
        config = state.pipeline.transformer.config
        grid = config.token_grid_size
        kind = f"{config.num_classes} classes" if config.num_classes else "unconditional"
        lines.append(
            f"**Pipeline** `{state.pipeline_source}`: {kind}, {grid}x{grid} = {grid * grid} tokens per image of "
            f"{config.codebook_size} codes, on {state.device.type} ({state.pipeline.transformer.dtype})."
        )
    if state.tokenizer is not None:
        config = state.tokenizer.model.config
        lines.append(
            f"**Tokenizer** `{state.tokenizer.source}`: {config.image_size}x{config.image_size} images, patch "
            f"{config.patch_size}, {config.codebook_size} codes."
        )
    return "\n\n".join(lines)


def _class_and_count(state: AppState, prefix: str = "", label: str = "Images"):
    """The class picker (searchable) and the number of images of a sampling tab."""
    choices = class_choices(state.pipeline)
    class_name = gr.Dropdown(
        choices, value=choices[0], label="Class", info="Type to search the class names.", filterable=True,
        allow_custom_value=True, elem_id=f"{prefix}class-name",
    )  # fmt: skip
    # No `precision=0`: Gradio would round 2.5 to 2 before the request's own whole-number check could refuse it.
    num_images = gr.Number(
        value=min(4, state.max_images), minimum=1, label=f"{label} (at most {state.max_images})",
        elem_id=f"{prefix}num-images",
    )  # fmt: skip
    return class_name, num_images


def _sampling_controls(state: AppState, prefix: str = ""):
    """Seed, temperature, top-k, top-p and guidance of a sampling tab (guidance off, with the reason, when the
    transformer has no unconditional model)."""
    guidance_reason = guidance_unavailable_reason(state.pipeline)
    with gr.Accordion("Sampling", open=True):
        seed = gr.Number(
            value=0, minimum=0, precision=0, label="Seed (image i uses seed + i)", elem_id=f"{prefix}seed"
        )
        temperature = gr.Slider(0.05, 2.0, value=1.0, step=0.05, label="Temperature")
        top_k = gr.Number(value=0, minimum=0, precision=0, label="Top-k (0: off)")
        top_p = gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="Top-p (1: off)")
        guidance = gr.Slider(
            1.0, 10.0, value=1.0, step=0.1, label="Guidance scale", interactive=guidance_reason is None,
            info=guidance_reason or GUIDANCE_INFO, elem_id=f"{prefix}guidance",
        )  # fmt: skip
        parallel = gr.Checkbox(
            value=False, label="Parallel decoding", info=PARALLEL_DECODING_INFO, elem_id=f"{prefix}parallel"
        )
    return [seed, temperature, top_k, top_p, guidance, parallel]


def _results(prefix: str, label: str):
    """The status line, the gallery and the downloads of a sampling tab."""
    status = gr.Markdown("Press the button to start.", elem_id=f"{prefix}status")
    gallery = gr.Gallery(
        label=f"{label} (not yet sampled tokens: checkerboard)", format="png", columns=4, height=420,
        object_fit="contain", elem_id=f"{prefix}gallery", elem_classes="pixelated", buttons=["download", "fullscreen"],
    )  # fmt: skip
    downloads = gr.File(label="Downloads: PNGs and token ids", file_count="multiple", elem_id=f"{prefix}downloads")
    return gallery, status, downloads


def _unavailable(state: AppState, tab: str, elem_id: str) -> bool:
    if state.pipeline is None:
        gr.Markdown(f"**The {tab} tab is not available.** {state.pipeline_error}", elem_id=elem_id)
    return state.pipeline is None


def _generate_tab(app: VimApp):
    if _unavailable(app.state, "Generate", "generate-error"):
        return
    with gr.Row():
        with gr.Column(scale=1):
            class_name, num_images = _class_and_count(app.state)
            with gr.Row():
                generate = gr.Button("Generate", variant="primary", elem_id="generate")
                stop = gr.Button("Stop", variant="stop", elem_id="stop")
            sampling = _sampling_controls(app.state)
        with gr.Column(scale=2):
            gallery, status, downloads = _results("generate-", "Samples")
    generate.click(
        app.generate, [class_name, num_images, *sampling], [gallery, status, downloads], api_name="generate",
        concurrency_id="sampling", show_progress="full", show_progress_on=[status],
    )  # fmt: skip
    stop.click(app.stop, None, None, api_name="stop", queue=False)
    class_name.change(app.guidance_for_class, class_name, sampling[-1], api_visibility="private", queue=False)


def _completion_tab(app: VimApp):
    if _unavailable(app.state, "Complete", "completion-error"):
        return
    state, grid = app.state, app.state.pipeline.token_grid_size
    with gr.Row():
        with gr.Column(scale=1):
            upload = gr.File(
                label=f"Image (at least {minimum_side(state.pipeline.vqgan.config)} px on the shorter side)",
                file_types=["image"], elem_id="completion-upload",
            )  # fmt: skip
            num_prefix_rows = gr.Slider(
                1, grid - 1, value=grid // 2, step=1, label=f"Rows of tokens to keep (of {grid})",
                elem_id="completion-rows",
            )  # fmt: skip
            class_name, num_images = _class_and_count(state, "completion-", "Completions")
            with gr.Row():
                complete = gr.Button("Complete", variant="primary", elem_id="complete")
                stop = gr.Button("Stop", variant="stop", elem_id="completion-stop")
            sampling = _sampling_controls(state, "completion-")
        with gr.Column(scale=2):
            kept_rows = gr.Image(
                label="Kept rows (as the tokenizer sees them; checkerboard: what VIM writes)", format="png",
                height=220, elem_classes="pixelated", elem_id="completion-kept",
            )  # fmt: skip
            gallery, status, downloads = _results("completion-", "Completions")
    examples = sorted(path for path in EXAMPLE_IMAGES_DIR.glob("*.*") if _fits(path, state.pipeline.vqgan.config))
    if examples:
        gr.Examples([[str(path)] for path in examples], inputs=[upload], label="Bundled examples")
    complete.click(
        app.complete, [upload, num_prefix_rows, class_name, num_images, *sampling],
        [kept_rows, gallery, status, downloads], api_name="complete", concurrency_id="sampling",
        show_progress="full", show_progress_on=[status],
    )  # fmt: skip
    stop.click(app.stop_completion, None, None, api_name="stop_completion", queue=False)
    class_name.change(app.guidance_for_class, class_name, sampling[-1], api_visibility="private", queue=False)


def _tokenizer_tab(app: VimApp):
    state = app.state
    if state.tokenizer is None:
        gr.Markdown(f"**The Tokenizer tab is not available.** {state.tokenizer_error}", elem_id="tokenizer-error")
        return
    config = state.tokenizer.model.config
    if state.tokenizer.processor_note:
        gr.Markdown(state.tokenizer.processor_note)
    with gr.Row():
        with gr.Column(scale=1):
            upload = gr.File(
                label=f"Image (at least {minimum_side(config)} px on the shorter side)", file_types=["image"],
                elem_id="upload",
            )  # fmt: skip
            tokenize = gr.Button("Tokenize", variant="primary", elem_id="tokenize")
        with gr.Column(scale=2):
            with gr.Row():
                shown_input = gr.Image(
                    label="Input (prepared)", format="png", height=300, elem_classes="pixelated", elem_id="input"
                )
                reconstruction = gr.Image(
                    label="Reconstruction",
                    format="png",
                    height=300,
                    elem_classes="pixelated",
                    elem_id="reconstruction",
                )
            metrics = gr.Markdown(elem_id="metrics")
            with gr.Row():
                token_grid = gr.Image(label="Token ids", format="png", height=300, elem_id="token-grid")
                codebook = gr.Image(label="Codebook usage of this image", format="png", height=300, elem_id="codebook")
            tokens_file = gr.File(label="Token ids (JSON)", elem_id="tokens-file")
    outputs = [shown_input, reconstruction, metrics, token_grid, codebook, tokens_file]
    examples = sorted(path for path in EXAMPLE_IMAGES_DIR.glob("*.*") if _fits(path, config))
    if examples:
        gr.Examples([[str(path)] for path in examples], inputs=[upload], outputs=outputs, fn=app.tokenize,
                    run_on_click=True, cache_examples=False, label="Bundled examples")  # fmt: skip
    gr.on(
        [tokenize.click, upload.upload], app.tokenize, upload, outputs, api_name="tokenize", concurrency_id="tokenize"
    )


def _fits(path: Path, config) -> bool:
    with PIL.Image.open(path) as image:
        return min(image.size) >= minimum_side(config)


def build_demo(state: AppState) -> gr.Blocks:
    """The page: Generate, Complete and Tokenizer tabs over `state`'s models."""
    app = VimApp(state)
    with gr.Blocks(title="VIM: image generation token by token", analytics_enabled=False) as demo:
        gr.Markdown(
            "# VIM: watch an image appear token by token\n"
            "Vector-quantized Image Modeling (Yu et al., ICLR 2022): a transformer samples the ViT-VQGAN tokens of an "
            "image one by one in raster order; the tokenizer decodes them to pixels.\n\n" + _model_summary(state)
        )
        with gr.Tab("Generate", id="generate-tab"):
            _generate_tab(app)
        with gr.Tab("Complete", id="completion-tab"):
            _completion_tab(app)
        with gr.Tab("Tokenizer", id="tokenizer-tab"):
            _tokenizer_tab(app)
    return demo


def launch(demo: gr.Blocks, args: argparse.Namespace, **kwargs):
    """Queue (`--concurrency`, `--queue_size`) and serve `demo`."""
    demo.queue(max_size=args.queue_size, default_concurrency_limit=args.concurrency)
    theme = gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]
    )
    return demo.launch(
        server_name=args.host, server_port=args.port, max_file_size="20mb", theme=theme, css=CSS, **kwargs
    )


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    torch.set_num_threads(args.threads or default_cpu_threads())
    state = load_app_state(args)  # a LoadError is reported by `command_line_errors`
    if state.pipeline is None and state.tokenizer is None:
        # Without --tokenizer the Tokenizer tab serves the pipeline's: the pipeline's message says it all.
        reasons = [state.pipeline_error] + ([state.tokenizer_error] if args.tokenizer else [])
        raise LoadError("nothing to serve. " + " ".join(reasons))
    for message in (state.pipeline_error, state.tokenizer_error):
        if message:
            logger.warning(message)
    launch(build_demo(state), args)


if __name__ == "__main__":
    with command_line_errors():
        main()
