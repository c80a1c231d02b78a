"""Settings come from JOBICO_* variables once, with named defaults and clear errors."""

import pytest

from jobico.config import Settings
from jobico.errors import InvalidInput


def test_defaults_apply_when_nothing_is_set(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = Settings.from_env({})
    assert s.home == tmp_path / ".jobico"
    assert (s.port, s.namespace, s.dashboard) == (8000, "jobico", True)


def test_variables_override_defaults(tmp_path):
    s = Settings.from_env(
        {"JOBICO_HOME": str(tmp_path), "JOBICO_PORT": "9001", "JOBICO_DASHBOARD": "0"}
    )
    assert (s.home, s.port, s.dashboard) == (tmp_path, 9001, False)


def test_a_bad_number_is_refused_naming_the_variable():
    with pytest.raises(InvalidInput, match="JOBICO_PORT"):
        Settings.from_env({"JOBICO_PORT": "eighty"})
