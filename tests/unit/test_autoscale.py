"""The executor count follows the backlog: up at once, down one at a time after idling."""

import pytest

from jobico.execution.autoscale import CpuMeter, Policy, Scaler


def scaler() -> Scaler:
    return Scaler(Policy(minimum=1, maximum=4, backlog_per_executor=100, idle_s=30))


def test_the_count_rises_with_the_backlog_up_to_the_maximum():
    s = scaler()
    assert s.target(1, 0, now=0) == 1
    assert s.target(1, 250, now=1) == 3
    assert s.target(3, 10_000, now=2) == 4


def test_the_count_falls_one_step_per_idle_period_down_to_the_minimum():
    s = scaler()
    assert s.target(4, 0, now=0) == 4
    assert s.target(4, 0, now=29) == 4
    assert s.target(4, 0, now=30) == 3
    assert s.target(3, 0, now=45) == 3
    assert s.target(3, 0, now=60) == 2
    assert s.target(1, 0, now=500) == 1


def test_new_backlog_cancels_a_pending_scale_down():
    s = scaler()
    s.target(4, 0, now=0)
    assert s.target(4, 400, now=20) == 4
    assert s.target(4, 0, now=40) == 4  # the idle clock restarted at 40


def test_a_backlog_does_not_add_an_executor_where_there_is_no_room():
    s = scaler()
    assert s.target(1, 250, now=0, room=False) == 1
    assert s.target(1, 250, now=1, room=True) == 3


def test_no_room_still_lets_executors_go_when_idle_and_keeps_the_minimum():
    s = scaler()
    s.target(3, 0, now=0, room=False)
    assert s.target(3, 0, now=30, room=False) == 2
    assert s.target(0, 250, now=31, room=False) == 1


def stats(node, busy, guests, cpus=2, name="executor:0"):
    return {"name": name, "node": node, "cpus": cpus, "node_busy": busy, "guest_cpus": guests}


def test_a_node_is_full_when_its_cpus_are_busy_and_guests_use_a_good_part_of_them():
    s = scaler()
    assert s.full_nodes([stats("n1", 0.95, 0.9)]) == {"n1"}
    # Busy, but not with guests (the platform's own work, or guests that wait): more
    # executors bring more threads for guests that wait.
    assert s.full_nodes([stats("n1", 0.95, 0.1)]) == set()
    # Guests computing, but CPU to spare (a big node): another executor can use it.
    assert s.full_nodes([stats("n1", 0.5, 4.0, cpus=16)]) == set()


def test_guest_cpu_adds_up_over_a_nodes_executors_and_nodes_are_judged_apart():
    s = scaler()
    two = [stats("n1", 0.9, 0.3, name="executor:0"), stats("n1", 0.9, 0.3, name="executor:2")]
    assert s.full_nodes([*two, stats("n2", 0.3, 0.0, name="executor:1")]) == {"n1"}


def test_executors_without_figures_yet_are_left_out():
    assert scaler().full_nodes([stats("n1", None, 0.0)]) == set()


def test_the_cpu_meter_reads_busy_time_between_readings():
    lines = iter([
        "cpu  100 0 100 700 100 0 0 0 0 0\n",
        "cpu  250 0 150 750 150 0 0 0 0 0\n",  # +200 busy, +100 idle
    ])  # fmt: skip
    meter = CpuMeter(read=lambda: next(lines))
    assert meter.busy() is None  # nothing to compare with yet
    assert meter.busy() == pytest.approx(2 / 3)


def test_the_cpu_meter_says_nothing_where_there_is_no_proc_stat():
    assert CpuMeter(read=lambda: None).busy() is None
