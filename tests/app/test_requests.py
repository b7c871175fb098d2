"""The Generate tab's request checks: class names, limits and sampling settings, with the page's messages."""

import pytest
from vim_app.errors import RequestError
from vim_app.generation import UNCONDITIONAL, check_request, class_choices, guidance_unavailable_reason

from vit_vqgan_hf import VimPipeline


@pytest.fixture(scope="module")
def pipe(tiny_models):
    return VimPipeline.from_pretrained(tiny_models.pipeline)


def check(pipe, class_name="square", num_images=2, seed=0, guidance=1.0, temperature=1.0, top_k=0, top_p=1.0):
    return check_request(pipe, class_name, num_images, seed, guidance, temperature, top_k, top_p, max_images=4)


def test_class_picker_lists_id2label_then_unconditional(pipe):
    assert class_choices(pipe) == ["circle", "square", "triangle", UNCONDITIONAL]


@pytest.mark.parametrize(
    ("class_name", "class_id"), [("square", 1), (" Triangle ", 2), ("0", 0), (UNCONDITIONAL, None)]
)
def test_class_by_name_case_insensitive_id_or_unconditional(pipe, class_name, class_id):
    assert check(pipe, class_name).class_id == class_id


def test_request_maps_to_pipeline_arguments(pipe):
    request = check(pipe, "triangle", num_images=3, seed=7, guidance=2.5, temperature=0.5, top_k=5, top_p=0.9)
    kwargs = request.pipeline_kwargs()
    assert kwargs["class_labels"] == [2] and kwargs["num_images_per_label"] == 3
    assert (kwargs["guidance_scale"], kwargs["temperature"], kwargs["top_k"], kwargs["top_p"]) == (2.5, 0.5, 5, 0.9)
    assert [generator.initial_seed() for generator in kwargs["generator"]] == [7, 8, 9]
    off = check(pipe).pipeline_kwargs()
    assert off["top_k"] is None and off["top_p"] is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"class_name": "sqare"}, "Unknown class name 'sqare'. Did you mean one of ['square']?"),
        ({"class_name": ""}, "Pick a class"),
        ({"num_images": 5}, "At most 4 images per request (the app's --max_images), got 5"),
        ({"num_images": 0}, "from 1 to 4"),
        ({"num_images": 1.5}, "from 1 to 4"),
        ({"seed": -1}, "The seed must be a whole number from 0"),
        ({"temperature": 0}, "The temperature must be above 0"),
        ({"top_p": 0}, "Top-p must be in (0, 1]"),
        ({"top_k": -2}, "Top-k must be a whole number at least 0"),
        ({"class_name": UNCONDITIONAL, "guidance": 2.0}, "Guidance steers towards a class"),
        ({"guidance": 0.5}, "Guidance must be at least 1"),
    ],
)
def test_bad_requests_get_a_message(pipe, overrides, message):
    with pytest.raises(RequestError) as error:
        check(pipe, **overrides)
    assert message in str(error.value)


def test_without_label_dropout_no_guidance_and_no_unconditional(pipe):
    transformer = pipe.transformer.__class__(pipe.transformer.config.__class__(**{
        **pipe.transformer.config.to_dict(), "class_dropout_prob": 0.0}))  # fmt: skip
    no_dropout = VimPipeline(vqgan=pipe.vqgan, transformer=transformer.eval())
    assert UNCONDITIONAL not in class_choices(no_dropout)
    assert "trained without label dropout" in guidance_unavailable_reason(no_dropout)
    with pytest.raises(RequestError, match="without label dropout"):
        check(no_dropout, guidance=2.0)
    with pytest.raises(RequestError, match="cannot sample unconditionally"):
        check(no_dropout, UNCONDITIONAL)
    assert guidance_unavailable_reason(pipe) is None
    # A null token fitted after training (`fit_null_token`) gives both back.
    transformer.config.null_token_fitted = True
    fitted = VimPipeline(vqgan=pipe.vqgan, transformer=transformer)
    assert UNCONDITIONAL in class_choices(fitted) and guidance_unavailable_reason(fitted) is None


def test_parallel_decoding_switch(pipe):
    assert check(pipe).pipeline_kwargs()["decoding"] == "sequential"
    request = check_request(pipe, "square", 2, 0, 1.0, 1.0, 0, 1.0, max_images=4, parallel_decoding=True)
    assert request.pipeline_kwargs()["decoding"] == "speculative_jacobi"
    assert request.settings()["decoding"] == "speculative_jacobi"
    with pytest.raises(RequestError, match="Parallel decoding must be true or false"):
        check_request(pipe, "square", 2, 0, 1.0, 1.0, 0, 1.0, max_images=4, parallel_decoding="yes")
