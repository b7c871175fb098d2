"""The app folder is a Hugging Face Space as it is: its README's front matter, and requirements that install what the
package and the app need (the Space holds a copy of the package, not an install of it)."""

import configparser
import importlib.metadata
import re

import pytest
import yaml

from .conftest import APP_DIR


ROOT = APP_DIR.parents[1]


def front_matter() -> dict:
    text = (APP_DIR / "README.md").read_text()
    match = re.match(r"---\n(.*?)\n---\n", text, re.DOTALL)
    assert match, "examples/app/README.md must start with the Space's front matter"
    return yaml.safe_load(match.group(1))


def requirement_names(lines) -> set[str]:
    names = set()
    for line in lines:
        line = line.split("#")[0].strip()
        if line:
            names.add(re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def test_front_matter_makes_a_gradio_space():
    card = front_matter()
    assert card["sdk"] == "gradio" and (APP_DIR / card["app_file"]).is_file()
    assert len(card["short_description"]) <= 60


def test_space_gradio_is_the_one_the_app_extra_pins_and_tests_run():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    pins = [line for line in config["options.extras_require"]["app"].splitlines() if line.startswith("gradio")]
    assert pins == [f"gradio=={front_matter()['sdk_version']}"]
    try:
        installed = importlib.metadata.version("gradio")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("gradio is not installed")
    assert installed == str(front_matter()["sdk_version"])


def test_requirements_cover_the_package_and_the_app():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    needed = requirement_names(config["options"]["install_requires"].splitlines())
    needed |= requirement_names(config["options.extras_require"]["app"].splitlines()) - {"gradio"}
    listed = requirement_names((APP_DIR / "requirements.txt").read_text().splitlines())
    assert needed <= listed, f"missing from examples/app/requirements.txt: {sorted(needed - listed)}"
    assert "gradio" not in listed  # the Space installs the sdk_version's
