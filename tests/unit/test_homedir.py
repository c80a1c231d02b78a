"""JOBICO_HOME and its stores (jobico.homedir): private whatever the umask, and durable."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobico.access.auth import Authority
from jobico.access.vault import Vault
from jobico.control.registry import Registry
from jobico.homedir import durable_cache, prepare_home, private_dir
from jobico.queue.store import QueueStore
from jobico.records.recorder import Recorder
from jobico.repository import Repository


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def umask_022() -> Iterator[None]:
    """The usual umask, under which new files and directories are readable by everyone."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_new_home_and_its_missing_parents_are_made_0700(tmp_path: Path) -> None:
    home = tmp_path / "srv" / "jobico"
    assert private_dir(home) is False  # nothing was open
    assert mode(home) == mode(tmp_path / "srv") == 0o700


def test_an_open_home_is_closed_at_up_and_said_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    with caplog.at_level(logging.WARNING, logger="jobico.homedir"):
        prepare_home(home)
        prepare_home(home)
    assert mode(home) == 0o700
    [warning] = caplog.records
    assert str(home) in warning.getMessage() and "0700" in warning.getMessage()


def test_an_existing_private_home_is_left_as_it_is(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    with caplog.at_level(logging.WARNING, logger="jobico.homedir"):
        prepare_home(home)
    assert mode(home) == 0o700 and not caplog.records


def test_a_durable_store_commits_with_fsync_and_never_evicts(tmp_path: Path) -> None:
    cache = durable_cache(tmp_path / "store")
    try:
        assert cache._sql("PRAGMA synchronous").fetchone() == (2,)  # FULL
        assert cache.eviction_policy == "none"
    finally:
        cache.close()
    assert mode(tmp_path / "store") == 0o700


def sync_of(store: object) -> tuple[int, str]:
    cache = next(v for v in vars(store).values() if hasattr(v, "_sql"))
    return cache._sql("PRAGMA synchronous").fetchone()[0], cache.eviction_policy


def test_the_control_token_and_secret_stores_are_durable(tmp_path: Path) -> None:
    stores = [
        Registry(tmp_path / "control", files=None),  # type: ignore[arg-type]
        Authority(tmp_path / "auth"),
        Vault(tmp_path / "secrets"),
    ]
    assert [sync_of(store) for store in stores] == [(2, "none")] * 3


def test_every_store_made_in_a_missing_home_makes_it_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with QueueStore(home / "queues" / "t.db"):
        pass
    Repository(home / "repository")
    Authority(home / "auth").close()
    for folder in (home, home / "queues", home / "repository", home / "repository" / "blobs"):
        assert mode(folder) == 0o700, folder


def test_records_kept_apart_from_the_home_are_private_too(tmp_path: Path) -> None:
    Recorder(tmp_path / "elsewhere" / "records")  # JOBICO_RECORDS on a local path
    assert mode(tmp_path / "elsewhere" / "records") == mode(tmp_path / "elsewhere") == 0o700
