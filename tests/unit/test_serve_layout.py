"""The listener's package keeps its Ray in one shell: every module of jobico/serve/ but the Serve
deployment (listener.py) is plain, so the unit tier drives the app and the puts without Ray."""

from __future__ import annotations

from tests.conftest import ROOT
from tests.unit.test_layout import ray_imports

SERVE = ROOT / "jobico" / "serve"


def test_only_the_serve_deployment_imports_ray_in_the_listeners_package() -> None:
    found = {path.name: ray_imports(path) for path in sorted(SERVE.glob("*.py"))}
    assert {name for name, where in found.items() if where} == {"listener.py"}
