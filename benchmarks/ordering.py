"""Throughput of one ordering key against eight, with a guest that takes 5 ms per event.

Events of one key run one at a time, in order; different keys run side by side (on an
executor's guest threads and across executors). Target (issue 4): 8 keys >= 3x one key.
Run: .venv/bin/python benchmarks/ordering.py [--events 400]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

import httpx

from tests.conftest import wait_for
from tests.e2e.packages import wait_routed, write_package
from tests.platform import Jobico, running


def rate(jobico: Jobico, client, folder: Path, keys: int, events: int) -> float:
    """Events/s from the first POST until every event has its final record."""
    tenant, path = write_package(
        folder, "sleeper", schema={"type": "object"}, chain=False, orderingkey="/k"
    )
    jobico("deploy", str(path))
    batch = [{"k": n % keys, "n": n} for n in range(events)]
    with httpx.Client(base_url=f"http://127.0.0.1:{jobico.env['JOBICO_PORT']}") as http:
        wait_routed(http, tenant)
        started = time.monotonic()
        for first in range(0, events, 100):
            data = batch[first : first + 100]
            assert http.post(f"/events/{tenant}/ev", json={"data": data}).status_code == 202
    wait_for(
        lambda: len(client.executions(tenant=tenant, final_only=True)) >= events,
        timeout=600,
        what=f"{events} records",
    )
    return events / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=400)
    events = parser.parse_args().events
    with tempfile.TemporaryDirectory() as tmp, running(Path(tmp) / "home") as (jobico, client):
        one = rate(jobico, client, Path(tmp) / "one", 1, events)
        eight = rate(jobico, client, Path(tmp) / "eight", 8, events)
    print(f"machine: {os.cpu_count()} cores; {events} events of 5 ms each per run")
    print(f"1 key:  {one:7.0f} events/s")
    print(f"8 keys: {eight:7.0f} events/s ({eight / one:.1f}x one key)")


if __name__ == "__main__":
    main()
