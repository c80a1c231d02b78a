"""The executor count follows the backlog: up at once, down one at a time after idling."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from jobico.config import Settings
from jobico.execution.autoscale import CpuMeter, Figures, Policy, Scaler, Scaling, backlog


def scaler() -> Scaler:
    return Scaler(Policy(minimum=1, maximum=4, backlog_per_executor=100, idle_s=30))


def test_the_count_rises_with_the_backlog_up_to_the_maximum() -> None:
    s = scaler()
    assert s.target(1, 0, now=0) == 1
    assert s.target(1, 250, now=1) == 3
    assert s.target(3, 10_000, now=2) == 4


def test_the_count_falls_one_step_per_idle_period_down_to_the_minimum() -> None:
    s = scaler()
    assert s.target(4, 0, now=0) == 4
    assert s.target(4, 0, now=29) == 4
    assert s.target(4, 0, now=30) == 3
    assert s.target(3, 0, now=45) == 3
    assert s.target(3, 0, now=60) == 2
    assert s.target(1, 0, now=500) == 1


def test_new_backlog_cancels_a_pending_scale_down() -> None:
    s = scaler()
    s.target(4, 0, now=0)
    assert s.target(4, 400, now=20) == 4
    assert s.target(4, 0, now=40) == 4  # the idle clock restarted at 40


def test_a_backlog_does_not_add_an_executor_where_there_is_no_room() -> None:
    s = scaler()
    assert s.target(1, 250, now=0, room=False) == 1
    assert s.target(1, 250, now=1, room=True) == 3


def test_no_room_still_lets_executors_go_when_idle_and_keeps_the_minimum() -> None:
    s = scaler()
    s.target(3, 0, now=0, room=False)
    assert s.target(3, 0, now=30, room=False) == 2
    assert s.target(0, 250, now=31, room=False) == 1


def stats(
    node: str, busy: float | None, guests: float, cpus: int = 2, name: str = "executor:0"
) -> dict[str, Any]:
    return {"name": name, "node": node, "cpus": cpus, "node_busy": busy, "guest_cpus": guests}


def test_a_node_is_full_when_its_cpus_are_busy_and_guests_use_a_good_part_of_them() -> None:
    s = scaler()
    assert s.full_nodes([stats("n1", 0.95, 0.9)]) == {"n1"}
    # Busy, but not with guests (the platform's own work, or guests that wait): more
    # executors bring more threads for guests that wait.
    assert s.full_nodes([stats("n1", 0.95, 0.1)]) == set()
    # Guests computing, but CPU to spare (a big node): another executor can use it.
    assert s.full_nodes([stats("n1", 0.5, 4.0, cpus=16)]) == set()


def test_guest_cpu_adds_up_over_a_nodes_executors_and_nodes_are_judged_apart() -> None:
    s = scaler()
    two = [stats("n1", 0.9, 0.3, name="executor:0"), stats("n1", 0.9, 0.3, name="executor:2")]
    assert s.full_nodes([*two, stats("n2", 0.3, 0.0, name="executor:1")]) == {"n1"}


def test_executors_without_figures_yet_are_left_out() -> None:
    assert scaler().full_nodes([stats("n1", None, 0.0)]) == set()


def test_the_cpu_meter_reads_busy_time_between_readings() -> None:
    lines = iter([
        "cpu  100 0 100 700 100 0 0 0 0 0\n",
        "cpu  250 0 150 750 150 0 0 0 0 0\n",  # +200 busy, +100 idle
    ])  # fmt: skip
    meter = CpuMeter(read=lambda: next(lines))
    assert meter.busy() is None  # nothing to compare with yet
    assert meter.busy() == pytest.approx(2 / 3)


def test_the_cpu_meter_says_nothing_where_there_is_no_proc_stat() -> None:
    assert CpuMeter(read=lambda: None).busy() is None


class Fleet:
    """Executors as the supervisor's decision sees them: `count` running, executor n placed on
    `nodes[n % len(nodes)]`, each reporting the figures in `figures` (or an error)."""

    def __init__(self, count: int, nodes: list[str], figures: list[Any] | None = None) -> None:
        self.running, self.nodes = count, nodes
        self.figures: list[Any] = figures or []
        self.asked = 0

    def count(self) -> int:
        return self.running

    async def stats(self) -> Mapping[str, Mapping[str, Any] | BaseException]:
        self.asked += 1
        return {f"executor:{n}": s for n, s in enumerate(self.figures)}

    def node_of(self, index: int) -> str:
        return self.nodes[index % len(self.nodes)]


def queues(*depths: int) -> Figures:
    """Figures of one queue per tenant, `depths[i]` events waiting in tenant i's."""
    return {f"t{i}": {"q": {"depth": d, "leased": 0}} for i, d in enumerate(depths)}


