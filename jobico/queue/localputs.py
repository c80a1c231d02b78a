"""Puts from a listener replica to a queue actor on the same node, over a Unix socket.

A webhook is answered only once its events are committed, so every single-event request waits
for its queue's commit round trip. Through a Ray actor call, most of that trip was Ray's: at 64
concurrent webhooks on two cores, 1.6 ms to reach the queue actor and 1.0 ms back around a
2 ms commit, plus a Ray call's CPU on both sides (docs/performance.md). A replica on the queue
actor's node sends the same coalesced puts over a Unix socket the queue actor serves instead:
one frame each way, to the same `put_many`, same answers.

Only those puts take this path. Leases, settles, every other call, and puts from replicas on
other nodes stay Ray calls, and the actor's life stays Ray's: when it dies the socket closes,
the put fails as Unavailable and the listener sends it again to the restarted actor (puts are
idempotent by key, so a put whose answer was lost is not committed twice).

A frame is a 4-byte big-endian length and a msgpack body (no pickle: the socket is a door into
the queue). The socket sits in a directory of its own that only its user may enter.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import stat
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import msgpack

from jobico import errors
from jobico.errors import InvalidInput, JobicoError, Unavailable
from jobico.queue.events import NewEvent, Put

log = logging.getLogger(__name__)

PutMany = Callable[[list[Put]], Awaitable[Sequence[list[str] | BaseException]]]

# The most a frame may carry. A listener's send can be larger in principle (10,000 events of
# up to its body limit each): such a send goes by Ray call instead (TooLarge); a frame
# announcing more is refused before it is read.
MAX_FRAME = 1 << 30
_LENGTH = 4


class FrameError(Exception):
    """A frame that is not a put or an answer: the connection is dropped."""


class TooLarge(Exception):
    """Puts too large for one frame; nothing was sent, and the connection stays up."""


# --- the wire ---------------------------------------------------------------------------------


def encode_puts(puts: Sequence[Put]) -> bytes:
    return _pack(
        [
            [
                put.key,
                put.ttl_s,
                [
                    [
                        e.queue,
                        e.event,
                        e.package,
                        e.revision,
                        e.key,
                        e.payload,
                        e.received_at,
                        e.limit,
                    ]
                    for e in put.events
                ],
            ]
            for put in puts
        ]
    )


def decode_puts(body: bytes) -> list[Put | InvalidInput]:
    """The frame's puts, each a Put or, when its own shape is wrong, that put's error: one bad
    put must not cost the others in its frame. (Field types are checked by the store.)"""
    puts = _unpack(body)
    if not isinstance(puts, list):
        raise FrameError(f"not a list of puts: {type(puts).__name__}")
    return [_decode_put(put) for put in puts]


def _decode_put(put: Any) -> Put | InvalidInput:
    try:
        key, ttl_s, events = put
        return Put(
            [
                NewEvent(
                    queue=q,
                    event=ev,
                    package=p,
                    revision=r,
                    key=k,
                    payload=data,
                    received_at=at,
                    limit=limit,
                )
                for q, ev, p, r, k, data, at, limit in events
            ],
            key=key,
            ttl_s=ttl_s,
        )
    except (TypeError, ValueError) as e:
        return InvalidInput(f"not a put: {e}")


def encode_results(results: Sequence[list[str] | BaseException]) -> bytes:
    """Each put's ids, or its error: a JobicoError by code, message and details; anything else
    only as text, to be raised on the other side as a plain Exception (an internal error)."""
    return _pack([_result(r) for r in results])


def decode_results(body: bytes) -> list[list[str] | Exception]:
    try:
        return [_error(*r[1:]) if r[0] else list(r[1]) for r in _unpack(body)]
    except (TypeError, ValueError, IndexError) as e:
        raise FrameError(f"not a list of answers: {e}") from None


def _result(result: list[str] | BaseException) -> list[Any]:
    if isinstance(result, JobicoError):
        return [1, result.code, result.message, result.details]
    if isinstance(result, BaseException):
        return [1, None, repr(result), {}]
    return [0, result]


def _error(code: str | None, message: str, details: dict[str, Any]) -> Exception:
    if code is None:
        return Exception(message)
    return errors.from_code(code, message, details)


def _pack(value: Any) -> bytes:
    body: bytes = msgpack.packb(value, use_bin_type=True)
    # Past 4 GiB the length would not fit: the reader refuses anything past MAX_FRAME anyway.
    return min(len(body), 0xFFFF_FFFF).to_bytes(_LENGTH, "big") + body


def _unpack(body: bytes) -> Any:
    try:
        return msgpack.unpackb(body, raw=False, strict_map_key=False)
    except Exception as e:  # msgpack's errors share no base class worth naming
        raise FrameError(f"not msgpack: {e}") from None


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    size = int.from_bytes(await reader.readexactly(_LENGTH), "big")
    if size > MAX_FRAME:
        raise FrameError(f"a frame of {size} bytes, more than {MAX_FRAME}")
    return await reader.readexactly(size)


# --- the queue actor's side -------------------------------------------------------------------


def socket_path(home: Path, namespace: str, tenant: str) -> Path:
    """Where the queue actor of `tenant` of the Jobico at `home` listens: the same place
    across restarts (a restarted actor takes over its socket; nothing piles up), short enough
    for a socket's 107 bytes however deep `home` is, in a directory only its user may enter."""
    digest = hashlib.sha256(f"{home}\0{namespace}\0{tenant}".encode()).hexdigest()[:24]
    return Path(tempfile.gettempdir()) / f"jobico-{os.getuid()}" / f"{digest}.sock"


