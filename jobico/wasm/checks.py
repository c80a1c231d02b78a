"""Deploy-time module checks run off the caller's thread (ModuleChecks): each bounded by wall
clock, compilation included, and remembered by content so a deploy's registry step finds the
verdict its pre-check reached without waiting again."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures

from jobico.errors import FileInvalid, Unavailable
from jobico.wasm.inspect import CHECK_S, MAX_MODULE_BYTES, check_module

# A start function stopped at its deadline returns within an epoch tick plus the host call it
# was in (random_get over a large buffer: most of a second here); the caller waits that much
# longer so that the check's own, more precise verdict is the one reported.
GRACE_S = 1.5
MAX_VERDICTS = 1024
# A refusal for time depends on how busy the machine was: remembered long enough for the
# deploy that asked, not for good.
SLOW_VERDICT_S = 60.0
_Key = tuple[str, str, str]  # (sha256 of the module, kind, mainfunc)
_PASSED = ""  # a verdict: "" passed, anything else is why the module is refused


class ModuleChecks:
    """`check_module` on a small pool of threads. wasmtime releases the GIL while it compiles
    or runs guest code, so a caller awaiting a check (the control actor's event loop) keeps
    answering other calls meanwhile.

    A check that passes its bound is refused: the caller stops waiting then, even though a
    compilation cannot be interrupted and finishes in the background (JOBICO_MAX_MODULE_MB
    bounds how long that takes).
    """

    def __init__(
        self,
        *,
        timeout_s: float = CHECK_S,
        max_bytes: int = MAX_MODULE_BYTES,
        workers: int = 2,
        grace_s: float = GRACE_S,
    ) -> None:
        self.timeout_s = timeout_s
        self._grace_s = grace_s
        self.max_bytes = max_bytes
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="jobico-check")
        self._lock = threading.Lock()
        self._verdicts: OrderedDict[_Key, tuple[str, float]] = OrderedDict()  # (verdict, until)
        self._running: dict[_Key, tuple[Future[str], list[float]]] = {}

    def __call__(self, data: bytes, kind: str, mainfunc: str) -> None:
        """Check, waiting at most about the bound: FileInvalid if refused, Unavailable if the
        check could not even start in that time (every worker busy)."""
        self._check_size(data, kind, mainfunc)
        key = _key(data, kind, mainfunc)
        verdict = self._known(key)
        if verdict is None:
            verdict = self._wait(key, *self._start(key, data))
        _raise(verdict)

    def known(self, data: bytes, kind: str, mainfunc: str) -> None:
        """The verdict without waiting: FileInvalid if refused; Unavailable (and the check
        started) if none is known yet, for a caller that must not block."""
        self._check_size(data, kind, mainfunc)
        key = _key(data, kind, mainfunc)
        verdict = self._known(key)
        if verdict is None:
            self._start(key, data)
            raise Unavailable("the module is still being checked; deploy again in a moment")
        _raise(verdict)

    def running(self) -> int:
        """How many checks are under way (queued or running)."""
        with self._lock:
            return len(self._running)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _check_size(self, data: bytes, kind: str, mainfunc: str) -> None:
        if len(data) > self.max_bytes:  # refused on its size alone: no hashing, no thread
            check_module(data, kind=kind, mainfunc=mainfunc, max_bytes=self.max_bytes)

    def _known(self, key: _Key) -> str | None:
        with self._lock:
            verdict, until = self._verdicts.get(key, (None, 0.0))
            if verdict is None or until < time.monotonic():
                return None
            self._verdicts.move_to_end(key)
            return verdict

    def _start(self, key: _Key, data: bytes) -> tuple[Future[str], list[float]]:
        """The running check of `key`, started if there is none; the list gets the time the
        check began, once a worker takes it."""
        with self._lock:
            if key not in self._running:
                started: list[float] = []
                future = self._pool.submit(self._run, key, data, started)
                self._running[key] = (future, started)
                future.add_done_callback(lambda _: self._forget(key))
            return self._running[key]

    def _forget(self, key: _Key) -> None:
        with self._lock:
            self._running.pop(key, None)

    def _run(self, key: _Key, data: bytes, started: list[float]) -> str:
        t0 = time.monotonic()
        started.append(t0)
        _, kind, mainfunc = key
        try:
            check_module(
                data, kind=kind, mainfunc=mainfunc, timeout_s=self.timeout_s,
                max_bytes=self.max_bytes,
            )  # fmt: skip
            verdict = _PASSED
        except FileInvalid as e:
            verdict = e.message
        elapsed = time.monotonic() - t0
        if verdict == _PASSED and elapsed > self.timeout_s:  # a compilation that ran over
            verdict = self._too_slow(elapsed)
        self._remember(key, verdict, slow=elapsed >= self.timeout_s)
        return verdict

    def _wait(self, key: _Key, future: Future[str], started: list[float]) -> str:
        """The check's verdict, or a refusal once it has run past its bound and grace."""
        waited_from = time.monotonic()
        while True:
            begun = started[0] if started else None
            until = (begun if begun is not None else waited_from) + self.timeout_s + self._grace_s
            done, _ = wait_futures([future], timeout=max(0.0, until - time.monotonic()))
            if done:
                return future.result()
            if started and begun is None:
                continue  # a worker took it while we waited: its bound counts from there
            if begun is None:
                raise Unavailable(
                    f"no module check could start within {self.timeout_s:g} s (every checker "
                    "is busy); deploy again in a moment"
                )
            verdict = self._too_slow(time.monotonic() - begun)
            self._remember(key, verdict, slow=True)
            return verdict

    def _too_slow(self, elapsed: float) -> str:
        return (
            f"checking the module took {elapsed:.1f} s, more than the {self.timeout_s:g} s a "
            "deploy allows (a module this large or complex compiles too slowly)"
        )

    def _remember(self, key: _Key, verdict: str, *, slow: bool) -> None:
        now = time.monotonic()
        with self._lock:
            held, until = self._verdicts.get(key, (_PASSED, 0.0))
            if held != _PASSED and until >= now:
                return  # a refusal stands: a late compilation does not turn it into a pass
            self._verdicts[key] = (verdict, now + SLOW_VERDICT_S if slow else float("inf"))
            self._verdicts.move_to_end(key)
            while len(self._verdicts) > MAX_VERDICTS:
                self._verdicts.popitem(last=False)


def _key(data: bytes, kind: str, mainfunc: str) -> _Key:
    return (hashlib.sha256(data).hexdigest(), kind, mainfunc)


def _raise(verdict: str) -> None:
    if verdict != _PASSED:
        raise FileInvalid(verdict)
