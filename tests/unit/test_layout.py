"""The tree keeps its shape: Ray is imported only by the shells (jobico/actors/, jobico/serve/),
so every other module stays a plain core that a unit test drives without a cluster."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

SHELLS = ("jobico/actors/", "jobico/serve/")


def ray_imports(path: Path) -> list[str]:
    """`module:line` of each import of Ray (or one of its packages) in a file."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [f"{name}:{node.lineno}" for name in names if name.split(".")[0] == "ray"]
    return found


def test_no_module_outside_the_ray_shells_imports_ray() -> None:
    plain = [
        path
        for path in sorted((ROOT / "jobico").rglob("*.py"))
        if not str(path.relative_to(ROOT)).startswith(SHELLS)
    ]
    found = {str(p.relative_to(ROOT)): ray_imports(p) for p in plain}
    assert {name: where for name, where in found.items() if where} == {}


def test_the_ray_check_sees_every_form_of_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nimport ray\nfrom ray import serve\nimport ray.exceptions as e\n")
    assert ray_imports(sample) == ["ray:2", "ray:3", "ray.exceptions:4"]
