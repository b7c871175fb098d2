# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""The app's two kinds of refusal, each with the message the page shows."""

from vit_vqgan_hf.utils.errors import InputError


class LoadError(InputError):
    """A model folder or Hub id that could not be loaded; the message says what was expected and what to do. An
    expected failure: the command line reports it in one `error:` line (`command_line_errors`)."""


class RequestError(ValueError):
    """A request the app refuses (a bad upload, an unknown class, too many images, ...)."""
