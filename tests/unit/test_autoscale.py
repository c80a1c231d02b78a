"""The executor count follows the backlog: up at once, down one at a time after idling."""

from jobico.autoscale import Policy, Scaler


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
