"""A recorded embedded Ray that is down is told apart from a running one by its processes,
what is left of it is killed by its session, never another process, and a new daemon is
launched and waited for. Stand-ins play the daemon (a session leader) and its GCS and raylet
(processes in that session): no Ray."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from jobico import localnode
from jobico.cli.main import main
from jobico.errors import Unavailable
from tests.conftest import wait_for

_LEADER = (
    "import subprocess, time\n"
    "kids = [subprocess.Popen(['sleep', '300']) for _ in range(2)]\n"
    "print(*(k.pid for k in kids), flush=True)\n"
    "time.sleep(300)\n"
)
# A daemon that records itself as the daemon's shell does once its Ray runs, and stays.
_RECORDING_DAEMON = (
    "import sys, time\n"
    "from pathlib import Path\n"
    "from jobico import localnode\n"
    "localnode.write_state(Path(sys.argv[1]), localnode.daemon_state('127.0.0.1:1', None))\n"
    "time.sleep(300)\n"
)


@pytest.fixture
def ray_standin(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A state file naming a live 'daemon' that leads a session holding a 'GCS' and a 'raylet'."""
    leader = subprocess.Popen(
        [sys.executable, "-c", _LEADER], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert leader.stdout is not None
    gcs, raylet = map(int, leader.stdout.readline().split())
    state: dict[str, Any] = {"pid": leader.pid, "address": "127.0.0.1:1"}
    state |= {"started": localnode.started(leader.pid)}
    state |= {"gcs_pid": gcs, "gcs_started": localnode.started(gcs)}
    state |= {"raylet_pid": raylet, "raylet_started": localnode.started(raylet)}
    localnode.state_file(tmp_path).parent.mkdir(parents=True)
    localnode.write_state(tmp_path, state)
    yield state
    _kill_session(leader)


def _kill_session(leader: subprocess.Popen[Any]) -> None:
    try:
        os.killpg(leader.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    leader.wait()


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not localnode.alive(pid), what=f"pid {pid} to die")


def test_a_recorded_ray_whose_processes_all_run_is_not_down(ray_standin: dict[str, Any]) -> None:
    assert localnode.gone(ray_standin) is None


@pytest.mark.parametrize(("what", "key"), [("GCS", "gcs_pid"), ("raylet", "raylet_pid")])
def test_a_recorded_ray_whose_gcs_or_raylet_was_killed_is_down_naming_it(
    ray_standin: dict[str, Any], what: str, key: str
) -> None:
    _kill(ray_standin[key])
    assert localnode.gone(ray_standin) == f"its {what} (pid {ray_standin[key]}) is gone"


def test_a_recorded_pid_that_now_names_another_process_counts_as_gone(
    ray_standin: dict[str, Any],
) -> None:
    assert localnode.gone({**ray_standin, "gcs_started": ray_standin["gcs_started"] + 1})


def test_stopping_a_ray_that_is_down_kills_every_process_left_in_its_session(
    ray_standin: dict[str, Any], tmp_path: Path
) -> None:
    _kill(ray_standin["gcs_pid"])
    assert localnode.stop(tmp_path, timeout_s=5) is True
    assert not localnode.alive(ray_standin["pid"])
    assert not localnode.alive(ray_standin["raylet_pid"])
    assert not localnode.state_file(tmp_path).exists()


def test_nothing_is_killed_when_the_recorded_daemon_pid_names_another_process(
    ray_standin: dict[str, Any], tmp_path: Path
) -> None:
    foreign = {**ray_standin, "started": ray_standin["started"] + 1}
    localnode.write_state(tmp_path, foreign)
    assert localnode.stop(tmp_path, timeout_s=5) is False
    assert all(localnode.alive(ray_standin[k]) for k in ("pid", "gcs_pid", "raylet_pid"))


def test_a_command_on_a_home_whose_gcs_is_gone_exits_6_at_once_naming_it(
    ray_standin: dict[str, Any], tmp_path: Path
) -> None:
    _kill(ray_standin["gcs_pid"])
    result = CliRunner().invoke(main, ["packages"], env={"JOBICO_HOME": str(tmp_path)})
    assert result.exit_code == 6
    assert f"its GCS (pid {ray_standin['gcs_pid']}) is gone" in result.output
    assert str(localnode.state_file(tmp_path)) in result.output
    assert "run `jobico up`" in result.output


def test_down_on_a_home_whose_raylet_is_gone_kills_what_is_left_without_waiting_on_ray(
    ray_standin: dict[str, Any], tmp_path: Path
) -> None:
    _kill(ray_standin["raylet_pid"])
    result = CliRunner().invoke(main, ["down"], env={"JOBICO_HOME": str(tmp_path)})
    assert (result.exit_code, result.output.strip()) == (0, "Jobico stopped")
    assert not localnode.alive(ray_standin["pid"])
    assert not localnode.alive(ray_standin["gcs_pid"])


def test_launching_over_a_ray_that_runs_starts_nothing_and_answers_its_state(
    ray_standin: dict[str, Any], tmp_path: Path
) -> None:
    starting = localnode.launch(tmp_path, dashboard=False, port=1)
    assert starting.daemon is None
    assert starting.wait() == ray_standin


def test_launching_over_a_ray_that_is_down_kills_what_is_left_before_the_new_daemon_starts(
    ray_standin: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _kill(ray_standin["gcs_pid"])
    # The stand-in daemon in place of `python -m jobico.actors.localray`: no Ray.
    monkeypatch.setattr(localnode, "_daemon_command", lambda *_: [sys.executable, "-c", "pass"])
    starting = localnode.launch(tmp_path, dashboard=False, port=1)
    assert starting.daemon is not None
    starting.daemon.wait()
    assert not localnode.alive(ray_standin["pid"])
    assert not localnode.alive(ray_standin["raylet_pid"])
    assert starting.replaced is not None
    assert f"its GCS (pid {ray_standin['gcs_pid']}) is gone" in starting.replaced
    assert "killed what was left of it (2 processes)" in starting.replaced


def test_waiting_on_a_launched_daemon_answers_the_state_it_records(tmp_path: Path) -> None:
    localnode.state_file(tmp_path).parent.mkdir(parents=True)
    daemon = subprocess.Popen([sys.executable, "-c", _RECORDING_DAEMON, str(tmp_path)])
    try:
        state = localnode.Starting(tmp_path, daemon, replaced="an old one").wait(timeout_s=30)
        assert (state["pid"], state["address"], state["replaced"]) == (
            daemon.pid,
            "127.0.0.1:1",
            "an old one",
        )
        assert state["started"] == localnode.started(daemon.pid)
    finally:
        daemon.kill()
        daemon.wait()


def test_a_daemon_that_exits_before_recording_fails_the_wait_with_its_log(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "ray.log").write_text("RuntimeError: no room for the GCS\n")
    daemon = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    started = time.monotonic()
    with pytest.raises(Unavailable, match="failed to start:\nRuntimeError: no room for the GCS"):
        localnode.Starting(tmp_path, daemon).wait(timeout_s=30)
    assert time.monotonic() - started < 10  # the exit is noticed, not the timeout waited out


def test_a_daemon_that_never_records_fails_the_wait_after_the_timeout(tmp_path: Path) -> None:
    daemon = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        with pytest.raises(Unavailable, match=r"did not start within 0 s; see .*ray\.log"):
            localnode.Starting(tmp_path, daemon).wait(timeout_s=0.2)
    finally:
        daemon.kill()
        daemon.wait()


def test_until_answers_the_first_true_answer_or_the_last_one_at_the_deadline() -> None:
    answers = iter([0, None, 7, 8])
    assert localnode.until(lambda: next(answers), 5, pause_s=0) == 7
    assert localnode.until(lambda: False, 0.05, pause_s=0.01) is False


def test_a_running_ray_that_stops_before_the_wait_fails_it_saying_so(tmp_path: Path) -> None:
    with pytest.raises(Unavailable, match="stopped; run `jobico up` again"):
        localnode.Starting(tmp_path, None).wait()
