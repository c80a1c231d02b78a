"""Ingest and end-to-end throughput and latency of a real Jobico, measured in one run.

Starts Jobico on an empty JOBICO_HOME (embedded Ray, Serve with its HAProxy ingress), deploys
the echo jobicolet of examples/greet (its schema, no result chaining, a queue limit above what
the run sends) and a trivial FastAPI handler as a second Serve app on the same Serve setup, then
measures with wrk (apt-get install wrk):

  1. trivial handler, single-event requests                    -> req/s (the baseline)
  2. listener, single-event requests, executors paused         -> req/s and % of the baseline
     Both at each of --connections (default 32, 64, 128, 256), taking turns --rounds times,
     each figure the median of its rounds (the machine's speed drifts over a minute). The
     target's figure is each side's peak over the sweep: a server's req/s is what it does
     when saturated, and the two saturate at different concurrencies. The trivial handler
     waits on nothing and is at its limit with 64 connections; each listener request also
     waits for its queue's fsync'd commit in another process, so by Little's law (req/s =
     requests in flight / time each takes) it needs more requests in flight to be busy.
     Every concurrency's figures are printed too.
  3. listener, 100-event requests, executors paused            -> events/s ingested
  4. execution: the events of 2-3, run by the executors from a full queue -> events/s
  5. end to end: 100-event requests with executors running at the same time,
     until every event has its record (POST -> queryable)      -> events/s
  6. 200 events/s paced for 15 s: POST -> record latency       -> p50 / p99

Run: .venv/bin/python benchmarks/ingest.py [--seconds 10] [--rounds 3]   (about ten minutes)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).parents[1]
PORT = 8790
JOHN = {"firstName": "john", "lastName": "connor", "age": 50}


def jobico(*args: str, env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "jobico.cli", *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout


def wrk(url: str, body: dict, seconds: int, connections: int = 64) -> tuple[float, int]:
    """Requests/s and non-2xx answers of `seconds` of POSTs of `body` to `url`."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            f'wrk.method = "POST"\nwrk.body = {json.dumps(json.dumps(body))}\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", script.name, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(script.name)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rate, int(bad[1]) if bad else 0


def deploy_trivial_handler() -> None:
    from fastapi import FastAPI
    from ray import serve

    app = FastAPI()

    @app.post("/{tenant}/{event}", status_code=202)
    async def accept(tenant: str, event: str) -> dict[str, list[str]]:
        return {"ids": ["x"]}

    # The listener's own deployment options: requests in flight, no CPU reservation, no access log.
    deployment = serve.deployment(
        max_ongoing_requests=1000,
        ray_actor_options={"num_cpus": 0},
        logging_config={"enable_access_log": False},
    )(serve.ingress(app)(type("Trivial", (), {})))
    serve.run(deployment.bind(), name="trivial", route_prefix="/trivial")


def rounded(rates: list[float]) -> str:
    return ", ".join(f"{rate:.0f}" for rate in rates)


def echo_package(folder: Path) -> Path:
    """examples/greet's echo jobicolet and schema in a package without result chaining."""
    for name in ("greet.wasm", "greet-schema.json"):
        shutil.copy(ROOT / "examples/greet" / name, folder / name)
    package = {
        "id": "bench", "tenant": "demogo",
        "queues": [{"id": "q", "limit": 50_000_000}],
        "jobs": [{"event": {"id": "evgo", "supplierqueue": "q", "runtime": "echo",
                            "schema": {"id": "s", "schemaref": "greet-schema.json"}}}],
        "runtimes": [{"id": "echo", "moduleref": "greet.wasm"}],
    }  # fmt: skip
    (folder / "package.json").write_text(json.dumps(package))  # JSON is YAML
    return folder / "package.json"


def peak(rates: dict[int, list[float]]) -> tuple[float, int]:
    """The highest of the medians, and the connections it was measured with."""
    return max((statistics.median(r), n) for n, r in rates.items())


def backlog(queue) -> int:
    from jobico.actors import cluster

    return sum(
        q["depth"] + q["in_flight"] for q in cluster.call(queue.internal_figures.remote()).values()
    )


def wait_drained(queue) -> None:
    while backlog(queue):
        time.sleep(0.1)


