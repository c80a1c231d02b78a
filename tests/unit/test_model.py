"""Package YAML loading: Jobico's files load unchanged; every mistake names its field."""

from pathlib import Path
from typing import Any

import pytest

from jobico.errors import InvalidName, PackageInvalid
from jobico.model import Limits, check_name, load_package, load_package_yaml

EXAMPLE = Path(__file__).parents[2] / "examples" / "greet" / "package.yaml"


def minimal(**changes: object) -> dict[str, Any]:
    pkg: dict[str, Any] = {
        "id": "p",
        "tenant": "t",
        "queues": [{"id": "q"}],
        "jobs": [{"event": {"id": "e", "supplierqueue": "q", "runtime": "r"}}],
        "runtimes": [{"id": "r", "moduleref": "m.wasm"}],
    }
    pkg.update(changes)
    return pkg


def refused(data: object) -> PackageInvalid:
    with pytest.raises(PackageInvalid) as info:
        load_package(data)
    return info.value


def test_jobicos_demo_package_loads_with_chained_results() -> None:
    pkg = load_package_yaml(EXAMPLE.read_text())
    assert (pkg.tenant, pkg.id, pkg.name) == ("demogo", "go-demo-job", "Demo JOB")
    job = pkg.jobs[0]
    assert job.event.schema is not None and job.event.schema.schemaref == "greet-schema.json"
    assert job.result is not None and job.result.ok is not None
    assert job.result.ok.supplierqueue == "queue-default_ok"
    assert pkg.runtime("greet-event-go").mainfuncname == "event"
    assert pkg.file_refs() == {"greet.wasm": "wasm", "greet-schema.json": "json"}


def test_jobicos_original_files_without_result_load_unchanged() -> None:
    text = """
name: Demo JOB
id: rust-demo-job
tenant: demorust
queues:
  - id: queue-default
    name: Q.Default
jobs:
  - event:
      name: Greet event
      id: evrust
      datatype: 0
      schema:
        id: greet-event-schema
        name: Greet's schema
        schemaref: greet-schema-rust.json
      supplierqueue: queue-default
      runtime: greet-event-rust
runtimes:
  - id: greet-event-rust
    name: Greet Evenent Func
    moduleref: greet-wasm-rust.wasm
    mainfuncname: event
    type: 0
"""
    pkg = load_package_yaml(text)
    assert pkg.jobs[0].result is None
    assert pkg.jobs[0].retry.max_attempts == 3


def test_extension_keys_load_with_their_values_and_defaults() -> None:
    pkg = load_package(
        minimal(
            queues=[{"id": "q", "limit": 10}],
            jobs=[
                {
                    "event": {"id": "e", "supplierqueue": "q", "runtime": "r", "orderingkey": "/a"},
                    "retry": {"max_attempts": 5, "backoff_ms": 10},
                }
            ],
            runtimes=[
                {
                    "id": "r",
                    "moduleref": "m.wasm",
                    "kind": "wasi",
                    "limits": {"timeout_ms": 50, "fuel": 1000},
                }
            ],
        )
    )
    assert pkg.queues[0].limit == 10
    assert pkg.jobs[0].event.orderingkey == "/a"
    assert pkg.jobs[0].retry.max_attempts == 5
    assert pkg.runtimes[0].kind == "wasi"
    assert pkg.runtimes[0].limits == Limits(timeout_ms=50, fuel=1000)


def test_a_package_round_trips_through_its_plain_form() -> None:
    pkg = load_package_yaml(EXAMPLE.read_text())
    assert load_package(pkg.to_dict()) == pkg
    assert "limit" not in pkg.to_dict()["queues"][0]  # defaults are not written back


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"colour": "red"}, "colour"),
        ({"queues": [{"id": "q", "size": 1}]}, "queues[0].size"),
        (
            {"runtimes": [{"id": "r", "moduleref": "m.wasm", "limits": {"cpu": 1}}]},
            "runtimes[0].limits.cpu",
        ),
    ],
)
def test_unknown_keys_are_refused_with_their_path(change: dict[str, object], path: str) -> None:
    error = refused(minimal(**change))
    assert error.details["path"] == path
    assert "unknown key" in error.message


def test_missing_required_keys_are_named() -> None:
    data = minimal()
    del data["tenant"]
    assert refused(data).details["path"] == "tenant"
    data = minimal(jobs=[{"event": {"id": "e", "runtime": "r"}}])
    assert refused(data).details["path"] == "jobs[0].event.supplierqueue"


