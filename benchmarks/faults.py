"""Many SIGKILL trials against a real platform under load; the fault tier runs 20 of them.

Each trial posts numbered events from four threads, kills one process (a tenant's queue
actor, an executor, the listener replica) or the whole Ray process tree (then `jobico up`),
waits for a final record of every acknowledged event, and counts what went wrong.
Run: .venv/bin/python benchmarks/faults.py [--trials 10]   (trials per kind)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from tests.conftest import wait_for
from tests.fault.faults import trial
from tests.platform import Jobico, platform_env

KINDS = ("queue", "executor", "listener", "tree")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=10, help="trials per kind")
    trials = parser.parse_args().trials
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        jobico = Jobico({**platform_env(home), "JOBICO_LEASE_TIMEOUT_MS": "5000"}, home)
        jobico("up")
        try:
            results = [
                trial(jobico, kind, Path(tmp) / f"{kind}{n}", wait_for)
                for n in range(trials)
                for kind in KINDS
            ]
        finally:
            jobico("down", check=False)
    print(
        f"{'kind':<9} {'trials':>6} {'accepted':>9} {'refused':>8} {'lost':>5} "
        f"{'refused+run':>11} {'overtaken':>9} {'dup finals':>10} {'recovery s (median/max)':>24}"
    )
    for kind in KINDS:
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


if __name__ == "__main__":
    main()
