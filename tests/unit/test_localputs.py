"""Local puts (jobico.queue.localputs): a listener replica's puts to a queue actor on its node
over a Unix socket, with the same answers as the actor call."""

from __future__ import annotations

import asyncio
import stat
import tempfile
from collections.abc import Awaitable, Sequence
from pathlib import Path

import pytest

from jobico.errors import InvalidInput, QueueFull, Unavailable
from jobico.queue import localputs
from jobico.queue.events import NewEvent, Put
from jobico.queue.localputs import (
    PutClient,
    PutMany,
    PutServer,
    TooLarge,
    decode_puts,
    decode_results,
    encode_puts,
    encode_results,
    local_first,
    socket_path,
)


def event(n: int, key: str | None = None) -> NewEvent:
    return NewEvent(
        queue="q",
        event="ev",
        package="pkg",
        revision=3,
        key=key,
        payload=b'{"n":%d,"name":"\xc3\xa9"}' % n,
        received_at=1_700_000_000.25 + n,
        limit=50,
    )


PUTS = [
    Put([event(0), event(1, key="a")], key="listener/1", ttl_s=600.0),
    Put([event(2)]),
]

Results = list[list[str] | Exception]  # what PutClient.put_many and decode_results answer


def test_puts_cross_the_wire_unchanged() -> None:
    assert decode_puts(encode_puts(PUTS)[4:]) == PUTS


def test_answers_cross_the_wire_as_ids_or_errors_with_their_details() -> None:
    full = QueueFull("queue 'q' is full", queue="q", limit=50, retry_after=1)
    ids, error, internal = decode_results(
        encode_results([["A", "B"], full, RuntimeError("disk I/O error")])[4:]
    )
    assert ids == ["A", "B"]
    assert type(error) is QueueFull and error.to_dict() == full.to_dict()
    # Not a Jobico error: it comes back as a plain Exception, an internal error to the sender.
    assert type(internal) is Exception and "disk I/O error" in str(internal)


def serve(put_many: PutMany, home: Path) -> Awaitable[tuple[PutServer, PutClient]]:
    """A started PutServer and a connected PutClient, inside the running loop."""

    async def start() -> tuple[PutServer, PutClient]:
        server = PutServer(put_many, socket_path(home, "test", "t"))
        await server.start()
        return server, await PutClient.connect(str(server.path))

    return start()


def test_a_local_put_is_answered_by_put_many_batch_by_batch(tmp_path: Path) -> None:
    seen: list[list[Put]] = []

    async def put_many(puts: list[Put]) -> list[list[str]]:
        seen.append(puts)
        return [[f"id{i}" for i, _ in enumerate(p.events)] for p in puts]

    async def scenario() -> tuple[Results, Results, Path]:
        server, client = await serve(put_many, tmp_path)
        first = await client.put_many(PUTS)
        second = await client.put_many(PUTS[1:])
        assert stat.S_IMODE(server.path.parent.stat().st_mode) == 0o700  # only its user enters
        client.close()
        await server.close()
        return first, second, server.path

    first, second, path = asyncio.run(scenario())
    assert first == [["id0", "id1"], ["id0"]] and second == [["id0"]]
    assert seen == [PUTS, PUTS[1:]]
    assert not path.exists()


def test_a_restarted_server_takes_over_the_socket_its_predecessor_left(tmp_path: Path) -> None:
    async def put_many(puts: list[Put]) -> list[list[str]]:
        return [["again"] for _ in puts]

    async def scenario() -> Results:
        path = socket_path(tmp_path, "test", "t")
        path.parent.mkdir(mode=0o700, exist_ok=True)
        path.write_bytes(b"")  # what a killed actor leaves behind
        server, client = await serve(put_many, tmp_path)
        answer = await client.put_many(PUTS[1:])
        client.close()
        await server.close()
        return answer

    assert asyncio.run(scenario()) == [["again"]]