def decide(s: Scaler, figures: Figures, fleet: Fleet, now: float) -> Scaling:
    return asyncio.run(s.decide(figures, fleet, now))


def test_the_backlog_is_every_tenants_waiting_events() -> None:
    assert backlog(queues(120, 0, 130)) == 250
    assert backlog({"t0": {"a": {"depth": 3}, "b": {"depth": 4}}}) == 7
    assert backlog({}) == 0


def test_a_new_backlog_waits_one_tick_then_adds_executors_where_there_is_room() -> None:
    # Executors measure their last second: the tick the backlog appears, their figures still
    # show the quiet second before it.
    s, fleet = scaler(), Fleet(1, ["n0", "n1"], [stats("n0", 0.2, 0.1)])
    assert decide(s, queues(250), fleet, now=0) == Scaling(backlog=250, target=1, held=False)
    assert decide(s, queues(250), fleet, now=1) == Scaling(backlog=250, target=3, held=False)


def test_no_executor_is_added_onto_a_node_full_of_guests_and_status_says_why() -> None:
    s = scaler()
    fleet = Fleet(1, ["n0", "n1"], [stats("n0", 0.2, 0.1), stats("n1", 0.95, 1.0)])
    decide(s, queues(250), fleet, now=0)
    assert decide(s, queues(250), fleet, now=1) == Scaling(backlog=250, target=1, held=True)


def test_a_node_full_of_guests_does_not_hold_an_executor_bound_for_another_node() -> None:
    s = scaler()
    fleet = Fleet(1, ["n0", "n1"], [stats("n0", 0.95, 1.0)])  # the next one goes to n1
    decide(s, queues(250), fleet, now=0)
    assert decide(s, queues(250), fleet, now=1) == Scaling(backlog=250, target=3, held=False)


def test_executors_that_did_not_answer_are_left_out_of_the_room_check() -> None:
    s = scaler()
    fleet = Fleet(1, ["n0"], [stats("n0", 0.95, 1.0), RuntimeError("executor restarting")])
    decide(s, queues(250), fleet, now=0)
    assert decide(s, queues(250), fleet, now=1).held
    fleet.figures = [RuntimeError("executor restarting")]
    assert decide(s, queues(250), fleet, now=2) == Scaling(backlog=250, target=3, held=False)


def test_executors_are_asked_for_their_figures_only_while_the_backlog_calls_for_more() -> None:
    s, fleet = scaler(), Fleet(2, ["n0"], [stats("n0", 0.2, 0.1)])
    for now in range(3):
        decide(s, queues(150), fleet, now=now)  # two executors are what 150 events call for
    assert fleet.asked == 0
    decide(s, queues(400), fleet, now=3)
    decide(s, queues(400), fleet, now=4)
    assert fleet.asked == 1  # the first tick waits; the second looks


def test_an_idle_platform_goes_down_one_executor_per_idle_period_to_the_minimum() -> None:
    s, fleet = scaler(), Fleet(3, ["n0"])
    targets = []
    for now in (0, 29, 30, 59, 60, 90, 120):
        targets.append(decide(s, queues(0, 0), fleet, now=now).target)
        fleet.running = targets[-1]
    assert targets == [3, 3, 2, 2, 1, 1, 1]
    assert fleet.asked == 0


def test_the_policy_is_read_from_the_settings() -> None:
    settings = Settings(
        executors_min=2,
        executors_max=5,
        backlog_per_executor=7,
        executors_idle_s=3.0,
        executors_busy_cpu=0.5,
        executors_guest_share=0.1,
    )
    assert Policy.of(settings) == Policy(
        minimum=2, maximum=5, backlog_per_executor=7, idle_s=3.0, busy_cpu=0.5, guest_share=0.1
    )
