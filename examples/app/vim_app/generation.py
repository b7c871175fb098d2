# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""The Generate tab's work, without Gradio: checking a request, and sampling it on a worker thread while previews of
the tokens so far stream back."""

import dataclasses
import json
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import PIL.Image
import torch

from .errors import RequestError
from .streaming import Preview, TokenPreviewCallback, mask_unsampled


UNCONDITIONAL = "(unconditional)"
MAX_SEED = 2**32 - 1
# The page renders each update separately only if they do not arrive together; a browser shows no more anyway.
UPDATE_INTERVAL = 0.1


@dataclass
class GenerationRequest:
    """A checked request: the class id (`None`: unconditional) and the pipeline's sampling arguments."""

    class_id: int | None
    class_name: str
    num_images: int
    seed: int
    guidance_scale: float
    temperature: float
    top_k: int | None
    top_p: float | None
    # Speculative Jacobi decoding: several tokens per transformer call, the same distribution (other images per seed).
    parallel_decoding: bool = False

    file_prefix: ClassVar[str] = "vim"

    def settings(self) -> dict:
        """What the token-ids download records besides the tokens."""
        return {
            "class_id": self.class_id,
            "class_name": self.class_name,
            "seeds": [self.seed + index for index in range(self.num_images)],
            "guidance_scale": self.guidance_scale,
            "temperature": self.temperature,
            "top_k": self.top_k,
            "top_p": self.top_p,
            "decoding": self.decoding,
        }

    @property
    def decoding(self) -> str:
        return "speculative_jacobi" if self.parallel_decoding else "sequential"

    def pipeline_kwargs(self) -> dict:
        # One generator per image: image i depends on seed + i only, not on how many images are asked for.
        generators = [torch.Generator().manual_seed(self.seed + index) for index in range(self.num_images)]
        return {
            "class_labels": None if self.class_id is None else [self.class_id],
            "num_images_per_label": self.num_images,
            "guidance_scale": self.guidance_scale,
            "temperature": self.temperature,
            "top_k": self.top_k,
            "top_p": self.top_p,
            "generator": generators,
            "decoding": self.decoding,
        }


def class_choices(pipeline) -> list[str]:
    """The class picker's entries: every `id2label` name in id order, then `UNCONDITIONAL` when the model allows it."""
    config = pipeline.transformer.config
    names = [config.id2label[class_id] for class_id in range(config.num_classes)]
    return names + ([UNCONDITIONAL] if pipeline.has_trained_null_class else [])


def guidance_unavailable_reason(pipeline) -> str | None:
    """Why classifier-free guidance cannot be used with this transformer, or `None` when it can."""
    config = pipeline.transformer.config
    if config.num_classes == 0:
        return "The transformer is unconditional (no classes), so there is nothing to guide towards."
    if not pipeline.has_trained_null_class:
        return (
            "Guidance is off: this transformer was trained without label dropout (`class_dropout_prob` = 0) and its "
            "null token was not fitted after training (`null_token_fitted`), so it has no unconditional model to "
            "guide against."
        )
    return None


def resolve_class(pipeline, class_name) -> int | None:
    """The class id of a picker entry, a class name or synonym, or a class id typed as a number; `None` for
    `UNCONDITIONAL`. Raises `RequestError` with the closest names for an unknown name."""
    config = pipeline.transformer.config
    name = "" if class_name is None else str(class_name).strip()
    if not name:
        raise RequestError("Pick a class (type to search the class names).")
    if name == UNCONDITIONAL:
        if not pipeline.has_trained_null_class:
            raise RequestError("This transformer cannot sample unconditionally: it never saw the null token.")
        return None
    if config.num_classes == 0:
        raise RequestError(f"This transformer is unconditional; pick {UNCONDITIONAL!r}.")
    if name.isdigit() and name not in pipeline.labels and int(name) < config.num_classes:
        return int(name)
    try:
        return pipeline.get_label_ids(name)[0]
    except ValueError as error:
        raise RequestError(
            str(error).replace("See `pipe.labels` for the names.", "Type to search the names.")
        ) from None


def as_whole_number(name: str, value, minimum: int, maximum: int | None = None) -> int:
    """`value` (a number from the page or the API) as an int in `[minimum, maximum]`, or a `RequestError` naming it."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RequestError(f"{name} must be a whole number, got {value!r}.") from None
    if not number.is_integer() or number < minimum or (maximum is not None and number > maximum):
        bounds = f"from {minimum} to {maximum}" if maximum is not None else f"at least {minimum}"
        raise RequestError(f"{name} must be a whole number {bounds}, got {value!r}.")
    return int(number)


def check_request(
    pipeline, class_name, num_images, seed, guidance_scale, temperature, top_k, top_p, max_images: int,
    parallel_decoding=False,
) -> GenerationRequest:  # fmt: skip
    """Check the Generate tab's inputs (from the page or the API) and turn them into a `GenerationRequest`."""
    class_id = resolve_class(pipeline, class_name)
    try:
        num_images = as_whole_number("The number of images", num_images, 1)
    except RequestError:
        raise RequestError(f"The number of images must be a whole number from 1 to {max_images}.") from None
    if num_images > max_images:
        raise RequestError(
            f"At most {max_images} images per request (the app's --max_images), got {num_images}. Ask for fewer."
        )
    seed = as_whole_number("The seed", seed, 0, MAX_SEED)
    top_k = as_whole_number("Top-k", top_k, 0)
    try:
        guidance_scale, temperature, top_p = float(guidance_scale), float(temperature), float(top_p)
    except (TypeError, ValueError):
        raise RequestError("Guidance, temperature and top-p must be numbers.") from None
    if not temperature > 0:
        raise RequestError(f"The temperature must be above 0, got {temperature}.")
    if not 0 < top_p <= 1:
        raise RequestError(f"Top-p must be in (0, 1] (1 turns it off), got {top_p}.")
    if guidance_scale != 1:
        reason = guidance_unavailable_reason(pipeline)
        if reason:
            raise RequestError(reason + " Set guidance to 1.")
        if class_id is None:
            raise RequestError("Guidance steers towards a class: pick a class, or set guidance to 1.")
        if not guidance_scale > 1:
            raise RequestError(f"Guidance must be at least 1 (1 turns it off), got {guidance_scale}.")
    return GenerationRequest(
        class_id=class_id,
        class_name=UNCONDITIONAL if class_id is None else pipeline.transformer.config.id2label[class_id],
        num_images=num_images,
        seed=seed,
        guidance_scale=guidance_scale,
        temperature=temperature,
        top_k=top_k or None,
        top_p=None if top_p == 1 else top_p,
        parallel_decoding=_as_switch("Parallel decoding", parallel_decoding),
    )


