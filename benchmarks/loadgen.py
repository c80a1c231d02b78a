"""A lean paced load generator for latency benchmarks: raw HTTP/1.1 keep-alive connections on
asyncio streams, one process per sender.

httpx costs about a millisecond of CPU per request; at a few hundred requests a second on a
2-core machine the load generator then takes the CPU the platform under test needs, and its
own queueing shows up as the platform's latency. This one costs a few tens of microseconds.

Latency starts at each request's scheduled time, not when it was written: a request delayed
because every connection was busy counts that delay (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    path: str


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, target: Target) -> _Connection:
        return cls(*await asyncio.open_connection(target.host, target.port))

    async def post(self, head: bytes, body: bytes) -> tuple[int, bytes]:
        self.writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return int(status_line.split()[1]), await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def paced(
    target: Target, body: dict[str, Any], rate: float, seconds: float
) -> dict[str, float]:
    """POST `{"data": [{**body, "n": n}]}` `rate` times a second for `seconds`, n counting
    from 0; each accepted event id and the time its request was scheduled."""
    head = (
        f"POST {target.path} HTTP/1.1\r\nHost: {target.host}:{target.port}\r\n"
        "Content-Type: application/json\r\nContent-Length: "
    ).encode()
    idle: list[_Connection] = []
    sent: dict[str, float] = {}

    async def one(n: int, at: float) -> None:
        conn = idle.pop() if idle else await _Connection.open(target)
        status, answer = await conn.post(head, json.dumps({"data": [{**body, "n": n}]}).encode())
        if status != 202:
            raise AssertionError(f"POST {target.path}: {status} {answer[:200]!r}")
        idle.append(conn)
        for event_id in json.loads(answer)["ids"]:
            sent[event_id] = at

    start_wall, start = time.time(), time.monotonic()
    tasks = []
    for n in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
        tasks.append(asyncio.create_task(one(n, start_wall + n / rate)))
    await asyncio.gather(*tasks)
    for conn in idle:
        conn.close()
    return sent


def _child(out: Any, target: Target, body: dict[str, Any], rate: float, seconds: float) -> None:
    out.send(asyncio.run(paced(target, body, rate, seconds)))


class Sender:
    """`paced` in a process of its own: senders do not share a CPU-starved event loop."""

    def __init__(self, target: Target, body: dict[str, Any], rate: float, seconds: float) -> None:
        context = multiprocessing.get_context("spawn")
        self._out, child_end = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_child, args=(child_end, target, body, rate, seconds), daemon=True
        )
        self._process.start()

    def result(self) -> dict[str, float]:
        sent: dict[str, float] = self._out.recv()
        self._process.join()
        return sent
