"""Fair sharing: a tenant flooding slow events must not starve another tenant.

Tenant B (the echo jobicolet) posts at a steady rate; its POST -> record latency is measured
alone, then again while tenant A posts ten times as many events of a guest that keeps the CPU
busy for about 5 ms each, spread over many ordering keys so they could take every guest thread
at once. Target (issue 5): B's p99 rises by at most 25 %.

Run: .venv/bin/python benchmarks/fairness.py [--rate 20] [--seconds 20]   (about two minutes)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

import httpx

from tests.e2e.packages import write_package
from tests.platform import Jobico, platform_env


async def post_paced(
    http: httpx.AsyncClient, url: str, rate: float, seconds: float, body: dict
) -> dict[str, float]:
    """POST `body` `rate` times a second; the accepted ids and when each was sent."""
    sent: dict[str, float] = {}

    async def one(n: int) -> None:
        at = time.time()
        answer = await http.post(url, json={"data": [{**body, "n": n}]})
        assert answer.status_code == 202, answer.text
        sent[answer.json()["ids"][0]] = at

    start, tasks = time.monotonic(), []
    for n in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
        tasks.append(asyncio.create_task(one(n)))
    await asyncio.gather(*tasks)
    return sent


def records(client, tenant: str, sent: dict[str, float]) -> dict[str, dict]:
    """Each sent event's final record, once all are there."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        done = {
            r["event_id"]: r
            for r in client.executions(tenant=tenant, since=min(sent.values()) - 1, final_only=True)
        }
        if set(sent) <= set(done):
            return done
        time.sleep(0.5)
    raise SystemExit(f"tenant {tenant}'s events did not all get records within 300 s")


def latencies(done: dict[str, dict], sent: dict[str, float]) -> list[float]:
    """POST -> record, ms."""
    return sorted((done[i]["finished_at"] - at) * 1000 for i, at in sent.items())


def waits(done: dict[str, dict], sent: dict[str, float]) -> list[float]:
    """Accepted -> started: how long the event waited for an executor, ms."""
    return sorted((done[i]["started_at"] - done[i]["received_at"]) * 1000 for i in sent)


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


async def phases(base: str, quiet: str, noisy: str, rate: float, seconds: float):
    # One client (connection pool) per tenant, as two senders would be: B's POSTs must not
    # wait for a connection behind A's.
    limits = httpx.Limits(max_connections=200)
    async with (
        httpx.AsyncClient(timeout=60, limits=limits) as http_b,
        httpx.AsyncClient(timeout=60, limits=limits) as http_a,
    ):
        url_b, url_a = f"{base}/events/{quiet}/ev", f"{base}/events/{noisy}/ev"
        alone = await post_paced(http_b, url_b, rate, seconds, {"firstName": "b"})
        flood = asyncio.create_task(post_paced(http_a, url_a, 10 * rate, seconds, {"k": 0}))
        beside = await post_paced(http_b, url_b, rate, seconds, {"firstName": "b"})
        return alone, beside, await flood


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=20, help="tenant B's events per second")
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        jobico = Jobico(platform_env(home), home)
        jobico("up")
        try:
            from jobico.actors import cluster
            from jobico.client import Client
            from jobico.config import Settings

            client = Client(Settings.from_env(jobico.env))
            any_object = {"type": "object"}
            quiet, path_b = write_package(Path(tmp) / "b", "echo", schema=any_object, chain=False)
            # Each event its own key (/n): A's flood may run on every guest thread at once.
            noisy, path_a = write_package(
                Path(tmp) / "a", "spin", schema=any_object, chain=False, orderingkey="/n"
            )
            for path in (path_b, path_a):
                jobico("deploy", str(path))
            base = f"http://127.0.0.1:{jobico.env['JOBICO_PORT']}"
            for tenant in (quiet, noisy):  # until both routes are known to the listener
                probe = f"{base}/events/{tenant}/ev"
                while httpx.post(probe, json={"data": []}).status_code != 400:
                    time.sleep(0.05)
            alone, beside, flood = asyncio.run(phases(base, quiet, noisy, args.rate, args.seconds))
            done_b = records(client, quiet, {**alone, **beside})
            b_alone, b_beside = latencies(done_b, alone), latencies(done_b, beside)
            a_flood = latencies(records(client, noisy, flood), flood)
            b_waits = waits(done_b, beside)
            cluster.disconnect()
        finally:
            jobico("down", check=False)
    print(
        f"machine: {os.cpu_count()} cores; B at {args.rate:g}/s, A at {10 * args.rate:g}/s "
        f"of a ~5 ms guest, {args.seconds:g} s each"
    )
    print(f"B alone:      p50 {statistics.median(b_alone):6.0f} ms   p99 {p99(b_alone):6.0f} ms")
    print(f"B beside A:   p50 {statistics.median(b_beside):6.0f} ms   p99 {p99(b_beside):6.0f} ms")
    print(
        f"  of which waiting for an executor: p50 {statistics.median(b_waits):6.0f} ms   "
        f"p99 {p99(b_waits):6.0f} ms"
    )
    print(f"A (flooding): p50 {statistics.median(a_flood):6.0f} ms   p99 {p99(a_flood):6.0f} ms")
    print(f"B's p99 beside A: {100 * (p99(b_beside) / p99(b_alone) - 1):+.0f} % (target <= +25 %)")


if __name__ == "__main__":
    main()
