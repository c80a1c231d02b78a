"""Joining Ray takes a bounded time: a GCS port that refuses answers at once, one that never
speaks is given up on after JOBICO_CONNECT_TIMEOUT_S, and both exit 6 naming the address."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from jobico.connecting import join, probe, within
from jobico.errors import NotRunning


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word (a hung GCS)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on (a GCS that was killed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_probe_of_a_port_that_refuses_says_why(closed_port: int) -> None:
    assert "refused" in (probe(f"127.0.0.1:{closed_port}", 2) or "").lower()


def test_a_probe_of_a_listening_port_or_of_a_non_tcp_address_passes(silent_port: int) -> None:
    assert probe(f"127.0.0.1:{silent_port}", 2) is None
    assert probe("auto", 2) is None
    assert probe(None, 2) is None


def test_within_returns_what_the_call_returns_and_raises_what_it_raises() -> None:
    assert within(5, lambda: 42) == 42
    empty: dict[str, int] = {}
    with pytest.raises(KeyError):
        within(5, lambda: empty["missing"])


def test_within_gives_up_on_a_call_that_does_not_return_in_time() -> None:
    release = threading.Event()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        within(0.3, release.wait)
    assert time.monotonic() - started < 2
    release.set()


def test_joining_an_address_that_refuses_names_it_without_calling_init(closed_port: int) -> None:
    calls: list[str] = []
    with pytest.raises(NotRunning, match=f"Ray at 127.0.0.1:{closed_port} does not answer"):
        join(f"127.0.0.1:{closed_port}", 5, lambda: calls.append("init"))
    assert calls == []


def test_joining_gives_up_on_an_init_that_does_not_return_naming_the_setting(
    silent_port: int,
) -> None:
    release = threading.Event()
    with pytest.raises(NotRunning, match=r"within 0.3 s \(JOBICO_CONNECT_TIMEOUT_S\)"):
        join(f"127.0.0.1:{silent_port}", 0.3, release.wait)
    release.set()


@pytest.mark.parametrize("error", [ConnectionError("refused"), RuntimeError("version mismatch")])
def test_an_init_that_fails_to_reach_ray_becomes_not_running_with_its_reason(
    silent_port: int, error: Exception
) -> None:
    def init() -> None:
        raise error

    with pytest.raises(NotRunning, match=f"cannot reach Ray at 127.0.0.1:{silent_port}: {error}"):
        join(f"127.0.0.1:{silent_port}", 5, init)


def test_joining_an_address_that_answers_returns_once_init_has() -> None:
    calls: list[str] = []
    join("auto", 5, lambda: calls.append("init"))
    assert calls == ["init"]


def _jobico(*args: str, timeout_s: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBICO_", "RAY_ADDRESS"))}
    proc = subprocess.run(
        [sys.executable, "-m", "jobico.cli", *args],
        env={**env, "JOBICO_CONNECT_TIMEOUT_S": timeout_s},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc, time.monotonic() - started


def test_a_command_against_a_ray_address_that_refuses_exits_6_at_once(closed_port: int) -> None:
    proc, took = _jobico("status", "--address", f"127.0.0.1:{closed_port}", timeout_s="15")
    assert proc.returncode == 6, proc.stderr
    assert f"Ray at 127.0.0.1:{closed_port} does not answer" in proc.stderr
    assert took < 10  # the import of Ray and the CLI; no wait for the 15 s


def test_a_command_against_a_ray_that_never_answers_exits_6_after_the_connect_timeout(
    silent_port: int,
) -> None:
    proc, took = _jobico("status", "--address", f"127.0.0.1:{silent_port}", timeout_s="2")
    assert proc.returncode == 6, proc.stderr
    assert f"Ray at 127.0.0.1:{silent_port} did not let this process join within 2 s" in (
        proc.stderr
    )
    assert took < 15
