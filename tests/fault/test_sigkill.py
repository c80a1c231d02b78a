"""Nothing acknowledged is lost, and no event overtakes an earlier one of its ordering key,
when any part of the platform is killed with SIGKILL.

Each trial posts numbered events while it kills a queue actor, an executor, the listener
replica or the whole Ray process tree (then `jobico up` again on the same JOBICO_HOME), then
checks every answer against the records. benchmarks/faults.py runs many more trials.
"""

from __future__ import annotations

import pytest

from tests.conftest import wait_for
from tests.fault.faults import trial
from tests.platform import Jobico, platform_env

pytestmark = pytest.mark.fault

KINDS = ["queue", "executor", "listener", "tree"]
TRIALS = 5  # per kind: 20 in all


@pytest.fixture(scope="module")
def jobico(tmp_path_factory):
    home = tmp_path_factory.mktemp("jobico-fault")
    # A short lease: a killed executor's batch comes back in seconds, not half a minute.
    cli = Jobico({**platform_env(home), "JOBICO_LEASE_TIMEOUT_MS": "5000"}, home)
    cli("up")
    yield cli
    cli("down", check=False)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n", range(TRIALS))
def test_every_acknowledged_event_gets_one_final_record_after_a_sigkill(jobico, kind, n, tmp_path):
    result = trial(jobico, kind, tmp_path, wait_for)
    assert result.accepted >= 100
    assert result.lost == [], f"acknowledged but never run: {result.lost[:5]}"
    assert result.refused_but_run == [], f"refused yet run: {result.refused_but_run[:5]}"
    assert result.overtaken == [], f"ran before an earlier event of its key: {result.overtaken[:5]}"
    assert result.duplicate_finals == 0, "an event has more than one final record"
    if kind == "queue":
        assert result.recovery_s < 5, f"new events accepted only after {result.recovery_s:.1f} s"
