"""A long fuzz run of the listener's HTTP API: schemathesis cases from its OpenAPI document,
valid and invalid, against the app in-process with a fake backend, checked as the test suite's
short run checks them (tests/unit/test_listener_fuzz.py). Prints how the answers spread.

Usage: .venv/bin/python scripts/fuzz_listener.py [--examples 20000] [--seed N]
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.unit.test_listener_fuzz import BACKEND, aim, check_answer, schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    statuses: collections.Counter[int] = collections.Counter()
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    cases = st.one_of(*(schema.as_strategy(generation_mode=m) for m in modes))

    @settings(
        max_examples=args.examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def run(case):  # type: ignore[no-untyped-def]
        aim(case)
        statuses[check_answer(case, len(BACKEND.events()))] += 1

    if args.seed is not None:
        run = seed(args.seed)(run)
    started = time.monotonic()
    run()
    took = time.monotonic() - started
    total = sum(statuses.values())
    print(f"{total} requests in {took:.0f} s, no 5xx, no refused request queued anything")
    for status, count in sorted(statuses.items()):
        print(f"  {status}: {count}")
    print(f"  events queued by accepted requests: {len(BACKEND.events())}")


if __name__ == "__main__":
    main()
