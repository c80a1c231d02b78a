"""Many SIGKILL trials against a real platform under load; the fault tier runs 24 of them.

Each trial posts numbered events from four threads, kills one process (a tenant's queue
actor, an executor, the listener replica), the whole Ray process tree, every Ray process but
the embedded Ray's daemon and Serve's HAProxy ("core", as an OOM kill may leave them), or Ray's
GCS or raylet alone (after these four, `jobico up` on the same home), waits for a final record
of every acknowledged event, and counts what went wrong. As in the fault tier, the kinds that
restart Ray run on a platform of their own.
Run: .venv/bin/python benchmarks/faults.py [--trials 10] [--kinds gcs,raylet]   (trials per kind)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from jobico.localnode import quiet_port
from tests.conftest import wait_for
from tests.fault.faults import RESTARTS, Trial, trial
from tests.platform import Jobico, platform_env

KINDS = ("queue", "executor", "listener", *RESTARTS)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=10, help="trials per kind")
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated kinds")
    args = parser.parse_args()
    kinds = [k for k in KINDS if k in args.kinds.split(",")]
    in_place = [k for k in kinds if k not in RESTARTS]
    restarts = [k for k in kinds if k in RESTARTS]
    with tempfile.TemporaryDirectory() as tmp:
        results = [
            *_run(Path(tmp) / "in-place", in_place, args.trials),
            *_run(Path(tmp) / "restarted", restarts, args.trials),
        ]
    print(
        f"{'kind':<9} {'trials':>6} {'accepted':>9} {'refused':>8} {'lost':>5} "
        f"{'refused+run':>11} {'overtaken':>9} {'dup finals':>10} {'recovery s (median/max)':>24}"
    )
    for kind in kinds:
        rs = [r for r in results if r.kind == kind]
        recovery = [r.recovery_s for r in rs]
        print(
            f"{kind:<9} {len(rs):>6} {sum(r.accepted for r in rs):>9} "
            f"{sum(r.refused for r in rs):>8} {sum(len(r.lost) for r in rs):>5} "
            f"{sum(len(r.refused_but_run) for r in rs):>11} "
            f"{sum(len(r.overtaken) for r in rs):>9} "
            f"{sum(r.duplicate_finals for r in rs):>10} "
            f"{statistics.median(recovery):>15.2f} / {max(recovery):.2f}"
        )


def _run(folder: Path, kinds: list[str], trials: int) -> list[Trial]:
    """`trials` of each kind, in turns, on one platform of its own under `folder`."""
    if not kinds:
        return []
    home = folder / "home"
    # The listener's port below the ephemeral range, as in the fault tier (tests/fault).
    env = {"JOBICO_LEASE_TIMEOUT_MS": "5000", "JOBICO_PORT": str(quiet_port())}
    jobico = Jobico({**platform_env(home), **env}, home)
    jobico("up")
    try:
        return [
            trial(jobico, kind, folder / f"{kind}{n}", wait_for)
            for n in range(trials)
            for kind in kinds
        ]
    finally:
        jobico("down", check=False)


if __name__ == "__main__":
    main()
