"""The file repository: content addressing, versions under a name, and names that cannot escape."""

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobico.errors import FileInvalid, InvalidInput, InvalidName, NotFound
from jobico.repository import Repository

WASM = b"\0asm\x01\0\0\0"


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repository]:
    r = Repository(tmp_path / "repo")
    yield r
    r.close()


def test_a_file_is_stored_under_its_sha256(repo: Repository) -> None:
    info = repo.put("t1", "json", "s.json", b"{}")
    assert info.digest == hashlib.sha256(b"{}").hexdigest()
    assert (info.version, info.size, info.kind) == (1, 2, "json")
    assert repo.read("t1", info.digest) == b"{}"


def test_new_content_under_a_used_name_is_a_new_version_and_the_old_stays_readable(
    repo: Repository,
) -> None:
    first = repo.put("t1", "json", "s.json", b"{}")
    second = repo.put("t1", "json", "s.json", b'{"type": "object"}')
    assert second.version == 2
    assert repo.info("t1", "s.json") == second
    assert repo.read("t1", first.digest) == b"{}"
    assert [v.version for v in repo.versions("t1", "s.json")] == [1, 2]


def test_the_same_content_again_makes_no_new_version(repo: Repository) -> None:
    repo.put("t1", "wasm", "m.wasm", WASM)
    assert repo.put("t1", "wasm", "m.wasm", WASM).version == 1


def test_tenants_do_not_see_each_others_files(repo: Repository) -> None:
    info = repo.put("t1", "json", "s.json", b"{}")
    assert repo.info("t2", "s.json") is None
    assert repo.list("t2") == []
    with pytest.raises(NotFound):
        repo.read("t2", info.digest)


@pytest.mark.parametrize(
    "name", ["../x.json", "/etc/passwd", "a/b.json", "a\0b", "..", "", ".hidden"]
)
def test_names_that_could_escape_the_tenants_storage_are_refused(
    repo: Repository, name: str
) -> None:
    with pytest.raises(InvalidName):
        repo.put("t1", "json", name, b"{}")


def test_a_tenant_name_that_could_escape_is_refused(repo: Repository) -> None:
    with pytest.raises(InvalidName):
        repo.put("../t", "json", "s.json", b"{}")


def test_content_that_is_not_of_its_kind_is_refused_naming_the_file(repo: Repository) -> None:
    with pytest.raises(FileInvalid, match=r"s.json: not valid JSON"):
        repo.put("t1", "json", "s.json", b"{nope")
    with pytest.raises(FileInvalid, match=r"m.wasm: not a WebAssembly module"):
        repo.put("t1", "wasm", "m.wasm", b"MZ")
    with pytest.raises(InvalidInput, match=r"kind"):
        repo.put("t1", "yaml", "x.yaml", b"a: 1")


def test_files_survive_reopening(tmp_path: Path) -> None:
    r = Repository(tmp_path / "repo")
    info = r.put("t1", "json", "s.json", b"{}")
    r.close()
    again = Repository(tmp_path / "repo")
    assert again.info("t1", "s.json") == info
    assert again.read("t1", info.digest) == b"{}"
    again.close()
