"""Hostile requests: a sender of bodies built to make schema checks costly, beside a steady tenant.

Tenant S posts single webhooks (the three-property person schema) one after another; their
round-trip latency is measured alone, then while tenant H posts, one at a time and in turn,
about 1 MB bodies against an array-of-patterns schema: 500,000 wrong-typed items, a string
that makes `^(a+)+$` backtrack, and 250,000 items to match (checked off the loop until the
2 s limit). Target (issue 17): S's p99 beside H at most 2x its p99 alone. Rounds take turns in
one platform session; each round's figures are printed, then the rounds pooled.

Run: .venv/bin/python benchmarks/hostile.py [--requests 300] [--rounds 3]   (about a minute)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

import httpx

from tests.e2e.packages import PERSON, wait_routed, write_package
from tests.e2e.test_hostile_requests import HOSTILE_SCHEMA, Attacker, latencies, p99
from tests.platform import running


def ms(value: float) -> str:
    return f"{value * 1e3:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=300, help="S's webhooks per phase")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, running(Path(tmp) / "home") as (jobico, _):
        hostile, path_h = write_package(Path(tmp) / "h", "echo", schema=HOSTILE_SCHEMA)
        steady, path_s = write_package(Path(tmp) / "s", "echo", schema=PERSON, chain=False)
        for path in (path_h, path_s):
            jobico("deploy", str(path))
        base = f"http://127.0.0.1:{jobico.env['JOBICO_PORT']}"
        url = f"/webhooks/{steady}/ev"
        rounds = []
        with httpx.Client(base_url=base, timeout=60) as http:
            for tenant in (hostile, steady):
                wait_routed(http, tenant)
            latencies(http, url, 100)  # warm: the first events pay for the queue actor
            for _ in range(args.rounds):
                alone = latencies(http, url, args.requests)
                attacker = Attacker(base, f"/webhooks/{hostile}/ev")
                attacker.start()
                try:
                    beside = latencies(http, url, args.requests)
                finally:
                    attacker.stop.set()
                    attacker.join(timeout=120)
                rounds.append((alone, beside, attacker.answers))
    print(f"machine: {os.cpu_count()} cores; {args.requests} webhooks a phase")
    for n, (alone, beside, answers) in enumerate(rounds, 1):
        statuses = sorted({status for _, status, _, _ in answers})
        slowest: dict[str, float] = {}
        for what, _, took, _ in answers:
            slowest[what] = max(took, slowest.get(what, 0.0))
        print(
            f"round {n}: S alone p50 {ms(statistics.median(alone))} p99 {ms(p99(alone))}; "
            f"beside H p50 {ms(statistics.median(beside))} p99 {ms(p99(beside))} "
            f"({p99(beside) / p99(alone):.2f}x); H: {len(answers)} requests, answered {statuses}"
        )
        for what, took in slowest.items():
            print(f"  H's slowest answer to {what}: {ms(took)}")
    pooled_alone = [v for r in rounds for v in r[0]]
    pooled_beside = [v for r in rounds for v in r[1]]
    print(
        f"pooled: S alone p99 {ms(p99(pooled_alone))}, beside H {ms(p99(pooled_beside))}, "
        f"{p99(pooled_beside) / p99(pooled_alone):.2f}x (target <= 2x)"
    )


if __name__ == "__main__":
    main()
