"""What a credential check costs a single-event ingest: `Ingest.answer` in-process, an event
that requires nothing against the same event requiring each kind of credentials.

No Ray, no HTTP: the listener's own work per request (route, read, gate, parse, schema, event)
with a backend that answers at once, so the check's share is not hidden behind the queue's
commit. Usage: .venv/bin/python benchmarks/signatures.py [--requests 20000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import json
import statistics
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from jobico.access import signatures
from jobico.model import EventAuth, Revision, load_package_yaml
from jobico.queue.events import NewEvent
from jobico.serve.app import create_app
from jobico.serve.gate import Gate
from jobico.serve.routes import Routes

EXAMPLE = Path(__file__).parents[1] / "examples" / "greet"
SCHEMA = (EXAMPLE / "greet-schema.json").read_bytes()
BODY = json.dumps({"firstName": "john", "lastName": "connor", "age": 50}).encode()
SECRET, WHSEC = "gh-secret-0123456789", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Instant:
    async def enqueue(self, tenant: str, events: list[NewEvent], key: str | None) -> list[str]:
        return ["id"] * len(events)

    async def healthy(self) -> bool:
        return True


def revision(auth: EventAuth | None) -> dict[str, object]:
    spec = load_package_yaml((EXAMPLE / "package.yaml").read_text())
    job = spec.jobs[0]
    spec = dataclasses.replace(
        spec, jobs=[dataclasses.replace(job, event=dataclasses.replace(job.event, auth=auth))]
    )
    files = {"greet-schema.json": hashlib.sha256(SCHEMA).hexdigest(), "greet.wasm": "0" * 64}
    return Revision(
        tenant="demogo", package="go-demo-job", number=1, spec=spec, files=files, created_at=0
    ).to_dict()


def headers_for(kind: str) -> dict[str, str]:
    now = int(time.time())
    key = signatures.standard_key(WHSEC)
    assert key is not None
    return {
        "open": {},
        "bearer": {"authorization": f"Bearer {SECRET}"},
        "github": {"x-hub-signature-256": signatures.sign_github(SECRET, BODY)},
        "stripe": {"stripe-signature": signatures.sign_stripe(SECRET, now, BODY)},
        "standard-webhooks": {
            "webhook-id": "msg_1",
            "webhook-timestamp": str(now),
            "webhook-signature": "v1," + signatures.sign_standard_webhooks(key, "msg_1", now, BODY),
        },
    }[kind]


def ingest_for(kind: str):  # type: ignore[no-untyped-def]
    routes = Routes(lambda tenant, digest: SCHEMA)
    secret = "sw" if kind == "standard-webhooks" else "s"
    auth = None if kind == "open" else EventAuth(kind=kind, secret=secret)  # type: ignore[arg-type]
    routes.apply({"demogo/go-demo-job": revision(auth)})
    gate = Gate()
    gate.apply("demogo", {"secrets": {"s": [SECRET], "sw": [WHSEC]}})
    app = create_app(routes, Instant(), gate=gate)
    return app._ingest  # type: ignore[attr-defined]


async def body() -> AsyncIterator[bytes]:
    yield BODY


async def per_request_us(kind: str, n: int) -> float:
    ingest = ingest_for(kind)
    sent = {**headers_for(kind), "content-length": str(len(BODY))}
    get: Callable[[str], str | None] = sent.get
    for _ in range(200):  # warm: the validator compiled, caches hot
        assert (await ingest.answer(False, "demogo", "evgo", get, body())).status_code == 202
    start = time.perf_counter()
    for _ in range(n):
        await ingest.answer(False, "demogo", "evgo", get, body())
    return (time.perf_counter() - start) / n * 1e6


def check_us(kind: str, n: int) -> float:
    values, get = ([WHSEC] if kind == "standard-webhooks" else [SECRET]), headers_for(kind).get
    now = time.time()
    start = time.perf_counter()
    for _ in range(n):
        signatures.check(kind, values, get, BODY, now)
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    kinds = ["open", "bearer", "github", "stripe", "standard-webhooks"]
    runs: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(args.repeat):  # rounds of every kind, so a busy moment hits them all alike
        for kind in kinds:
            runs[kind].append(asyncio.run(per_request_us(kind, args.requests)))
    medians = {k: statistics.median(v) for k, v in runs.items()}
    print(f"{'requirement':<18} {'answer µs':>10} {'vs open':>8} {'check µs':>9} {'share':>6}")
    for kind in kinds:
        extra = (medians[kind] / medians["open"] - 1) * 100
        alone = check_us(kind, args.requests) if kind != "open" else 0.0
        share = alone / medians[kind] * 100
        print(f"{kind:<18} {medians[kind]:>10.2f} {extra:>+7.1f}% {alone:>9.2f} {share:>5.1f}%")


if __name__ == "__main__":
    main()
