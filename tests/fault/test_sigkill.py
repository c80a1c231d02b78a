"""Nothing acknowledged is lost, and no event overtakes an earlier one of its ordering key,
when any part of the platform is killed with SIGKILL.

Each trial posts numbered events while it kills a queue actor, an executor, the listener
replica, the whole Ray process tree, every Ray process but the embedded Ray's daemon and Serve's
HAProxy (as an OOM kill may leave them), or Ray's GCS or raylet alone (after these four, `jobico
up` again on the same JOBICO_HOME), then checks every answer against the records.
benchmarks/faults.py runs many more trials.
"""

from __future__ import annotations

import pytest

from tests.conftest import wait_for
from tests.fault.faults import RESTARTS, trial
from tests.platform import Jobico, platform_env

pytestmark = pytest.mark.fault

# Trials per kind: 26 in all. Ray's core processes dying under its daemon gets fewer: each
# trial restarts the platform (about 20 s), and the tree kind already covers most of that path.
TRIALS = {"queue": 5, "executor": 5, "listener": 5, "tree": 5, "core": 2, "gcs": 2, "raylet": 2}
CASES = [(kind, n) for kind, trials in TRIALS.items() for n in range(trials)]


@pytest.fixture(scope="module")
def jobico(tmp_path_factory):
    home = tmp_path_factory.mktemp("jobico-fault")
    # A short lease: a killed executor's batch comes back in seconds, not half a minute.
    cli = Jobico({**platform_env(home), "JOBICO_LEASE_TIMEOUT_MS": "5000"}, home)
    cli("up")
    yield cli
    cli("down", check=False)


@pytest.mark.parametrize(("kind", "n"), CASES, ids=[f"{kind}-{n}" for kind, n in CASES])
def test_every_acknowledged_event_gets_one_final_record_after_a_sigkill(jobico, kind, n, tmp_path):
    result = trial(jobico, kind, tmp_path, wait_for)
    assert result.accepted >= 100
    assert result.lost == [], f"acknowledged but never run: {result.lost[:5]}"
    assert result.refused_but_run == [], f"refused yet run: {result.refused_but_run[:5]}"
    assert result.overtaken == [], f"ran before an earlier event of its key: {result.overtaken[:5]}"
    assert result.duplicate_finals == 0, "an event has more than one final record"
    if kind == "queue":
        assert result.recovery_s < 5, f"new events accepted only after {result.recovery_s:.1f} s"
    if kind in RESTARTS:
        assert result.recovery_s < 30, f"202 again only after {result.recovery_s:.1f} s"
