"""scripts/check_copies.py: the `# Copied from` copies equal their originals, and an edited copy (or original) fails."""

import shutil
from pathlib import Path

import pytest

from tests.testing_utils import REPO_ROOT, load_script


check_copies = load_script(REPO_ROOT / "scripts" / "check_copies.py")
SOURCE_ROOT = REPO_ROOT / "src"
ATTENTION_COPY = Path("vit_vqgan_hf/models/vit_vqgan/modeling_vit_vqgan.py")
ATTENTION_ORIGINAL = Path("vit_vqgan_hf/models/vim/modeling_vim.py")


@pytest.fixture
def source_copy(tmp_path) -> Path:
    shutil.copytree(SOURCE_ROOT / "vit_vqgan_hf", tmp_path / "vit_vqgan_hf", ignore=shutil.ignore_patterns("*.pyc"))
    return tmp_path


def edit_function(path: Path, name: str, old: str, new: str):
    """Replace `old` by `new` inside the function `name` of `path` only."""
    text = path.read_text()
    start = text.index(f"\ndef {name}(")
    end = text.index("\n\n\n", start)
    assert old in text[start:end]
    path.write_text(text[:start] + text[start:end].replace(old, new) + text[end:])


def test_the_copies_of_the_package_equal_their_originals():
    targets = {copy.target for copy in check_copies.find_copies(SOURCE_ROOT)}
    assert {
        "vit_vqgan_hf.models.vim.modeling_vim.eager_attention_forward",
        "vit_vqgan_hf.models.vit_vqgan.configuration_vit_vqgan.check_preset_overrides",
    } <= targets
    assert check_copies.check(SOURCE_ROOT) == []
    assert check_copies.main(check_copies.parse_args([])) == 0


@pytest.mark.parametrize("edited", [ATTENTION_COPY, ATTENTION_ORIGINAL], ids=["copy", "original"])
def test_an_edit_on_either_side_fails_until_fixed(source_copy, capsys, edited):
    edit_function(source_copy / edited, "eager_attention_forward", "dim=-1", "dim=-2")
    problems = check_copies.check(source_copy)
    assert len(problems) == 1
    assert problems[0].startswith(f"{ATTENTION_COPY}:")
    assert "differs from vit_vqgan_hf.models.vim.modeling_vim.eager_attention_forward" in problems[0]
    assert "dim=-2" in problems[0]
    assert check_copies.main(check_copies.parse_args(["--root", str(source_copy)])) == 1
    assert "1 copies differ from their originals" in capsys.readouterr().out

    # --fix writes the original over the copy.
    assert check_copies.main(check_copies.parse_args(["--root", str(source_copy), "--fix"])) == 0
    assert check_copies.check(source_copy) == []
    fixed = (source_copy / ATTENTION_COPY).read_text()
    assert ("dim=-2" in fixed) == (edited == ATTENTION_ORIGINAL)


def test_renames_and_bad_markers(tmp_path):
    package = tmp_path / "vit_vqgan_hf"
    package.mkdir()
    (package / "first.py").write_text(
        "class FirstMLP:\n    def forward(self, first_input):\n        return first_input\n"
    )
    copy = "# Copied from vit_vqgan_hf.first.FirstMLP with First->Second, first->second\nclass SecondMLP:\n"
    (package / "second.py").write_text(copy + "    def forward(self, second_input):\n        return second_input\n")
    assert check_copies.check(tmp_path) == []
    (package / "second.py").write_text(copy + "    def forward(self, second_input):\n        return None\n")
    assert len(check_copies.check(tmp_path)) == 1

    (package / "second.py").write_text("# Copied from vit_vqgan_hf.first.NoSuchClass\nclass SecondMLP:\n    pass\n")
    with pytest.raises(ValueError, match=r"second.py:1: vit_vqgan_hf/first.py has no function or class 'NoSuchClass'"):
        check_copies.check(tmp_path)
    (package / "second.py").write_text("# Copied from vit_vqgan_hf.first.FirstMLP\n\nclass SecondMLP:\n    pass\n")
    with pytest.raises(ValueError, match="must stand on the line above a def or class"):
        check_copies.check(tmp_path)
