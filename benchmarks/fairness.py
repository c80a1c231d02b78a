"""Fair sharing: a tenant flooding slow events must not starve another tenant.

Tenant B (the echo jobicolet) posts at a steady rate; its POST -> record latency is measured
alone, then again while tenant A posts ten times as many events of a guest that keeps the CPU
busy for about 5 ms each, spread over many ordering keys so they could take every guest thread
at once. Target (issue 5): B's p99 rises by at most 25 %.

`--guest nap` floods with a guest that waits 50 ms instead, using no CPU: A then wants more
guest threads than there are (200/s x 50 ms = 10 busy threads, executors hold at most 8), so
the run measures how executors share their threads, apart from how the node shares its CPU.

Run: .venv/bin/python benchmarks/fairness.py [--rate 20] [--seconds 20] [--guest spin|nap]
(about two minutes)
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

from benchmarks.loadgen import Sender, Target
from tests.conftest import wait_for
from tests.e2e.packages import wait_routed, write_package
from tests.platform import running

# Tenant A's slow guests (tests/guests): one contends for the CPU, one for guest threads.
GUESTS = {
    "spin": "a guest busy on the CPU ~5 ms",
    "nap": "a guest waiting 50 ms (no CPU)",
}


def records(client, tenant: str, sent: dict[str, float]) -> dict[str, dict]:
    """Each sent event's final record, once all are there."""

    def all_there() -> dict[str, dict]:
        since = min(sent.values()) - 1
        done = {
            r["event_id"]: r for r in client.executions(tenant=tenant, since=since, final_only=True)
        }
        return done if set(sent) <= set(done) else {}

    return wait_for(all_there, timeout=300, what=f"tenant {tenant}'s records")


def latencies(done: dict[str, dict], sent: dict[str, float]) -> list[float]:
    """POST -> record, ms."""
    return sorted((done[i]["finished_at"] - at) * 1000 for i, at in sent.items())


def parts(done: dict[str, dict], sent: dict[str, float]) -> dict[str, list[float]]:
    """Where the time went, ms: POST -> accepted by the listener (received_at), accepted ->
    started (waiting for an executor), started -> finished (the run)."""
    marks = [(at, done[i]["received_at"], done[i]["started_at"], done[i]["finished_at"])
             for i, at in sent.items()]  # fmt: skip
    return {
        "POST -> accepted": sorted((m[1] - m[0]) * 1000 for m in marks),
        "accepted -> started": sorted((m[2] - m[1]) * 1000 for m in marks),
        "started -> finished": sorted((m[3] - m[2]) * 1000 for m in marks),
    }


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def phases(port: int, quiet: str, noisy: str, rate: float, seconds: float):
    """B alone, then B beside A: each sender a process of its own, as two tenants would be."""

    def target(tenant: str) -> Target:
        return Target("127.0.0.1", port, f"/events/{tenant}/ev")

    alone = Sender(target(quiet), {"firstName": "b"}, rate, seconds).result()
    # A's flood outlasts B's window: B's sender starts up to a second after A's, and its last
    # events must still be beside A.
    flood = Sender(target(noisy), {"k": 0}, 10 * rate, seconds + 2)
    beside = Sender(target(quiet), {"firstName": "b"}, rate, seconds).result()
    return alone, beside, flood.result()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=20, help="tenant B's events per second")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument(
        "--guest",
        choices=sorted(GUESTS),
        default="spin",
        help="tenant A's slow guest: 5 ms of CPU (spin) or a 50 ms wait (nap)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, running(Path(tmp) / "home") as (jobico, client):
        any_object = {"type": "object"}
        quiet, path_b = write_package(Path(tmp) / "b", "echo", schema=any_object, chain=False)
        # Each event its own key (/n): A's flood may run on every guest thread at once.
        noisy, path_a = write_package(
            Path(tmp) / "a", args.guest, schema=any_object, chain=False, orderingkey="/n"
        )
        for path in (path_b, path_a):
            jobico("deploy", str(path))
        port = int(jobico.env["JOBICO_PORT"])
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            for tenant in (quiet, noisy):
                wait_routed(http, tenant)
        alone, beside, flood = phases(port, quiet, noisy, args.rate, args.seconds)
        done_b = records(client, quiet, {**alone, **beside})
        b_alone, b_beside = latencies(done_b, alone), latencies(done_b, beside)
        a_flood = latencies(records(client, noisy, flood), flood)
        b_parts = {"alone": parts(done_b, alone), "beside A": parts(done_b, beside)}
    print(
        f"machine: {os.cpu_count()} cores; B at {args.rate:g}/s, A at {10 * args.rate:g}/s "
        f"of {GUESTS[args.guest]}, {args.seconds:g} s each"
    )
    print(f"B alone:      p50 {statistics.median(b_alone):6.0f} ms   p99 {p99(b_alone):6.0f} ms")
    print(f"B beside A:   p50 {statistics.median(b_beside):6.0f} ms   p99 {p99(b_beside):6.0f} ms")
    for phase, split in b_parts.items():
        print(f"  B {phase}:")
        for name, values in split.items():
            median, tail = statistics.median(values), p99(values)
            print(f"    {name:20} p50 {median:6.1f} ms   p99 {tail:6.1f} ms")
    print(f"A (flooding): p50 {statistics.median(a_flood):6.0f} ms   p99 {p99(a_flood):6.0f} ms")
    print(f"B's p99 beside A: {100 * (p99(b_beside) / p99(b_alone) - 1):+.0f} % (target <= +25 %)")


if __name__ == "__main__":
    main()
