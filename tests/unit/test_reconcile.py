"""The reconcile at control's start: every tenant's queue ensured (side by side, every one even
when another fails), then pub/sub brought in line with the registry: what it lacks or holds at
another number published, what the registry no longer has unpublished, nothing else."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

import pytest

from jobico.control import reconcile
from jobico.control.reconcile import ensure_all
from jobico.errors import Unavailable
from jobico.model import Revision
from tests.unit.test_control import package


def revision(tenant: str, name: str, number: int) -> Revision:
    spec = package(tenant=tenant, id=name)
    return Revision(tenant=tenant, package=name, number=number, spec=spec, files={}, created_at=1.0)


class Registry:
    """The registry as the reconcile reads it: tenants deployed to, live packages' revisions."""

    def __init__(self, *revs: Revision, tenants: list[str] | None = None) -> None:
        self.revs = list(revs)
        self._tenants = tenants

    def tenants(self) -> list[str]:
        return self._tenants if self._tenants is not None else sorted({r.tenant for r in self.revs})

    def current(self) -> list[Revision]:
        return self.revs


class Queues:
    """Queue actors that answer, or fail `failures[tenant]` times first; `steps` is shared
    with the pub/sub fake, to see what came first."""

    def __init__(self, steps: list[str], failures: Mapping[str, int] | None = None) -> None:
        self.steps, self.failures = steps, dict(failures or {})
        self.ensured: list[str] = []
        self._lock = threading.Lock()

    def ensure(self, tenant: str) -> None:
        with self._lock:
            if self.failures.get(tenant, 0) > 0:
                self.failures[tenant] -= 1
                raise Unavailable(f"queue of {tenant} restarting")
            self.ensured.append(tenant)
            self.steps.append(f"ensure {tenant}")


class PubSub:
    """The `packages` topic: its items, and each publish made."""

    def __init__(self, steps: list[str], items: Mapping[str, dict[str, Any] | None]) -> None:
        self.steps, self.items = steps, dict(items)
        self.published: dict[str, int | None] = {}

    def changes(self) -> Mapping[str, Mapping[str, Any] | None]:
        return dict(self.items)

    def publish(self, tenant: str, package: str, rev: Revision | None) -> None:
        key = f"{tenant}/{package}"
        self.items[key] = rev.to_dict() if rev else None
        self.published[key] = rev.number if rev else None
        self.steps.append(f"publish {key}")


def test_a_revision_written_but_never_published_is_published() -> None:
    steps: list[str] = []
    pubsub = PubSub(steps, {})
    reconcile.reconcile(Registry(revision("t1", "p", 1)), Queues(steps), pubsub)
    assert pubsub.published == {"t1/p": 1}
    assert pubsub.items["t1/p"] == revision("t1", "p", 1).to_dict()


def test_a_package_published_at_another_number_is_published_at_the_registrys() -> None:
    # An update, or a rollback (a lower number published after a higher one never is), whose
    # publish was lost: the number differs, whichever way.
    steps: list[str] = []
    pubsub = PubSub(steps, {"t1/up": {"number": 1}, "t1/back": {"number": 5}})
    registry = Registry(revision("t1", "up", 2), revision("t1", "back", 3))
    reconcile.reconcile(registry, Queues(steps), pubsub)
    assert pubsub.published == {"t1/up": 2, "t1/back": 3}


def test_a_package_deleted_while_its_publish_was_lost_is_unpublished() -> None:
    steps: list[str] = []
    pubsub = PubSub(steps, {"t1/gone": {"number": 2}, "t1/kept": {"number": 1}})
    reconcile.reconcile(Registry(revision("t1", "kept", 1)), Queues(steps), pubsub)
    assert pubsub.published == {"t1/gone": None}
    assert pubsub.items["t1/gone"] is None


def test_what_pubsub_already_says_is_not_published_again() -> None:
    steps: list[str] = []
    pubsub = PubSub(steps, {"t1/p": {"number": 4}, "t1/deleted": None})
    reconcile.reconcile(Registry(revision("t1", "p", 4)), Queues(steps), pubsub)
    assert pubsub.published == {}


def test_every_tenants_queue_is_ensured_before_anything_is_published() -> None:
    # A listener that learns of a package puts its events into the tenant's queue at once.
    steps: list[str] = []
    registry = Registry(revision("t1", "p", 1), revision("t2", "q", 1), tenants=["t1", "t2", "t3"])
    reconcile.reconcile(registry, Queues(steps), PubSub(steps, {}))
    assert sorted(steps[:3]) == ["ensure t1", "ensure t2", "ensure t3"]
    assert sorted(steps[3:]) == ["publish t1/p", "publish t2/q"]


class Overlapping:
    """Queue actors that each answer only once `expected` ensures are under way together: one
    ensure after another never gets there, and breaks the barrier instead."""

    def __init__(self, expected: int) -> None:
        self.barrier = threading.Barrier(expected, timeout=10)
        self.most, self._active, self._lock = 0, 0, threading.Lock()

    def ensure(self, tenant: str) -> None:
        with self._lock:
            self._active += 1
            self.most = max(self.most, self._active)
        self.barrier.wait()
        with self._lock:
            self._active -= 1


def test_the_tenants_queues_are_ensured_side_by_side_not_one_after_another() -> None:
    queues = Overlapping(expected=5)
    ensure_all(queues, [f"t{n}" for n in range(5)])
    assert queues.most == 5


def test_side_by_side_ensures_are_bounded_by_the_workers_given() -> None:
    queues = Overlapping(expected=2)
    ensure_all(queues, [f"t{n}" for n in range(6)], workers=2)
    assert queues.most == 2


def test_one_failing_ensure_does_not_keep_the_other_tenants_queues_from_being_ensured() -> None:
    queues = Queues([], failures={"t2": 1})
    with pytest.raises(Unavailable, match="t2"):
        ensure_all(queues, ["t1", "t2", "t3"])
    assert sorted(queues.ensured) == ["t1", "t3"]


def test_a_queue_that_fails_at_first_is_ensured_on_a_later_attempt_and_all_is_published(
    caplog: pytest.LogCaptureFixture,
) -> None:
    steps: list[str] = []
    queues, pubsub = Queues(steps, failures={"t2": 2}), PubSub(steps, {})
    registry = Registry(revision("t1", "p", 1), revision("t2", "q", 1))
    slept: list[float] = []
    with caplog.at_level(logging.WARNING):
        done = reconcile.at_start(
            lambda: reconcile.reconcile(registry, queues, pubsub), sleep=slept.append
        )
    assert done and slept == [0.2, 0.5]
    assert "t2" in queues.ensured and pubsub.published == {"t1/p": 1, "t2/q": 1}
    assert "reconcile at start failed (queue of t2 restarting); again in 0.2 s" in caplog.text


def test_a_reconcile_that_never_succeeds_is_logged_and_does_not_fail_controls_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def away() -> None:
        raise Unavailable("pubsub restarting")

    slept: list[float] = []
    assert reconcile.at_start(away, sleep=slept.append) is False
    assert slept == list(reconcile.AT_START)
    assert "control started without reconciling (pubsub restarting)" in caplog.text


def test_an_error_that_is_not_jobicos_is_not_retried_at_start() -> None:
    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        raise TypeError("a bug")

    with pytest.raises(TypeError):
        reconcile.at_start(broken, sleep=lambda _: None)
    assert calls == [1]
