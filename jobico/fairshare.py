"""Guest threads shared fairly between tenants.

A plain thread pool serves jobs in arrival order, so a tenant that floods an executor with
slow events holds every thread and another tenant's events wait behind the whole flood. Here
each tenant has its own line of jobs and the threads take tenants in turn (round robin): a
tenant with work waits at most for the jobs already running, however deep anyone's backlog.
Jobs are short (a run's events are handed out a time slice at a time, see
`jobico.executor.Run`), so that wait stays short too.
"""

from __future__ import annotations

import collections
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class FairPool:
    """`threads` worker threads running jobs submitted per tenant, tenants taken in turn."""

    def __init__(self, threads: int, *, name: str = "guest", nice: int | None = None) -> None:
        """`nice`: the threads' CPU priority on Linux (19 is the lowest); None leaves it."""
        if threads < 1:
            raise ValueError(f"a pool needs at least one thread, got {threads}")
        self._lines: dict[str, collections.deque[tuple[Callable[[], Any], Future[Any]]]] = {}
        self._turns: collections.deque[str] = collections.deque()  # tenants with jobs waiting
        self._ready = threading.Condition()
        self._closed = False
        self._nice = nice
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}_{i}", daemon=True)
            for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, tenant: str, fn: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        with self._ready:
            if self._closed:
                raise RuntimeError("the pool is closed")
            line = self._lines.setdefault(tenant, collections.deque())
            if not line:
                self._turns.append(tenant)
            line.append((fn, future))
            self._ready.notify()
        return future

    def waiting(self) -> dict[str, int]:
        """Jobs not yet started, per tenant."""
        with self._ready:
            return {tenant: len(line) for tenant, line in self._lines.items() if line}

    def close(self) -> None:
        """Finish the jobs already submitted, then stop the threads."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join()

    def _next(self) -> tuple[Callable[[], Any], Future[Any]] | None:
        with self._ready:
            while not self._turns:
                if self._closed:
                    return None
                self._ready.wait()
            tenant = self._turns.popleft()
            line = self._lines[tenant]
            job = line.popleft()
            if line:  # its next job waits for every other tenant's turn first
                self._turns.append(tenant)
            else:
                del self._lines[tenant]
            return job

    def _work(self) -> None:
        if self._nice is not None:
            try:  # per thread: on Linux a thread id is a process id to setpriority
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self._nice)
            except (OSError, AttributeError):  # not Linux, or not allowed: run as it is
                pass
        while (job := self._next()) is not None:
            fn, future = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as error:  # the submitter hears it; the thread lives on
                future.set_exception(error)
