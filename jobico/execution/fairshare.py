"""Guest threads shared fairly between tenants.

A plain thread pool serves jobs in arrival order, so a tenant that floods an executor with
slow events holds every thread and another tenant's events wait behind the whole flood. Here
each tenant has its own line of jobs, and a free thread takes the tenant with the fewest jobs
running, in turn among equals: a tenant's backlog, however deep, never queues another's jobs.

A quiet tenant (nothing running, nothing waiting) does not even wait for a thread to free up:
when every thread is busy, it gets a surge thread (up to `surge` of them at once), which
serves only tenants with nothing running and ends when there are none. So a light tenant's
event starts at once beside a flood, instead of waiting for the flood's jobs in hand. Jobs
are short all the same (a run's events are handed out a time slice at a time, see
`jobico.execution.executor.Run`).
"""

from __future__ import annotations

import collections
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class FairPool:
    """`threads` worker threads (plus up to `surge` short-lived ones) running jobs submitted
    per tenant, the tenant with the fewest jobs running first."""

    def __init__(
        self,
        threads: int,
        *,
        surge: int | None = None,
        name: str = "guest",
        nice: int | None = None,
        surge_nice: int | None = None,
    ) -> None:
        """`surge`: threads beyond `threads` for tenants with nothing running (default as many
        as `threads`). `nice`, `surge_nice`: the CPU priority on Linux (19 is the lowest) of
        the threads and of the surge threads; None leaves it. A surge thread runs a tenant
        that had nothing running, so it may run ahead of a flood's threads: on a busy node the
        kernel shares a priority level among all its threads, and a quiet tenant's one event
        would get a ninth of a core beside eight threads of a flood."""
        if threads < 1:
            raise ValueError(f"a pool needs at least one thread, got {threads}")
        self._lines: dict[str, collections.deque[tuple[Callable[[], Any], Future[Any]]]] = {}
        self._turns: collections.deque[str] = collections.deque()  # tenants with jobs waiting
        self._running: collections.Counter[str] = collections.Counter()
        self._ready = threading.Condition()
        self._closed = False
        self._nice, self._surge_nice = nice, surge_nice
        self._name = name
        self._idle = 0  # threads waiting for work
        self._surge_left = threads if surge is None else surge
        self._threads: list[threading.Thread] = []
        self._cpu_s = 0.0
        for _ in range(threads):
            self._start(transient=False)

    def submit(self, tenant: str, fn: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        with self._ready:
            if self._closed:
                raise RuntimeError("the pool is closed")
            line = self._lines.setdefault(tenant, collections.deque())
            # Quiet: nothing running and nothing in line. A burst's later jobs find the first
            # ones in line (their threads not awake yet) or running: never a surge of its own.
            quiet = not line and not self._running[tenant]
            if not line:
                self._turns.append(tenant)
            line.append((fn, future))
            if self._idle:
                self._idle -= 1  # that thread is spoken for, whenever it wakes
                self._ready.notify()
            elif quiet and self._surge_left > 0:
                self._surge_left -= 1
                self._start(transient=True)
        return future

    @property
    def cpu_s(self) -> float:
        """CPU time the jobs have used so far, in seconds (what the autoscaler weighs: guests
        that compute need CPUs, guests that wait need threads)."""
        with self._ready:
            return self._cpu_s

    def waiting(self) -> dict[str, int]:
        """Jobs not yet started, per tenant."""
        with self._ready:
            return {tenant: len(line) for tenant, line in self._lines.items() if line}

    def close(self) -> None:
        """Finish the jobs already submitted, then stop the threads."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()
            threads = list(self._threads)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join()

    def _start(self, *, transient: bool) -> None:
        thread = threading.Thread(
            target=self._work,
            args=(transient,),
            name=f"{self._name}_{'surge' if transient else len(self._threads)}",
            daemon=True,
        )
        self._threads.append(thread)
        thread.start()

    def _next(self, transient: bool) -> tuple[str, Callable[[], Any], Future[Any]] | None:
        """The next job, of the waiting tenant with the fewest jobs running; None: stop."""
        with self._ready:
            while not self._turns:
                if self._closed or transient:
                    return None
                self._idle += 1
                self._ready.wait()
            # The first in turn among those with the fewest running (min keeps the first).
            tenant = min(self._turns, key=self._running.__getitem__)
            if transient and self._running[tenant]:
                return None  # surge threads are for tenants with nothing running, no one else
            self._turns.remove(tenant)
            line = self._lines[tenant]
            fn, future = line.popleft()
            if line:  # its next job waits for every other tenant's turn first
                self._turns.append(tenant)
            else:
                del self._lines[tenant]
            self._running[tenant] += 1
            return tenant, fn, future

    def _work(self, transient: bool) -> None:
        nice = self._surge_nice if transient else self._nice
        if nice is not None:
            try:  # per thread: on Linux a thread id is a process id to setpriority
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
            except (OSError, AttributeError):  # not Linux, or not allowed: run as it is
                pass
        try:
            while (job := self._next(transient)) is not None:
                tenant, fn, future = job
                began = time.thread_time()
                try:
                    _run(fn, future)
                finally:
                    with self._ready:
                        self._cpu_s += time.thread_time() - began
                        self._running[tenant] -= 1
                        if not self._running[tenant]:
                            del self._running[tenant]
        finally:
            with self._ready:
                self._threads.remove(threading.current_thread())
                if transient:
                    self._surge_left += 1


def _run(fn: Callable[[], T], future: Future[T]) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        future.set_result(fn())
    except BaseException as error:  # the submitter hears it; the thread lives on
        future.set_exception(error)
