"""What README.md and docs/*.md name exists: every `connector ...` command (looked up in click's
command tree) and every file path of the repository (in code and in links)."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from connector.cli import cli

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# paths the docs show as the reader's own files, not the repository's
ILLUSTRATIONS = {
    "recipes/cal.yaml": "docs/connections.md: validate's output for a reader's recipe",
    "plugins/shout.py": "docs/plugins.md: the drop-in plugin the reader saves",
    "plugins/broken.py": "docs/plugins.md: a reader's plugin that fails to load",
}

FENCE = re.compile(r"```[^\n]*\n(.*?)```", re.S)
SPAN = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\]\(([^)\s]+)\)")
PATH = re.compile(
    r"(?<![\w./-])((?:\.ci|connector|docs|recipes|schemas|tests|plugins|bench)/[\w./-]*)"
)
# `connector WORD [WORD]`, words possibly alternatives (`list\|show`); not `from connector import`
COMMAND = re.compile(
    r"(?<!from )(?:^|(?<=[\s`(;&\"'|]))(?:\.venv/bin/)?connector(?! +import\b)"
    r"((?: +[a-z][\w-]*(?:\\?\|[a-z][\w-]*)*){1,2})",
    re.M,
)


def _code(text: str) -> list[str]:
    """The fenced blocks and the inline code spans of a Markdown text."""
    return [*FENCE.findall(text), *SPAN.findall(FENCE.sub("", text))]


def _placeholder(path: str) -> bool:
    """``recipes/NAME.yaml``, ``recipes/X.yaml``, ``tests/*.yaml``: a pattern, not a file."""
    return bool(re.search(r"\b[A-Z][A-Z_]*\b|\*|\{|<|\.\.\.", path))


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"\\?\|", text) if w]


def _doc_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("doc", DOCS, ids=_doc_id)
def test_every_command_the_docs_name_exists(doc: Path) -> None:
    ctx = click.Context(cli)
    missing = []
    found = 0
    for code in _code(doc.read_text(encoding="utf-8")):
        for match in COMMAND.finditer(code):
            first, *rest = match.group(1).split()
            for name in _words(first):
                command = cli.get_command(ctx, name)
                found += 1
                if command is None:
                    missing.append(f"connector {name}")
                    continue
                if isinstance(command, click.Group) and rest:
                    for sub in _words(rest[0]):
                        if command.get_command(ctx, sub) is None:
                            missing.append(f"connector {name} {sub}")
    assert missing == []
    if doc.name in ("README.md", "running.md", "testing.md"):
        assert found > 5  # the pattern finds what it is for


@pytest.mark.parametrize("doc", DOCS, ids=_doc_id)
def test_every_repository_path_the_docs_name_exists(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    missing = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        if not (doc.parent / target.split("#", 1)[0]).exists():
            missing.append(f"link {target}")
    for code in _code(text):
        for path in PATH.findall(code):
            path = path.rstrip(".")
            if _placeholder(path) or path in ILLUSTRATIONS:
                continue
            if not (ROOT / path).exists():
                missing.append(path)
    assert missing == []


def test_the_checks_catch_what_they_are_for() -> None:
    ctx = click.Context(cli)
    text = "run `connector catalog shwo X` or `connector nosuch`; see `docs/nosuch.md`"
    commands = [m.group(1).split() for code in _code(text) for m in COMMAND.finditer(code)]
    assert commands == [["catalog", "shwo", "X"][:2], ["nosuch"]]
    catalog = cli.get_command(ctx, "catalog")
    assert isinstance(catalog, click.Group) and catalog.get_command(ctx, "shwo") is None
    assert cli.get_command(ctx, "nosuch") is None
    assert [p for code in _code(text) for p in PATH.findall(code)] == ["docs/nosuch.md"]
    assert not (ROOT / "docs/nosuch.md").exists()
