# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""Check that every intended copy in the package still equals its original (transformers' `utils/check_copies.py`).

Each model folder ships alone as Hub remote code, so a function both models need is written in both folders. The copy
carries a marker on the line above it, naming its original by its import path, with optional renames:

    # Copied from vit_vqgan_hf.models.vim.modeling_vim.eager_attention_forward
    def eager_attention_forward(...):

    # Copied from vit_vqgan_hf.models.vim.modeling_vim.VimMLP with Vim->VitVqgan
    class VitVqganMLP(nn.Module):

The check compares the copy (function, class or method, with its decorators) with the original after the renames,
prints a diff for each copy that drifted and exits with status 1; `--fix` writes the originals over the copies.
`make lint` runs it, and tests/scripts/test_check_copies.py.

    python scripts/check_copies.py [--fix] [--root src]
"""

import argparse
import ast
import difflib
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from vit_vqgan_hf.utils.errors import command_line_errors


PACKAGE = "vit_vqgan_hf"
SOURCE_ROOT = Path(__file__).resolve().parents[1] / "src"
MARKER = re.compile(rf"^(?P<indent>\s*)# Copied from (?P<target>{PACKAGE}(?:\.\w+)+)(?: with (?P<renames>.+))?\s*$")


@dataclass
class Copy:
    path: Path
    marker_line: int  # 1-based
    target: str
    renames: list[tuple[str, str]]
    start: int  # 1-based first line of the copy (its first decorator, or its def/class line)
    end: int  # 1-based last line


def parse_renames(text: str | None, where: str) -> list[tuple[str, str]]:
    """`A->B, C->D` as [(A, B), (C, D)]."""
    if not text:
        return []
    renames = []
    for item in text.split(","):
        old, arrow, new = item.strip().partition("->")
        if not arrow or not old or not new:
            raise ValueError(f"{where}: the renames of a `# Copied from` marker are `Old->New, ...`, got {text!r}.")
        renames.append((old, new))
    return renames


def definitions(tree: ast.AST):
    """Every function and class of a module, nested ones included, with its dotted name inside the module."""
    stack = [(node, node.name) for node in getattr(tree, "body", []) if hasattr(node, "name")]
    while stack:
        node, name = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield name, node
            stack.extend((child, f"{name}.{child.name}") for child in node.body if hasattr(child, "name"))


def span(node: ast.AST) -> tuple[int, int]:
    """First line (its first decorator's) and last line of a definition."""
    start = min([node.lineno] + [decorator.lineno for decorator in getattr(node, "decorator_list", [])])
    return start, node.end_lineno


def find_copies(root: Path) -> list[Copy]:
    copies = []
    for path in sorted((root / PACKAGE).rglob("*.py")):
        lines = path.read_text().splitlines()
        markers = [(number, MARKER.match(line)) for number, line in enumerate(lines, start=1)]
        markers = [(number, match) for number, match in markers if match]
        if not markers:
            continue
        starts = {span(node)[0]: node for _, node in definitions(ast.parse("\n".join(lines)))}
        for number, match in markers:
            where = f"{path.relative_to(root)}:{number}"
            node = starts.get(number + 1)
            if node is None:
                raise ValueError(f"{where}: a `# Copied from` marker must stand on the line above a def or class.")
            start, end = span(node)
            renames = parse_renames(match["renames"], where)
            copies.append(Copy(path, number, match["target"], renames, start, end))
    return copies


def original_source(root: Path, target: str, where: str) -> str:
    """The dedented source of `target` (`vit_vqgan_hf.<module path>.<name>[.<name>]`)."""
    parts = target.split(".")
    for split in range(len(parts) - 1, 0, -1):
        path = root.joinpath(*parts[:split]).with_suffix(".py")
        if path.is_file():
            name = ".".join(parts[split:])
            break
    else:
        raise ValueError(f"{where}: no module of {target!r} under {root}.")
    lines = path.read_text().splitlines()
    nodes = dict(definitions(ast.parse("\n".join(lines))))
    if name not in nodes:
        raise ValueError(f"{where}: {path.relative_to(root)} has no function or class {name!r}.")
    start, end = span(nodes[name])
    return textwrap.dedent("\n".join(lines[start - 1 : end]))


def expected_copy(root: Path, copy: Copy) -> str:
    source = original_source(root, copy.target, f"{copy.path.relative_to(root)}:{copy.marker_line}")
    for old, new in copy.renames:
        source = source.replace(old, new)
    return source


def check(root: Path, fix: bool = False) -> list[str]:
    """The diffs of the copies under `root` that differ from their originals (written over them with `fix`)."""
    problems = []
    # Last copy of a file first, so that a fixed copy of another length leaves the line numbers of the others right.
    for copy in sorted(find_copies(root), key=lambda copy: (copy.path, -copy.start)):
        lines = copy.path.read_text().splitlines()
        indent = re.match(r"\s*", lines[copy.start - 1]).group()
        actual = textwrap.dedent("\n".join(lines[copy.start - 1 : copy.end]))
        expected = expected_copy(root, copy)
        if actual == expected:
            continue
        name = f"{copy.path.relative_to(root)}:{copy.start}"
        diff = difflib.unified_diff(
            expected.splitlines(), actual.splitlines(), f"{copy.target} (original)", f"{name} (copy)", lineterm=""
        )
        problems.append(f"{name} differs from {copy.target}:\n" + "\n".join(diff))
        if fix:
            lines[copy.start - 1 : copy.end] = textwrap.indent(expected, indent).splitlines()
            copy.path.write_text("\n".join(lines) + "\n")
    return problems


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Check that the `# Copied from` copies equal their originals.")
    parser.add_argument("--fix", action="store_true", help="Write each original over its drifted copy.")
    parser.add_argument("--root", type=Path, default=SOURCE_ROOT, help="Folder holding the package (default: src).")
    return parser.parse_args(argv)


def main(args) -> int:
    problems = check(args.root, fix=args.fix)
    for problem in problems:
        print(problem)
    if problems and not args.fix:
        print(
            f"{len(problems)} copies differ from their originals; `python scripts/check_copies.py --fix` rewrites them."
        )
        return 1
    if problems:
        print(f"Rewrote {len(problems)} copies from their originals.")
    return 0


if __name__ == "__main__":
    with command_line_errors():
        sys.exit(main(parse_args()))
