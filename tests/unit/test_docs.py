"""The docs tell the truth about the tree: every relative link and anchor resolves, the
README's code map names every module, and nothing cites a document the repository lacks."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.conftest import ROOT

DOCS = [ROOT / "README.md", ROOT / "examples" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"```.*?```", re.DOTALL)


def prose(path: Path) -> str:
    """A Markdown file without its code blocks (a `#` there is a comment, not a heading)."""
    return _FENCE.sub("", path.read_text())


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = prose(path)
    headings = {slug(m[1]) for m in re.finditer(r"^#+ (.*)$", text, re.MULTILINE)}
    return headings | set(re.findall(r'<a id="([^"]+)"', text))


def broken_links(doc: Path) -> list[str]:
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", prose(doc)):
        if re.match(r"[a-z]+:", target):  # https:, mailto: ...
            continue
        name, _, anchor = target.partition("#")
        path = (doc.parent / name).resolve() if name else doc
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target}: no such heading")
    return broken


def test_every_relative_link_in_the_docs_names_a_file_and_heading_that_exist() -> None:
    assert {doc.name: broken_links(doc) for doc in DOCS} == {doc.name: [] for doc in DOCS}


def code_map() -> set[str]:
    """The paths the README's code map names, rebuilt from its indentation (two spaces a level)."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## The code") :]
    block = section[section.index("```") + 3 :]
    block = block[: block.index("```")]
    named: set[str] = set()
    stack: list[str] = []
    for line in block.splitlines():
        match = re.match(r"( *)(\S+)", line)
        if match is None:
            continue
        stack = [*stack[: len(match[1]) // 2], match[2]]
        if match[2].endswith(".py"):
            named.add("".join(stack))
    return named


def _only_docstring(path: Path) -> bool:
    """A package's `__init__.py` holding nothing but the docstring that says what it owns."""
    body = ast.parse(path.read_text()).body
    return all(isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) for node in body)


def test_the_readme_code_map_names_every_module_and_no_other() -> None:
    modules = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "jobico").rglob("*.py")
        if path.name != "__init__.py" or not _only_docstring(path)  # package markers aside
    }
    assert code_map() == modules


# Spelled in pieces so that this file does not cite them itself.
_OUTSIDE = ("DESIGN" + " §", "DESIGN" + ".md", "../" + "shared")
_TEXT = {".py", ".md", ".c", ".zig", ".rs", ".wat", ".yaml", ".yml", ".sh", ".toml", ""}


def test_no_file_cites_a_document_outside_the_repository() -> None:
    places = [ROOT / "README.md", ROOT / "Makefile", ROOT / "pyproject.toml"]
    for folder in ("jobico", "tests", "benchmarks", "scripts", "examples", "docs", "cluster"):
        places += [p for p in (ROOT / folder).rglob("*") if p.is_file() and p.suffix in _TEXT]
    citing = sorted(
        str(path.relative_to(ROOT))
        for path in places
        if any(name in path.read_text(errors="replace") for name in _OUTSIDE)
    )
    assert citing == []