def _as_switch(name: str, value) -> bool:
    """A checkbox's value from the page or the API: a bool (`None`, an omitted input, is off)."""
    if value is None or isinstance(value, bool):
        return bool(value)
    raise RequestError(f"{name} must be true or false, got {value!r}.")


@dataclass
class GenerationUpdate:
    """What the page shows at one moment of a generation."""

    num_sampled: int
    num_tokens: int
    images: list = field(default_factory=list)  # PIL images: masked previews, or the final images
    image_tokens: torch.LongTensor | None = None  # (batch, grid, grid), final updates only
    finished: bool = False
    stopped: bool = False
    seconds: float = 0.0
    num_previews: int = 0
    num_calls: int = 0  # transformer calls so far: tokens per call = sampled tokens / calls


def stream_generation(
    pipeline,
    request: GenerationRequest,
    stop_event: threading.Event,
    preview_every: int | None = None,
    update_interval: float = UPDATE_INTERVAL,
) -> Iterator[GenerationUpdate]:
    """
    Sample `request` with `pipeline` on a worker thread, yielding a `GenerationUpdate` for previews (at most one per
    `update_interval` seconds, the latest) and a last one with the final images, or the last preview if `stop_event`
    was set. Errors of the pipeline are raised here. Closing the iterator stops the sampling.
    """
    events = queue.Queue()
    grid = pipeline.token_grid_size
    callback = TokenPreviewCallback(
        pipeline.vqgan, grid * grid, on_preview=events.put, every=preview_every, stop_event=stop_event
    )
    start = time.perf_counter()

    def sample():
        try:
            images = pipeline(**request.pipeline_kwargs(), callback_on_step_end=callback).images
            events.put(("done", images) if callback.stopped_at is None else ("stopped", callback.stopped_at))
        except Exception as error:  # handed over, and raised in the request's thread
            events.put(("error", error))

    worker = threading.Thread(target=sample, name="vim-sampling", daemon=True)
    worker.start()
    last_update, pending, last_preview = 0.0, None, None
    try:
        while True:
            timeout = None if pending is None else max(0.0, last_update + update_interval - time.perf_counter())
            try:
                event = events.get(timeout=timeout)
            except queue.Empty:
                event = None
            if isinstance(event, Preview):
                pending = last_preview = event
            elif event is not None:
                break
            if pending is not None and time.perf_counter() - last_update >= update_interval:
                yield _preview_update(pending, grid, callback)
                pending, last_update = None, time.perf_counter()
        # Keep the final update apart from the last preview, so the page renders both.
        time.sleep(max(0.0, last_update + update_interval - time.perf_counter()))
        kind, payload = event
        seconds = time.perf_counter() - start
        if kind == "error":
            raise payload
        if kind == "stopped":
            update = _preview_update(last_preview, grid, callback) if last_preview else GenerationUpdate(0, grid**2)
            update = dataclasses.replace(update, num_sampled=payload, stopped=True, seconds=seconds)
            yield dataclasses.replace(update, num_calls=callback.num_calls)
            return
        yield GenerationUpdate(
            num_sampled=grid * grid,
            num_tokens=grid * grid,
            images=list(payload),
            image_tokens=callback.image_tokens.view(-1, grid, grid).cpu(),
            finished=True,
            seconds=seconds,
            num_previews=callback.num_previews,
            num_calls=callback.num_calls,
        )
    finally:
        stop_event.set()
        worker.join()


def _preview_update(preview: Preview, grid: int, callback: TokenPreviewCallback) -> GenerationUpdate:
    pixels = mask_unsampled(preview.pixels, preview.num_sampled, grid)
    return GenerationUpdate(
        num_sampled=preview.num_sampled,
        num_tokens=preview.num_tokens,
        images=[PIL.Image.fromarray(image) for image in pixels],
        num_previews=callback.num_previews,
        num_calls=preview.num_calls,
    )


def save_downloads(folder: Path, request: GenerationRequest, images: list, image_tokens: torch.LongTensor) -> list:
    """Write the images as PNGs and their token ids as JSON into `folder`; returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    label = "unconditional" if request.class_id is None else f"class{request.class_id}"
    stem = f"{request.file_prefix}_{label}_seed"
    paths = []
    for index, image in enumerate(images):
        path = folder / f"{stem}{request.seed + index}.png"
        image.save(path)
        paths.append(path)
    tokens_path = folder / f"{stem}{request.seed}_tokens.json"
    record = {
        **request.settings(),
        "decode": "pipe.vqgan.decode_tokens(torch.tensor(record['image_tokens']))",
        "image_tokens": image_tokens.tolist(),
    }
    tokens_path.write_text(json.dumps(record) + "\n")
    return [*paths, tokens_path]
