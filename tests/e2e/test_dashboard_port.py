"""`jobico up --dashboard-port` moves the embedded Ray's dashboard, as `--port` moves the
listener, and `up` prints where each answers."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import wait_for
from tests.platform import Jobico, free_port, platform_env


def test_up_puts_the_dashboard_on_the_port_it_is_given_and_prints_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    dashboard = free_port()
    cli = Jobico({**platform_env(home), "JOBICO_DASHBOARD": "1"}, home)
    try:
        out = cli("up", "--dashboard-port", str(dashboard), "--no-listener").stdout
        assert f"dashboard: http://127.0.0.1:{dashboard}" in out
        wait_for(lambda: _answers(f"http://127.0.0.1:{dashboard}"), what="the dashboard to answer")
    finally:
        cli("down", check=False)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False
