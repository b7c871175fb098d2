# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Expected failures of the command-line tools, reported as argparse reports a bad flag: one `error: <message>` line
and exit status 2, without a traceback. Every script under examples/, scripts/ and benchmarks/ runs its entry point
inside [`command_line_errors`]."""

import contextlib
import os
import sys

from huggingface_hub.utils import httpx


DEBUG_ENVIRONMENT_VARIABLE = "VIT_VQGAN_HF_DEBUG"
DEBUG_FLAG = "--debug"
# Exit status of a refused input, argparse's for a bad flag.
EXIT_STATUS = 2


class InputError(ValueError):
    """
    An input that cannot be used, raised where no more specific built-in error fits (an impossible launch or
    configuration, a model folder that does not load). A `ValueError`, so code that catches the package's input checks
    catches it too.
    """


# What the tools report in one line: the package's input checks (`ValueError`, `InputError`), missing or unreadable
# files and refusals of the Hub (`OSError`: `FileNotFoundError`, PIL's `UnidentifiedImageError`, huggingface_hub's
# `OfflineModeIsEnabled`, ...), and the transport errors of the Hub's HTTP client, which derive from neither. Anything
# else is a bug and keeps its traceback.
EXPECTED_ERRORS = (ValueError, OSError, httpx.HTTPError)


def debug_requested() -> bool:
    """Whether `VIT_VQGAN_HF_DEBUG` is set to a true value (`1`, `true`, `yes`)."""
    return os.environ.get(DEBUG_ENVIRONMENT_VARIABLE, "").strip().lower() in ("1", "true", "yes")


def one_line(error: BaseException) -> str:
    """The message of `error` on one line (its lines joined by spaces), or its type's name when it has none."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return " ".join(lines) if lines else type(error).__name__


@contextlib.contextmanager
def command_line_errors():
    """
    Run a command-line tool's entry point so that an expected failure ([`EXPECTED_ERRORS`]) prints one
    `error: <message>` line on stderr and exits with status 2, while any other exception keeps its traceback.
    `--debug` anywhere on the command line (removed from `sys.argv` before the tool parses it) or
    `VIT_VQGAN_HF_DEBUG=1` shows the traceback of expected failures too.

    Example:

    ```python
    >>> from vit_vqgan_hf.utils.errors import command_line_errors

    >>> if __name__ == "__main__":  # doctest: +SKIP
    ...     with command_line_errors():
    ...         main(parse_args())
    ```
    """
    debug = debug_requested()
    if DEBUG_FLAG in sys.argv[1:]:
        debug = True
        sys.argv[1:] = [argument for argument in sys.argv[1:] if argument != DEBUG_FLAG]
    try:
        yield
    except EXPECTED_ERRORS as error:
        if debug:
            raise
        print(f"error: {one_line(error)}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_STATUS) from None


__all__ = ["DEBUG_ENVIRONMENT_VARIABLE", "EXPECTED_ERRORS", "InputError", "command_line_errors", "debug_requested"]
