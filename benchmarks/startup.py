"""How long `jobico up` takes on an empty JOBICO_HOME, and one admin command on a running one.

Targets (issue 2): up <= 20 s on 2 cores; an admin command <= 3 s, connecting to Ray included.
Run: .venv/bin/python benchmarks/startup.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def timed(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "jobico.cli", *args], env=env, check=True, capture_output=True
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dashboard", action="store_true", help="start Ray's dashboard too")
    runs = parser.parse_args()
    ups, admins = [], []
    for _ in range(runs.runs):
        with tempfile.TemporaryDirectory() as home:
            env = {
                **os.environ,
                "JOBICO_HOME": home,
                "JOBICO_PORT": "8765",
                "JOBICO_DASHBOARD": "1" if runs.dashboard else "0",
            }
            try:
                ups.append(timed(["up"], env))
                admins += [timed(["packages"], env) for _ in range(3)]
            finally:
                subprocess.run(
                    [sys.executable, "-m", "jobico.cli", "down"], env=env, capture_output=True
                )
    print(f"machine: {os.cpu_count()} cores; dashboard: {runs.dashboard}")
    print(
        f"jobico up, empty JOBICO_HOME: median {statistics.median(ups):.1f} s "
        f"(runs: {', '.join(f'{t:.1f}' for t in ups)})"
    )
    print(
        f"jobico packages (admin command): median {statistics.median(admins):.2f} s "
        f"(max {max(admins):.2f} s over {len(admins)})"
    )


if __name__ == "__main__":
    main()