def test_a_socket_directory_others_may_enter_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    path = socket_path(tmp_path, "test", "t")
    path.parent.mkdir()
    path.parent.chmod(0o777)

    async def never_called(puts: list[Put]) -> list[list[str]]:
        return []

    async def scenario() -> None:
        with pytest.raises(PermissionError):
            await PutServer(never_called, path).start()

    asyncio.run(scenario())
    assert not path.exists()


def test_a_dropped_connection_leaves_the_client_unavailable_for_good(tmp_path: Path) -> None:
    calls = 0

    async def put_many(puts: list[Put]) -> list[list[str]]:
        nonlocal calls
        calls += 1
        raise ConnectionResetError("the queue actor died")  # the server drops the connection

    async def scenario() -> list[str]:
        server, client = await serve(put_many, tmp_path)
        outcomes: list[str] = []
        for _ in range(2):
            with pytest.raises(Unavailable) as caught:
                await client.put_many(PUTS)
            outcomes.append(str(caught.value))
        await server.close()
        return outcomes

    first, second = asyncio.run(scenario())
    assert "failed" in first and "closed" in second
    assert calls == 1  # the second call never reached the socket


def test_a_frame_that_is_not_puts_drops_the_connection_and_runs_nothing(tmp_path: Path) -> None:
    calls = 0

    async def put_many(puts: list[Put]) -> list[list[str]]:
        nonlocal calls
        calls += 1
        return []

    async def scenario() -> bytes:
        server = PutServer(put_many, socket_path(tmp_path, "test", "t"))
        await server.start()
        reader, writer = await asyncio.open_unix_connection(server.path)
        writer.write(len(b"\xc1junk").to_bytes(4, "big") + b"\xc1junk")
        answer = await reader.read()  # EOF: the server closed its end
        writer.close()
        await server.close()
        return answer

    assert asyncio.run(scenario()) == b""
    assert calls == 0


def test_a_malformed_put_in_a_frame_fails_alone_and_the_connection_stays(
    tmp_path: Path,
) -> None:
    seen: list[list[Put]] = []

    async def put_many(puts: list[Put]) -> list[list[str]]:
        seen.append(puts)
        return [[f"id{i}"] for i, _ in enumerate(puts)]

    good = localputs._unpack(encode_puts(PUTS[1:])[4:])[0]
    frame = localputs._pack([good, ["key", 300.0, 42], "three", good])

    async def scenario() -> tuple[Results, Results]:
        server = PutServer(put_many, socket_path(tmp_path, "test", "t"))
        await server.start()
        reader, writer = await asyncio.open_unix_connection(server.path)
        client = PutClient(reader, writer)
        writer.write(frame)
        answers = decode_results(await localputs._read_frame(reader))
        after = await client.put_many(PUTS[1:])  # the connection is still up
        client.close()
        await server.close()
        return answers, after

    answers, after = asyncio.run(scenario())
    assert answers[0] == ["id0"] and answers[3] == ["id1"]
    assert all(type(a) is InvalidInput for a in answers[1:3])
    assert seen[0] == [PUTS[1], PUTS[1]] and after == [["id0"]]


def test_puts_too_large_for_a_frame_go_by_the_fallback_and_the_connection_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(localputs, "MAX_FRAME", 200)
    big = [Put([event(n) for n in range(10)])]

    async def put_many(puts: list[Put]) -> list[list[str]]:
        return [["ok"] for _ in puts]

    async def by_ray(puts: list[Put]) -> list[list[str]]:
        return [["by ray"] for _ in puts]

    async def scenario() -> list[Sequence[list[str] | BaseException]]:
        server, client = await serve(put_many, tmp_path)
        with pytest.raises(TooLarge):
            await client.put_many(big)
        answers: list[Sequence[list[str] | BaseException]] = [
            await client.put_many(PUTS[1:])
        ]  # the same connection still works
        send = local_first(client, by_ray)
        answers += [await send(big), await send(PUTS[1:])]
        client.close()
        await server.close()
        return answers

    assert asyncio.run(scenario()) == [[["ok"]], [["by ray"]], [["ok"]]]
