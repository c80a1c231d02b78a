"""Settings come from JOBICO_* variables once, with named defaults and clear errors."""

import pytest

from jobico.config import Settings
from jobico.errors import InvalidInput
from jobico.model import Limits


def test_defaults_apply_when_nothing_is_set(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = Settings.from_env({})
    assert s.home == tmp_path / ".jobico"
    assert (s.port, s.namespace, s.dashboard, s.local_puts) == (8000, "jobico", True, True)


def test_variables_override_defaults(tmp_path):
    s = Settings.from_env(
        {
            "JOBICO_HOME": str(tmp_path),
            "JOBICO_PORT": "9001",
            "JOBICO_DASHBOARD": "0",
            "JOBICO_LOCAL_PUTS": "0",
        }
    )
    assert (s.home, s.port, s.dashboard, s.local_puts) == (tmp_path, 9001, False, False)


def test_a_bad_number_is_refused_naming_the_variable():
    with pytest.raises(InvalidInput, match="JOBICO_PORT"):
        Settings.from_env({"JOBICO_PORT": "eighty"})


@pytest.mark.parametrize("name", ["JOBICO_EXECUTORS_BUSY_CPU", "JOBICO_EXECUTORS_GUEST_SHARE"])
@pytest.mark.parametrize("raw", ["85", "-0.1"])
def test_a_share_outside_0_to_1_is_refused_naming_the_variable(name, raw):
    with pytest.raises(InvalidInput, match=f"{name} must be a fraction from 0 to 1"):
        Settings.from_env({name: raw})


def test_guest_limit_defaults_and_maxima_come_from_their_variables():
    s = Settings.from_env(
        {
            "JOBICO_DEFAULT_RESULT_KB": "10",
            "JOBICO_DEFAULT_LOG_KB": "20",
            "JOBICO_DEFAULT_FUEL": "5000",
            "JOBICO_MAX_TIMEOUT_MS": "1000",
            "JOBICO_MAX_MEMORY_MB": "32",
            "JOBICO_MAX_FUEL": "9000",
            "JOBICO_MAX_RESULT_KB": "40",
            "JOBICO_MAX_LOG_KB": "50",
        }
    )
    assert (s.default_result_kb, s.default_log_kb, s.default_fuel) == (10, 20, 5000)
    assert s.limit_maxima == Limits(
        timeout_ms=1000, memory_mb=32, fuel=9000, result_kb=40, log_kb=50
    )


def test_fuel_has_neither_default_nor_maximum_unless_set():
    s = Settings.from_env({"JOBICO_MAX_FUEL": ""})
    assert (s.default_fuel, s.max_fuel, s.limit_maxima.fuel) == (None, None, None)


@pytest.mark.parametrize(
    ("raw", "on"),
    [("1", True), ("On", True), ("TRUE", True), ("0", False), ("False", False), ("", True)],
)
def test_a_flag_reads_the_usual_spellings_and_empty_as_its_default(raw, on):
    assert Settings.from_env({"JOBICO_LOCAL_PUTS": raw}).local_puts is on


def test_a_flag_that_is_neither_on_nor_off_is_refused_naming_the_variable():
    with pytest.raises(InvalidInput, match="JOBICO_ACCESS_LOG"):
        Settings.from_env({"JOBICO_ACCESS_LOG": "verbose"})


def test_the_dashboard_port_is_left_to_ray_and_the_connect_timeout_is_15_s_by_default():
    s = Settings.from_env({"JOBICO_DASHBOARD_PORT": ""})
    assert (s.dashboard_port, s.connect_timeout_s) == (None, 15.0)


def test_the_dashboard_port_and_connect_timeout_come_from_their_variables():
    s = Settings.from_env({"JOBICO_DASHBOARD_PORT": "18265", "JOBICO_CONNECT_TIMEOUT_S": "2.5"})
    assert (s.dashboard_port, s.connect_timeout_s) == (18265, 2.5)


@pytest.mark.parametrize("raw", ["0", "65536", "-1"])
def test_a_dashboard_port_outside_1_to_65535_is_refused_naming_the_variable(raw):
    with pytest.raises(InvalidInput, match="JOBICO_DASHBOARD_PORT must be a port"):
        Settings.from_env({"JOBICO_DASHBOARD_PORT": raw})


@pytest.mark.parametrize("raw", ["0", "-3", "inf", "nan"])
def test_a_connect_timeout_that_is_not_a_finite_time_above_0_is_refused(raw):
    with pytest.raises(InvalidInput, match="JOBICO_CONNECT_TIMEOUT_S must be above 0"):
        Settings.from_env({"JOBICO_CONNECT_TIMEOUT_S": raw})