class PutServer:
    """Serves `put_many` on a Unix socket at `path`; `close` removes the socket."""

    def __init__(self, put_many: PutMany, path: Path) -> None:
        self._put_many = put_many
        self.path = path
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen (again after a restart: a socket file left by a dead server is replaced).
        OSError if the directory is not private to this user, or the socket cannot be made."""
        if self._server is not None:
            return
        _private_dir(self.path.parent)
        self.path.unlink(missing_ok=True)
        self._server = await asyncio.start_unix_server(self._serve, path=self.path)

    async def close(self) -> None:
        """Stop listening and remove the socket. (An actor killed without it leaves the file;
        its successor replaces it.)"""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
            self.path.unlink(missing_ok=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                puts = decode_puts(await _read_frame(reader))
                writer.write(encode_results(await self._answer(puts)))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the listener went away (or restarts): nothing was half answered
        except FrameError as e:
            log.warning("dropped a local put connection: %s", e)
        finally:
            writer.close()

    async def _answer(self, puts: list[Put | InvalidInput]) -> list[list[str] | BaseException]:
        """Each put's answer: its ids or error from `put_many`, or the error of its shape."""
        valid = [p for p in puts if isinstance(p, Put)]
        answers = iter(await self._put_many(valid) if valid else [])
        return [p if isinstance(p, InvalidInput) else next(answers) for p in puts]


def _private_dir(folder: Path) -> None:
    """`folder`, made if missing, owned by this user and closed to everyone else: whoever can
    reach the socket can enqueue into the tenant's queue."""
    folder.mkdir(mode=0o700, exist_ok=True)
    st = folder.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise PermissionError(f"{folder} is not a directory private to this user")


# --- the listener's side ----------------------------------------------------------------------


class PutClient:
    """One connection to a queue actor's PutServer. One exchange at a time; after any failure
    the connection is closed for good and every later call is Unavailable (the caller connects
    again, to the actor it looks up again)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self._lock = asyncio.Lock()
        self._closed = False

    @classmethod
    async def connect(cls, path: str) -> PutClient:
        reader, writer = await asyncio.open_unix_connection(path)
        return cls(reader, writer)

    async def put_many(self, puts: list[Put]) -> list[list[str] | Exception]:
        """The answers of `put_many` on the other side. Unavailable if the connection fails
        (or failed before); TooLarge, with nothing sent, for puts past MAX_FRAME."""
        frame = encode_puts(puts)
        if len(frame) - _LENGTH > MAX_FRAME:
            raise TooLarge(f"{len(frame)} bytes of puts, more than one frame's {MAX_FRAME}")
        async with self._lock:
            if self._closed:
                raise Unavailable("the local connection to the queue is closed")
            try:
                self._writer.write(frame)
                return decode_results(await _read_frame(self._reader))
            except (asyncio.IncompleteReadError, ConnectionError, FrameError) as e:
                self.close()
                raise Unavailable(f"the queue's local connection failed: {e!r}") from None
            except BaseException:  # cancelled mid-exchange: the stream's state is unknown
                self.close()
                raise

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(Exception):
            self._writer.close()


def local_first(client: PutClient, fallback: PutMany) -> PutMany:
    """`put_many` over `client`, and by `fallback` (a Ray call) for puts too large for a frame."""

    async def put_many(puts: list[Put]) -> Sequence[list[str] | BaseException]:
        try:
            return await client.put_many(puts)
        except TooLarge:
            return await fallback(puts)

    return put_many
