"""Settings come from JOBICO_* variables once, with named defaults and clear errors."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from jobico.config import Settings
from jobico.errors import InvalidInput
from jobico.model import Limits
from tests.conftest import ROOT

# The variables as README.md and docs/operating.md name them, and the field each one sets.
VARIABLES = {
    "JOBICO_HOME": "home",
    "JOBICO_NAMESPACE": "namespace",
    "JOBICO_HOST": "host",
    "JOBICO_PORT": "port",
    "JOBICO_EXECUTORS_MIN": "executors_min",
    "JOBICO_EXECUTORS_MAX": "executors_max",
    "JOBICO_BACKLOG_PER_EXECUTOR": "backlog_per_executor",
    "JOBICO_EXECUTORS_IDLE_S": "executors_idle_s",
    "JOBICO_EXECUTORS_BUSY_CPU": "executors_busy_cpu",
    "JOBICO_EXECUTORS_GUEST_SHARE": "executors_guest_share",
    "JOBICO_GUEST_THREADS": "guest_threads",
    "JOBICO_LISTENER_REPLICAS": "listener_replicas",
    "JOBICO_LOCAL_PUTS": "local_puts",
    "JOBICO_LEASE_TIMEOUT_MS": "lease_timeout_ms",
    "JOBICO_DEFAULT_TIMEOUT_MS": "guest_defaults.timeout_ms",
    "JOBICO_DEFAULT_MEMORY_MB": "guest_defaults.memory_mb",
    "JOBICO_DEFAULT_FUEL": "guest_defaults.fuel",
    "JOBICO_DEFAULT_RESULT_KB": "guest_defaults.result_kb",
    "JOBICO_DEFAULT_LOG_KB": "guest_defaults.log_kb",
    "JOBICO_MAX_TIMEOUT_MS": "guest_maxima.timeout_ms",
    "JOBICO_MAX_MEMORY_MB": "guest_maxima.memory_mb",
    "JOBICO_MAX_FUEL": "guest_maxima.fuel",
    "JOBICO_MAX_RESULT_KB": "guest_maxima.result_kb",
    "JOBICO_MAX_LOG_KB": "guest_maxima.log_kb",
    "JOBICO_MAX_BODY_KB": "max_body_kb",
    "JOBICO_DEPLOY_CHECK_S": "deploy_check_s",
    "JOBICO_MAX_MODULE_MB": "max_module_mb",
    "JOBICO_IDEMPOTENCY_TTL_S": "idempotency_ttl_s",
    "JOBICO_DASHBOARD": "dashboard",
    "JOBICO_DASHBOARD_PORT": "dashboard_port",
    "JOBICO_CONNECT_TIMEOUT_S": "connect_timeout_s",
    "JOBICO_ACCESS_LOG": "access_log",
    "JOBICO_RECORDS": "records",
    "JOBICO_QUOTA_EVENTS_PER_S": "quota_events_per_s",
    "JOBICO_QUOTA_REPOSITORY_MB": "quota_repository_mb",
    "JOBICO_QUOTA_PACKAGES": "quota_packages",
    "JOBICO_CACHE_SCHEMAS": "cache_schemas",
    "JOBICO_CACHE_QUEUES": "cache_queues",
    "JOBICO_CACHE_REVISIONS": "cache_revisions",
    "JOBICO_CACHE_MODULES": "cache_modules",
    "JOBICO_CACHE_INSTANCES": "cache_instances",
    "JOBICO_GRANT_TTL_S": "grant_ttl_s",
    "JOBICO_STATE_RESOURCE": "state_resource",
    "JOBICO_PROXY_LOCATION": "proxy_location",
    "RAY_ADDRESS": "ray_address",
}
READ_ELSEWHERE = {"JOBICO_TOKEN", "JOBICO_TOKEN_FILE"}  # by jobico.access.auth, for the CLI


def at(settings: Settings, path: str) -> object:
    value: object = settings
    for part in path.split("."):
        value = getattr(value, part)
    return value


def setting(settings: Settings, path: str, value: object) -> Settings:
    """`settings` with the field at `path` (`guest_maxima.fuel`) set to `value`."""
    name, _, part = path.partition(".")
    if part:
        value = replace(getattr(settings, name), **{part: value})
    return replace(settings, **{name: value})  # type: ignore[arg-type]


def good_value(default: object, tmp_path: Path) -> tuple[str, object]:
    """A valid text for a field whose default is `default`, and what it reads as."""
    if isinstance(default, bool):
        return ("0", False) if default else ("yes", True)
    if isinstance(default, Path):
        return str(tmp_path), tmp_path
    if isinstance(default, float):
        return "0.5", 0.5
    if isinstance(default, str):
        return "elsewhere", "elsewhere"
    return "7", 7  # a whole number, or one unset by default (a port, fuel)


def test_each_variable_of_the_docs_sets_its_own_field() -> None:
    assert Settings.variables() == VARIABLES


@pytest.mark.parametrize(("name", "path"), VARIABLES.items())
def test_a_variable_sets_its_field_and_nothing_else(
    name: str, path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    base = Settings()
    raw, value = good_value(at(base, path), tmp_path)
    assert at(base, path) != value
    assert Settings.from_env({name: raw}) == setting(base, path, value)
    assert Settings.from_env({name: ""}) == Settings.from_env({name: " "}) == base  # the default


NOT_TEXT = [(n, p) for n, p in VARIABLES.items() if not isinstance(at(Settings(), p), str | Path)]


@pytest.mark.parametrize(("name", "path"), NOT_TEXT)
def test_a_variable_of_the_wrong_kind_is_refused_saying_what_it_must_be(
    name: str, path: str
) -> None:
    default = at(Settings(), path)
    if isinstance(default, bool):
        bad, want = "maybe", "1 or 0 (true/false, yes/no, on/off), got 'maybe'"
    elif isinstance(default, float):
        bad, want = "half", "a number, got 'half'"
    else:  # a whole number, or one unset by default (a port, fuel)
        bad, want = "seven", "a whole number, got 'seven'"
    with pytest.raises(InvalidInput) as refused:
        Settings.from_env({name: bad})
    assert refused.value.message == f"{name} must be {want}"


def test_the_docs_name_every_variable_and_no_variable_that_is_not_read() -> None:
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    text = "".join(doc.read_text() for doc in docs)
    named = set(re.findall(r"\b(?:JOBICO_[A-Z0-9_]*[A-Z0-9]|RAY_ADDRESS)\b", text))
    assert named - READ_ELSEWHERE == set(VARIABLES)


def test_defaults_apply_when_nothing_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    s = Settings.from_env({})
    assert s.home == tmp_path / ".jobico"
    assert (s.port, s.namespace, s.dashboard, s.local_puts) == (8000, "jobico", True, True)


def test_variables_override_defaults(tmp_path: Path) -> None:
    s = Settings.from_env(
        {
            "JOBICO_HOME": str(tmp_path),
            "JOBICO_PORT": "9001",
            "JOBICO_DASHBOARD": "0",
            "JOBICO_LOCAL_PUTS": "0",
        }
    )
    assert (s.home, s.port, s.dashboard, s.local_puts) == (tmp_path, 9001, False, False)


def test_a_bad_number_is_refused_naming_the_variable() -> None:
    with pytest.raises(InvalidInput, match="JOBICO_PORT"):
        Settings.from_env({"JOBICO_PORT": "eighty"})


@pytest.mark.parametrize("name", ["JOBICO_EXECUTORS_BUSY_CPU", "JOBICO_EXECUTORS_GUEST_SHARE"])
@pytest.mark.parametrize("raw", ["85", "-0.1"])
def test_a_share_outside_0_to_1_is_refused_naming_the_variable(name: str, raw: str) -> None:
    with pytest.raises(InvalidInput, match=f"{name} must be a fraction from 0 to 1"):
        Settings.from_env({name: raw})


def test_guest_limit_defaults_and_maxima_come_from_their_variables() -> None:
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
    assert s.guest_defaults == Limits(
        timeout_ms=10_000, memory_mb=64, fuel=5000, result_kb=10, log_kb=20
    )
    assert s.guest_maxima == Limits(
        timeout_ms=1000, memory_mb=32, fuel=9000, result_kb=40, log_kb=50
    )


def test_guest_limits_are_the_documented_ones_when_nothing_is_set() -> None:
    s = Settings.from_env({})
    assert s.guest_defaults == Limits(
        timeout_ms=10_000, memory_mb=64, fuel=None, result_kb=1024, log_kb=256
    )
    assert s.guest_maxima == Limits(
        timeout_ms=60_000, memory_mb=1024, fuel=None, result_kb=16_384, log_kb=4096
    )


@pytest.mark.parametrize("raw", ["", "0"])
def test_fuel_has_neither_default_nor_maximum_unless_set(raw: str) -> None:
    s = Settings.from_env({"JOBICO_DEFAULT_FUEL": raw, "JOBICO_MAX_FUEL": raw})
    assert (s.guest_defaults.fuel, s.guest_maxima.fuel) == (None, None)


@pytest.mark.parametrize("name", ["JOBICO_DEFAULT_MEMORY_MB", "JOBICO_MAX_FUEL"])
def test_a_guest_limit_that_is_not_a_whole_number_is_refused_naming_the_variable(
    name: str,
) -> None:
    with pytest.raises(InvalidInput, match=f"^{name} must be a whole number, got '1.5'$"):
        Settings.from_env({name: "1.5"})


@pytest.mark.parametrize(
    ("raw", "on"),
    [("1", True), ("On", True), ("TRUE", True), ("0", False), ("False", False), ("", True)],
)
def test_a_flag_reads_the_usual_spellings_and_empty_as_its_default(raw: str, on: bool) -> None:
    assert Settings.from_env({"JOBICO_LOCAL_PUTS": raw}).local_puts is on


def test_a_flag_that_is_neither_on_nor_off_is_refused_naming_the_variable() -> None:
    with pytest.raises(InvalidInput, match="JOBICO_ACCESS_LOG"):
        Settings.from_env({"JOBICO_ACCESS_LOG": "verbose"})


def test_the_dashboard_port_is_left_to_ray_and_the_connect_timeout_is_15_s_by_default() -> None:
    s = Settings.from_env({"JOBICO_DASHBOARD_PORT": ""})
    assert (s.dashboard_port, s.connect_timeout_s) == (None, 15.0)


def test_the_dashboard_port_and_connect_timeout_come_from_their_variables() -> None:
    s = Settings.from_env({"JOBICO_DASHBOARD_PORT": "18265", "JOBICO_CONNECT_TIMEOUT_S": "2.5"})
    assert (s.dashboard_port, s.connect_timeout_s) == (18265, 2.5)


@pytest.mark.parametrize("raw", ["0", "65536", "-1"])
def test_a_dashboard_port_outside_1_to_65535_is_refused_naming_the_variable(raw: str) -> None:
    with pytest.raises(InvalidInput, match="JOBICO_DASHBOARD_PORT must be a port"):
        Settings.from_env({"JOBICO_DASHBOARD_PORT": raw})


@pytest.mark.parametrize("raw", ["0", "-3", "inf", "nan"])
def test_a_connect_timeout_that_is_not_a_finite_time_above_0_is_refused(raw: str) -> None:
    with pytest.raises(InvalidInput, match="JOBICO_CONNECT_TIMEOUT_S must be above 0"):
        Settings.from_env({"JOBICO_CONNECT_TIMEOUT_S": raw})
