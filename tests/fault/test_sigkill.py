"""Nothing acknowledged is lost, and no event overtakes an earlier one of its ordering key,
when any part of the platform is killed with SIGKILL.

Each trial posts numbered events while it kills a queue actor, an executor, the listener
replica, the whole Ray process tree, every Ray process but the embedded Ray's daemon and Serve's
HAProxy (as an OOM kill may leave them), or Ray's GCS or raylet alone (after these four, `jobico
up` again on the same JOBICO_HOME), then checks every answer against the records.
benchmarks/faults.py runs many more trials.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from jobico.localnode import quiet_port
from tests.conftest import wait_for
from tests.fault.faults import RESTARTS, Trial, trial
from tests.platform import Jobico, platform_env

pytestmark = pytest.mark.fault

# Trials per kind: 24 in all. Those that restart Ray take 20-30 s each: the tree kind runs 3,
# and Ray's core processes dying under its daemon 2 of each kind (they share the restart path).
TRIALS = {"queue": 5, "executor": 5, "listener": 5, "tree": 3, "core": 2, "gcs": 2, "raylet": 2}


def _cases(restarts: bool) -> list[tuple[str, int]]:
    return [(k, n) for k, t in TRIALS.items() for n in range(t) if (k in RESTARTS) == restarts]


def _platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jobico]:
    home = tmp_path_factory.mktemp("jobico-fault")
    # A short lease: a killed executor's batch comes back in seconds, not half a minute. The
    # listener's port lies below the ephemeral range: while a restart has no listener, one of
    # the new Ray's many connections could otherwise take it as its source port.
    env = {"JOBICO_LEASE_TIMEOUT_MS": "5000", "JOBICO_PORT": str(quiet_port())}
    cli = Jobico({**platform_env(home), **env}, home)
    cli("up")
    yield cli
    cli("down", check=False)


def _judge(kind: str, result: Trial) -> None:
    print(f"{kind}: {result.accepted} accepted, 202 again after {result.recovery_s:.2f} s")
    assert result.accepted >= 100
    assert result.lost == [], f"acknowledged but never run: {result.lost[:5]}"
    assert result.refused_but_run == [], f"refused yet run: {result.refused_but_run[:5]}"
    assert result.overtaken == [], f"ran before an earlier event of its key: {result.overtaken[:5]}"
    assert result.duplicate_finals == 0, "an event has more than one final record"
    if kind == "queue":
        assert result.recovery_s < 5, f"new events accepted only after {result.recovery_s:.1f} s"
    if kind in RESTARTS:
        # `jobico up` kills the dead Ray's leftovers first, starts the new one while it loads
        # Ray, and deploys the listener while the actors it calls start (docs/performance.md).
        assert result.recovery_s < 30, f"202 again only after {result.recovery_s:.1f} s"


class TestInPlace:
    """One process killed; Ray restarts it in place."""

    @pytest.fixture(scope="class")
    def jobico(self, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jobico]:
        yield from _platform(tmp_path_factory)

    @pytest.mark.parametrize(("kind", "n"), _cases(False), ids=lambda v: str(v))
    def test_every_acknowledged_event_gets_one_final_record_after_a_sigkill(
        self, jobico: Jobico, kind: str, n: int, tmp_path: Path
    ) -> None:
        _judge(kind, trial(jobico, kind, tmp_path, wait_for))


class TestRestarted:
    """Ray itself killed, then `jobico up`. A platform of its own: after a restart every
    tenant's queue actor starts at once (a process each), so how soon the listener answers
    again depends on how many tenants the earlier trials left."""

    @pytest.fixture(scope="class")
    def jobico(self, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jobico]:
        yield from _platform(tmp_path_factory)

    @pytest.mark.parametrize(("kind", "n"), _cases(True), ids=lambda v: str(v))
    def test_every_acknowledged_event_gets_one_final_record_after_a_sigkill(
        self, jobico: Jobico, kind: str, n: int, tmp_path: Path
    ) -> None:
        _judge(kind, trial(jobico, kind, tmp_path, wait_for))