def paced_latency(base: str, client, rate: int, seconds: int) -> list[float]:
    sent: dict[str, float] = {}
    lock = threading.Lock()

    def post(c: httpx.Client) -> None:
        at = time.time()
        [event_id] = c.post(f"{base}/events/demogo/evgo", json={"data": [JOHN]}).json()["ids"]
        with lock:
            sent[event_id] = at

    with httpx.Client(timeout=30) as c:
        threads = []
        start = time.monotonic()
        for n in range(rate * seconds):
            time.sleep(max(0.0, start + n / rate - time.monotonic()))
            t = threading.Thread(target=post, args=(c,))
            t.start()
            threads.append(t)
        for t in threads:
            t.join()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done = {
            r["event_id"]: r
            for r in client.executions(tenant="demogo", event="evgo", since=min(sent.values()) - 1)
        }
        if set(sent) <= set(done):
            return sorted((done[i]["finished_at"] - at) * 1000 for i, at in sent.items())
        time.sleep(0.5)
    raise SystemExit("not every paced event got its record within 60 s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="turns of steps 1 and 2")
    parser.add_argument(
        "--connections",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[32, 64, 128, 256],
        help="wrk connections for steps 1 and 2, each measured on both sides "
        "(default 32,64,128,256)",
    )
    args = parser.parse_args()
    secs = args.seconds
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    home = tempfile.mkdtemp(prefix="jobico-bench-")
    env = {**os.environ, "JOBICO_HOME": home, "JOBICO_PORT": str(PORT), "JOBICO_DASHBOARD": "0"}
    base = f"http://127.0.0.1:{PORT}"
    jobico("up", env=env)
    try:
        jobico("deploy", str(echo_package(Path(home))), env=env)
        from jobico.actors import cluster
        from jobico.actors import queue as queue_actor
        from jobico.client import Client
        from jobico.config import Settings

        client = Client(Settings.from_env(env))
        deploy_trivial_handler()
        supervisor = cluster.actor(cluster.SUPERVISOR, client.settings)
        one, hundred = {"data": [JOHN]}, {"data": [JOHN] * 100}

        cluster.call(supervisor.stop.remote())  # ingest alone: nothing consumes meanwhile
        trivials: dict[int, list[float]] = {n: [] for n in args.connections}
        singles: dict[int, list[float]] = {n: [] for n in args.connections}
        bad1 = 0
        for _ in range(args.rounds):
            for n in args.connections:
                trivials[n].append(wrk(f"{base}/trivial/demogo/evgo", one, secs, n)[0])
                rate, bad = wrk(f"{base}/events/demogo/evgo", one, secs, n)
                singles[n].append(rate)
                bad1 += bad
        batch, bad2 = wrk(f"{base}/events/demogo/evgo", hundred, secs, connections=16)
        queue = queue_actor.handle(client.settings, "demogo")
        waiting, started = backlog(queue), time.monotonic()
        cluster.call(supervisor.start.remote())
        wait_drained(queue)
        execution = waiting / (time.monotonic() - started)

        started = time.monotonic()
        e2e_rate, bad3 = wrk(f"{base}/events/demogo/evgo", hundred, secs, connections=16)
        accepted = e2e_rate * secs * 100
        wait_drained(queue)
        e2e = accepted / (time.monotonic() - started)

        latencies = paced_latency(base, client, rate=200, seconds=15)
        p = statistics.quantiles(latencies, n=100)
        print(
            f"machine: {os.cpu_count()} cores; {secs} s per wrk run; refused answers: "
            f"{bad1 + bad2 + bad3}"
        )
        for n in args.connections:
            trivial, single = statistics.median(trivials[n]), statistics.median(singles[n])
            print(f"{n} connections:")
            print(f"1. trivial Serve handler:      {trivial:8.0f} req/s  ({rounded(trivials[n])})")
            print(
                f"2. listener, single-event:     {single:8.0f} req/s "
                f"({100 * single / trivial:.0f} % of the trivial handler; {rounded(singles[n])})"
            )
        top_trivial, at_trivial = peak(trivials)
        top_single, at_single = peak(singles)
        print(
            f"peak: trivial handler {top_trivial:.0f} req/s ({at_trivial} connections), listener "
            f"{top_single:.0f} req/s ({at_single} connections) = "
            f"{100 * top_single / top_trivial:.0f} % (target: at least 80 %)"
        )
        print(f"3. listener, 100-event requests:   {batch * 100:8.0f} events/s ingested")
        print(f"4. execution from a full queue:    {execution:8.0f} events/s ({waiting} events)")
        print(f"5. end to end (POST -> record):    {e2e:8.0f} events/s")
        print(f"6. 200 events/s, POST -> record:   p50 {p[49]:.0f} ms, p99 {p[98]:.0f} ms")
    finally:
        from jobico.actors import cluster

        cluster.disconnect()  # before the cluster goes: a driver left behind waits for it
        subprocess.run([sys.executable, "-m", "jobico.cli", "down"], env=env, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
