"""The package's layers (setup.cfg `[importlinter]`): models <- pipelines <- training, evaluation <- hub <- cli; and the
app (examples/app/vim_app), which needs models, pipelines and evaluation only."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest


REPOSITORY = Path(__file__).resolve().parents[1]
APP_DIR = REPOSITORY / "examples" / "app"
LINT_IMPORTS = shutil.which("lint-imports", path=str(Path(sys.executable).parent))


def lint_imports(source_root: Path, config: Path, app_dir: Path = APP_DIR) -> subprocess.CompletedProcess:
    # grimp finds the packages on sys.path: the copies under test come first.
    environment = {"PYTHONPATH": f"{source_root}:{app_dir}", "PATH": str(Path(sys.executable).parent)}
    command = [LINT_IMPORTS, "--config", str(config), "--no-cache"]
    return subprocess.run(command, capture_output=True, text=True, env=environment, cwd=source_root, timeout=300)


@pytest.mark.skipif(LINT_IMPORTS is None, reason="import-linter is not installed (pip install -e '.[test]')")
def test_the_layers_contract_holds():
    result = lint_imports(REPOSITORY / "src", REPOSITORY / "setup.cfg")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout


@pytest.mark.skipif(LINT_IMPORTS is None, reason="import-linter is not installed (pip install -e '.[test]')")
@pytest.mark.parametrize(
    "module, upward_import, contract",
    [
        ("models/vit_vqgan/modeling_vit_vqgan.py", "from ...training import losses", "One way down"),
        ("pipelines/vim/pipeline_vim.py", "from ...evaluation import results", "One way down"),
        ("evaluation/evaluators.py", "from ..training import losses", "One way down"),
        ("training/data.py", "from ..cli import load_pretrained", "One way down"),
        ("models/vim/modeling_vim.py", "from ..vit_vqgan import configuration_vit_vqgan", "stands alone"),
        ("pipelines/vim/pipeline_vim.py", "import accelerate", "no training frameworks"),
    ],
)
def test_the_contract_catches_an_upward_import(tmp_path, module, upward_import, contract):
    # A function-local import counts too: the lazy imports that once closed cycles were of that kind.
    shutil.copytree(REPOSITORY / "src" / "vit_vqgan_hf", tmp_path / "vit_vqgan_hf")
    with open(tmp_path / "vit_vqgan_hf" / module, "a") as file:
        file.write(f"\n\ndef _upward():\n    {upward_import}\n")
    result = lint_imports(tmp_path, REPOSITORY / "setup.cfg")
    assert result.returncode != 0
    broken = [line for line in result.stdout.splitlines() if line.endswith("BROKEN")]
    assert len(broken) == 1 and contract in broken[0], result.stdout


@pytest.mark.skipif(LINT_IMPORTS is None, reason="import-linter is not installed (pip install -e '.[test]')")
@pytest.mark.parametrize(
    "module, forbidden_import",
    [
        ("loading.py", "from vit_vqgan_hf.cli import check_device"),
        ("tokenizer_view.py", "from vit_vqgan_hf.training import losses"),
        ("generation.py", "import accelerate"),
    ],
)
def test_the_app_contract_catches_a_training_or_command_line_import(tmp_path, module, forbidden_import):
    shutil.copytree(APP_DIR / "vim_app", tmp_path / "vim_app")
    with open(tmp_path / "vim_app" / module, "a") as file:
        file.write(f"\n\ndef _forbidden():\n    {forbidden_import}\n")
    result = lint_imports(REPOSITORY / "src", REPOSITORY / "setup.cfg", app_dir=tmp_path)
    assert result.returncode != 0
    broken = [line for line in result.stdout.splitlines() if line.endswith("BROKEN")]
    assert len(broken) == 1 and "The app needs models, pipelines and evaluation only" in broken[0], result.stdout


def test_importing_the_package_loads_models_and_pipelines_only():
    code = "import sys, vit_vqgan_hf; print(sorted(name for name in sys.modules if name.startswith('vit_vqgan_hf.')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    layers = {name.split(".")[1] for name in eval(loaded)}
    assert layers == {"models", "pipelines"}
