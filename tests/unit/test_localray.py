"""A recorded embedded Ray that is down is told apart from a running one by its processes,
and what is left of it is killed by its session, never another process. Stand-ins play the
daemon (a session leader) and its GCS and raylet (processes in that session): no Ray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from jobico.actors import localray
from jobico.cli.main import main
from tests.conftest import wait_for

_LEADER = (
    "import subprocess, time\n"
    "kids = [subprocess.Popen(['sleep', '300']) for _ in range(2)]\n"
    "print(*(k.pid for k in kids), flush=True)\n"
    "time.sleep(300)\n"
)


@pytest.fixture
def ray_standin(tmp_path: Path) -> Iterator[dict]:
    """A state file naming a live 'daemon' that leads a session holding a 'GCS' and a 'raylet'."""
    leader = subprocess.Popen(
        [sys.executable, "-c", _LEADER], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    gcs, raylet = map(int, leader.stdout.readline().split())
    state = {"pid": leader.pid, "address": "127.0.0.1:1", "started": localray._started(leader.pid)}
    state |= {"gcs_pid": gcs, "gcs_started": localray._started(gcs)}
    state |= {"raylet_pid": raylet, "raylet_started": localray._started(raylet)}
    localray.state_file(tmp_path).parent.mkdir(parents=True)
    localray.state_file(tmp_path).write_text(json.dumps(state))
    yield state
    try:
        os.killpg(leader.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    leader.wait()


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not localray._alive(pid), what=f"pid {pid} to die")


def test_a_recorded_ray_whose_processes_all_run_is_not_down(ray_standin):
    assert localray.gone(ray_standin) is None


@pytest.mark.parametrize(("what", "key"), [("GCS", "gcs_pid"), ("raylet", "raylet_pid")])
def test_a_recorded_ray_whose_gcs_or_raylet_was_killed_is_down_naming_it(ray_standin, what, key):
    _kill(ray_standin[key])
    assert localray.gone(ray_standin) == f"its {what} (pid {ray_standin[key]}) is gone"


def test_a_recorded_pid_that_now_names_another_process_counts_as_gone(ray_standin):
    assert localray.gone({**ray_standin, "gcs_started": ray_standin["gcs_started"] + 1})


def test_stopping_a_ray_that_is_down_kills_every_process_left_in_its_session(ray_standin, tmp_path):
    _kill(ray_standin["gcs_pid"])
    assert localray.stop(tmp_path, timeout_s=5) is True
    assert not localray._alive(ray_standin["pid"])
    assert not localray._alive(ray_standin["raylet_pid"])
    assert not localray.state_file(tmp_path).exists()


def test_nothing_is_killed_when_the_recorded_daemon_pid_names_another_process(
    ray_standin, tmp_path
):
    foreign = {**ray_standin, "started": ray_standin["started"] + 1}
    localray.state_file(tmp_path).write_text(json.dumps(foreign))
    assert localray.stop(tmp_path, timeout_s=5) is False
    assert all(localray._alive(ray_standin[k]) for k in ("pid", "gcs_pid", "raylet_pid"))


def test_a_command_on_a_home_whose_gcs_is_gone_exits_6_at_once_naming_it(ray_standin, tmp_path):
    _kill(ray_standin["gcs_pid"])
    result = CliRunner().invoke(main, ["packages"], env={"JOBICO_HOME": str(tmp_path)})
    assert result.exit_code == 6
    assert f"its GCS (pid {ray_standin['gcs_pid']}) is gone" in result.output
    assert str(localray.state_file(tmp_path)) in result.output
    assert "run `jobico up`" in result.output


def test_down_on_a_home_whose_raylet_is_gone_kills_what_is_left_without_waiting_on_ray(
    ray_standin, tmp_path
):
    _kill(ray_standin["raylet_pid"])
    result = CliRunner().invoke(main, ["down"], env={"JOBICO_HOME": str(tmp_path)})
    assert (result.exit_code, result.output.strip()) == (0, "Jobico stopped")
    assert not localray._alive(ray_standin["pid"])
    assert not localray._alive(ray_standin["gcs_pid"])
