"""The docstrings are the user's contract: documented defaults are the signature's; configs document every field."""

import ast
import dataclasses
import inspect
import re

import PIL.Image
import pytest

import vit_vqgan_hf
from vit_vqgan_hf import cli, evaluation, hub, training, utils
from vit_vqgan_hf.models import vit_vqgan
from vit_vqgan_hf.training import checkpointing, data, image_decoding, loop, tokens


# `name (`type`, *optional*, defaults to X):` — an argument entry of an HF-format `Args:` section.
ARGUMENT_ENTRY = re.compile(r"^\s+(\w+) \((.+)\):\s*$", re.MULTILINE)
DOCUMENTED_DEFAULT = re.compile(r"defaults to (.+)$")
NO_DEFAULT = inspect.Parameter.empty


def public_objects():
    # `training`'s script helpers are not re-exported by the package: their modules are listed one by one.
    modules = (vit_vqgan_hf, vit_vqgan, training, checkpointing, data, image_decoding, loop, tokens)
    for module in (*modules, evaluation, hub, cli, utils):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                yield f"{module.__name__}.{name}", obj


def signature_defaults(function) -> dict:
    """Parameter name -> default (`NO_DEFAULT` when required); a dataclass field's factory is called."""
    defaults = {name: parameter.default for name, parameter in inspect.signature(function).parameters.items()}
    if inspect.isclass(function) and dataclasses.is_dataclass(function):
        for field in dataclasses.fields(function):
            if field.default_factory is not dataclasses.MISSING:
                defaults[field.name] = field.default_factory()
    return defaults


def documented_callables():
    """(qualified name, docstring, signature defaults) of every public function, class and method."""
    for qualname, obj in public_objects():
        if inspect.isfunction(obj):
            yield qualname, obj.__doc__, signature_defaults(obj)
            continue
        if dataclasses.is_dataclass(obj) or "__init__" in vars(obj):
            yield qualname, obj.__doc__, signature_defaults(obj)
        for name, member in vars(obj).items():
            function = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
            if inspect.isfunction(function) and (not name.startswith("_") or name == "__call__"):
                yield f"{qualname}.{name}", function.__doc__, signature_defaults(function)


def documented_arguments(docstring: str | None) -> dict[str, str]:
    """Argument name -> the text in parentheses, from the docstring's `Args:` section."""
    if not docstring or "Args:" not in docstring:
        return {}
    arguments = docstring.split("Args:", 1)[1]
    arguments = re.split(r"^\s+(?:Returns|Raises|Example|Examples):\s*$", arguments, flags=re.MULTILINE)[0]
    return {match.group(1): match.group(2) for match in ARGUMENT_ENTRY.finditer(arguments)}


CASES = [case for case in documented_callables() if documented_arguments(case[1])]


def documented_value(text: str):
    """A documented default as a value: a literal, arithmetic such as `(3 / 4, 4 / 3)`, or a PIL constant."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        # Our own docstrings, evaluated without builtins: a name other than PIL's raises NameError (symbolic).
        return eval(compile(text, "<docstring default>", "eval"), {"__builtins__": {}, "PIL": PIL})


@pytest.mark.parametrize(("qualname", "docstring", "defaults"), CASES, ids=[case[0] for case in CASES])
def test_documented_defaults_are_the_signature_defaults(qualname, docstring, defaults):
    for name, description in documented_arguments(docstring).items():
        if name not in defaults:
            continue  # e.g. `**kwargs` documented by name, or a field of a returned output
        documented = DOCUMENTED_DEFAULT.search(description)
        actual = defaults[name]
        if documented is None:
            continue
        text = documented.group(1).strip()
        if text.startswith("`") and text.endswith("`"):
            text = text[1:-1]
        try:
            value = documented_value(text)
        except (ValueError, SyntaxError, NameError, AttributeError, TypeError):
            # A symbolic default ("`config.use_cache`", "the tokenizer's"): the signature must leave it to the code.
            assert actual is None or actual is NO_DEFAULT, (
                f"{qualname}({name}): documented {text!r}, actual {actual!r}"
            )
            continue
        if isinstance(actual, tuple) and isinstance(value, list):
            value = tuple(value)
        assert value == actual and isinstance(actual, bool) == isinstance(value, bool), (
            f"{qualname}({name}): documented default {text!r}, signature default {actual!r}"
        )


CONFIGS = [(qualname, obj) for qualname, obj in public_objects() if qualname.endswith("Config")]


@pytest.mark.parametrize(("qualname", "config_class"), CONFIGS, ids=[case[0] for case in CONFIGS])
def test_every_config_field_is_documented(qualname, config_class):
    # The config is the only home of hyperparameters: each of its own fields says what it is and why.
    own_fields = set(vars(config_class).get("__annotations__", {}))
    documented = documented_arguments(config_class.__doc__)
    undocumented = sorted(name for name in own_fields - set(documented) if not name.startswith("_"))
    assert not undocumented, f"{qualname} does not document {undocumented}"
    for name in own_fields & set(documented):
        assert "defaults to" in documented[name], f"{qualname}.{name}: no documented default"
