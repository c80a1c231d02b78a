"""The control registry: revisions, rollback by pinned digests, and deploy-time checks of files."""

import json
from pathlib import Path
from typing import Any

import pytest

from jobico.config import Settings
from jobico.control.registry import Registry
from jobico.errors import Conflict, FileInvalid, NotFound, PackageInvalid
from jobico.model import Package, load_package, load_package_yaml
from jobico.repository import Repository
from tests.conftest import EXAMPLE


def package(**changes: Any) -> Package:
    data = load_package_yaml((EXAMPLE / "package.yaml").read_text()).to_dict()
    data.update(changes)
    return load_package(data)


def test_first_deploy_is_revision_1_and_pins_the_files_digests(
    registry: Registry, repo: Repository
) -> None:
    rev = registry.deploy(package())
    assert rev.number == 1
    module, schema = repo.info("demogo", "greet.wasm"), repo.info("demogo", "greet-schema.json")
    assert module is not None and schema is not None
    assert rev.files == {"greet.wasm": module.digest, "greet-schema.json": schema.digest}
    assert registry.revision("demogo", "go-demo-job") == rev


def test_deploying_an_existing_package_without_update_is_refused(registry: Registry) -> None:
    registry.deploy(package())
    with pytest.raises(Conflict, match=r"--update"):
        registry.deploy(package())


def test_update_makes_the_next_revision_and_update_of_a_missing_package_is_refused(
    registry: Registry,
) -> None:
    with pytest.raises(NotFound, match=r"without --update"):
        registry.deploy(package(), update=True)
    registry.deploy(package())
    assert registry.deploy(package(name="v2"), update=True).number == 2


def test_rollback_restores_the_old_revisions_digests_in_a_new_revision(
    registry: Registry, repo: Repository
) -> None:
    first = registry.deploy(package())
    repo.put("demogo", "json", "greet-schema.json", b'{"type": "object"}')
    second = registry.deploy(package(), update=True)
    assert second.files != first.files
    back = registry.rollback("demogo", "go-demo-job")
    assert (back.number, back.files, back.note) == (3, first.files, "rollback to 1")
    assert registry.rollback("demogo", "go-demo-job", to=2).files == second.files


def test_rollback_to_a_revision_that_does_not_exist_is_refused(registry: Registry) -> None:
    registry.deploy(package())
    with pytest.raises(NotFound, match=r"no revision 0"):
        registry.rollback("demogo", "go-demo-job")
    with pytest.raises(NotFound, match=r"no revision 7"):
        registry.rollback("demogo", "go-demo-job", to=7)


def test_delete_hides_the_package_and_a_new_deploy_continues_the_numbering(
    registry: Registry,
) -> None:
    registry.deploy(package())
    registry.delete("demogo", "go-demo-job")
    assert registry.packages() == []
    with pytest.raises(NotFound):
        registry.revision("demogo", "go-demo-job")
    assert registry.deploy(package()).number == 2


def test_packages_lists_each_tenants_current_revision(registry: Registry) -> None:
    registry.deploy(package())
    [row] = registry.packages("demogo")
    assert (row["package"], row["revision"], row["events"]) == (
        "go-demo-job",
        1,
        ["evgo", "evgo_ok", "evgo_error"],
    )
    assert registry.packages("other") == []
    assert registry.tenants() == ["demogo"]


def test_a_missing_file_is_refused_naming_it(registry: Registry) -> None:
    pkg = package(runtimes=[{"id": "greet-event-go", "moduleref": "absent.wasm"}])
    with pytest.raises(FileInvalid, match=r"absent.wasm: not in the repository"):
        registry.deploy(pkg)


def test_a_schema_that_is_not_valid_json_schema_is_refused_naming_it(
    registry: Registry, repo: Repository
) -> None:
    repo.put("demogo", "json", "greet-schema.json", json.dumps({"type": "thing"}).encode())
    with pytest.raises(FileInvalid, match=r"greet-schema.json: not a valid JSON Schema"):
        registry.deploy(package())


def test_a_module_lacking_the_abi_exports_is_refused_naming_it(
    registry: Registry, repo: Repository
) -> None:
    import wasmtime

    module = bytes(wasmtime.wat2wasm('(module (memory (export "memory") 1))'))
    repo.put("demogo", "wasm", "greet.wasm", module)
    with pytest.raises(FileInvalid, match=r"greet.wasm: .*malloc"):
        registry.deploy(package())


def test_a_file_used_as_the_wrong_kind_is_refused(registry: Registry, repo: Repository) -> None:
    repo.put("demogo", "json", "greet.wasm", b"{}")
    with pytest.raises(FileInvalid, match=r"greet.wasm: is a json file"):
        registry.deploy(package())


def test_event_ids_are_unique_across_a_tenants_packages(registry: Registry) -> None:
    registry.deploy(package())
    with pytest.raises(Conflict, match=r"'evgo' is already defined by package 'go-demo-job'"):
        registry.deploy(package(id="another"))


def test_state_survives_reopening(tmp_path: Path, repo: Repository) -> None:
    first = Registry(tmp_path / "control", repo)
    rev = first.deploy(package())
    first.close()
    again = Registry(tmp_path / "control", repo)
    assert again.revision("demogo", "go-demo-job") == rev
    again.close()


def with_limits(**limits: int) -> Package:
    data = package().to_dict()
    data["runtimes"][0]["limits"] = limits
    return load_package(data)


@pytest.mark.parametrize(
    ("name", "value", "maximum"),
    [
        ("timeout_ms", 60_001, 60_000),
        ("memory_mb", 2048, 1024),
        ("fuel", 10**10, 10**9),
        ("result_kb", 16_385, 16_384),
        ("log_kb", 5000, 4096),
    ],
)
def test_a_runtime_limit_above_the_platform_maximum_is_refused_naming_its_path(
    tmp_path: Path, repo: Repository, name: str, value: int, maximum: int
) -> None:
    maxima = Settings.from_env({"JOBICO_MAX_FUEL": str(10**9)}).guest_maxima
    reg = Registry(tmp_path / "limited", repo, maxima=maxima)
    try:
        with pytest.raises(PackageInvalid) as refused:
            reg.deploy(with_limits(**{name: value}))
        assert refused.value.details["path"] == f"runtimes[0].limits.{name}"
        assert refused.value.message == (
            f"runtimes[0].limits.{name}: {value} is above this platform's maximum of {maximum}"
        )
        assert reg.deploy(with_limits(**{name: maximum})).number == 1  # at the maximum: fine
    finally:
        reg.close()


def test_without_maxima_any_positive_limit_is_accepted(registry: Registry) -> None:
    assert registry.deploy(with_limits(timeout_ms=10**9, fuel=10**15)).number == 1