def test_duplicate_ids_are_refused_at_the_second_occurrence() -> None:
    assert refused(minimal(queues=[{"id": "q"}, {"id": "q"}])).details["path"] == "queues[1].id"
    jobs = [{"event": {"id": "e", "supplierqueue": "q", "runtime": "r"}}] * 2
    assert refused(minimal(jobs=jobs)).details["path"] == "jobs[1].event.id"


def test_a_job_naming_an_undeclared_queue_or_runtime_is_refused() -> None:
    jobs: list[dict[str, Any]] = [{"event": {"id": "e", "supplierqueue": "nope", "runtime": "r"}}]
    error = refused(minimal(jobs=jobs))
    assert error.details["path"] == "jobs[0].event.supplierqueue"
    assert "'nope' is not declared" in error.message
    jobs = [
        {
            "event": {"id": "e", "supplierqueue": "q", "runtime": "r"},
            "result": {"ok": {"id": "k", "supplierqueue": "q", "runtime": "nope"}},
        }
    ]
    assert refused(minimal(jobs=jobs)).details["path"] == "jobs[0].result.ok.runtime"


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"tenant": "../etc"}, "tenant"),
        ({"runtimes": [{"id": "r", "moduleref": "/abs.wasm"}]}, "runtimes[0].moduleref"),
        ({"queues": "q"}, "queues"),
        ({"queues": [{"id": "q", "limit": "many"}]}, "queues[0].limit"),
        ({"queues": [{"id": "q", "limit": 0}]}, "queues[0].limit"),
        ({"runtimes": [{"id": "r", "moduleref": "m.wasm", "kind": "python"}]}, "runtimes[0].kind"),
        ({"runtimes": [{"id": "r", "moduleref": "m.wasm", "type": 1}]}, "runtimes[0].type"),
    ],
)
def test_bad_values_are_refused_with_their_path(change: dict[str, object], path: str) -> None:
    assert refused(minimal(**change)).details["path"] == path


def test_invalid_yaml_and_non_mapping_documents_are_refused() -> None:
    with pytest.raises(PackageInvalid, match="not valid YAML"):
        load_package_yaml("id: [unclosed")
    with pytest.raises(PackageInvalid, match="must be a mapping"):
        load_package_yaml("- just a list")


@pytest.mark.parametrize("name", ["acme\n", "acme\r\n", "\nacme", "ac\nme", "acme ", "a" * 129])
def test_check_name_refuses_a_name_with_a_newline_anywhere_or_too_long(name: str) -> None:
    with pytest.raises(InvalidName):
        check_name("tenant", name)


def test_check_name_accepts_a_plain_name_of_up_to_128_characters() -> None:
    assert check_name("tenant", "a" * 128) == "a" * 128
    assert check_name("file", "greet-1.0_x.wasm") == "greet-1.0_x.wasm"


# --- limits --------------------------------------------------------------------------------------

PLATFORM = Limits(timeout_ms=10_000, memory_mb=64, fuel=None, result_kb=1024, log_kb=256)


def test_a_runtime_limit_left_unset_is_the_default_and_one_set_is_its_own() -> None:
    assert Limits().over(PLATFORM) == PLATFORM
    assert Limits(timeout_ms=50, fuel=1000).over(PLATFORM) == Limits(
        timeout_ms=50, memory_mb=64, fuel=1000, result_kb=1024, log_kb=256
    )


def test_a_limit_above_its_maximum_is_the_maximum_and_an_unset_maximum_bounds_nothing() -> None:
    maxima = Limits(timeout_ms=60_000, memory_mb=128, fuel=5000)
    ran = Limits(timeout_ms=10**6, memory_mb=64, fuel=1000, result_kb=10**5, log_kb=256)
    assert ran.within(maxima) == Limits(
        timeout_ms=60_000, memory_mb=64, fuel=1000, result_kb=10**5, log_kb=256
    )


def test_a_limit_unset_by_runtime_and_default_is_held_to_its_maximum() -> None:
    """An operator's JOBICO_MAX_FUEL holds every run, even where no default fuel is set."""
    assert Limits(fuel=None).within(Limits(fuel=5000)).fuel == 5000
    assert Limits(fuel=None).within(Limits(fuel=None)).fuel is None


def test_the_engine_reads_limits_in_milliseconds_and_bytes() -> None:
    assert (PLATFORM.wall_ms, PLATFORM.memory_bytes, PLATFORM.result_bytes, PLATFORM.log_bytes) == (
        10_000,
        64 << 20,
        1024 << 10,
        256 << 10,
    )


def test_an_unset_limit_cannot_be_run_under() -> None:
    with pytest.raises(ValueError, match="limit memory_mb is unset"):
        _ = Limits(timeout_ms=5).memory_bytes
