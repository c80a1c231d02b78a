"""The shipped examples (examples/*/package.yaml) as a user deploys them: each package loads,
names only files beside it, its modules pass the deploy check and its schemas are JSON Schemas,
and each module, run in the plain Sandbox (no Ray), answers a sample event as documented.

The committed .wasm files are tested as they are; nothing here needs a compiler.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema.validators
import pytest
from click.testing import CliRunner

from jobico.cli.main import main
from jobico.model import Limits, Package, Runtime, compact, load_package_yaml
from jobico.wasm import Outcome, Sandbox, check_module
from tests.conftest import ROOT

EXAMPLES = ROOT / "examples"
PACKAGES = sorted(EXAMPLES.glob("*/package.yaml"))
JOHN = {"firstName": "john", "lastName": "connor", "age": 50}
MiB = 1 << 20

LEVEL_INFO, LEVEL_ERROR, LEVEL_NONE = 1, 3, 6


@dataclass(frozen=True)
class Sample:
    """An event valid under the example's schema and what every runtime of it answers."""

    event: dict[str, Any]
    result: str
    log_levels: tuple[int, ...]


# One entry per example directory: a new example without one fails test_every_example_has_a_sample.
SAMPLES = {
    "greet": Sample(JOHN, compact(JOHN), (LEVEL_NONE,)),
    "c-echo": Sample(JOHN, compact(JOHN), (LEVEL_NONE,)),
    "rust-greet": Sample(JOHN, "Hello john connor", (LEVEL_INFO,)),
    "zig-echo": Sample(JOHN, compact(JOHN), (LEVEL_INFO,)),
    "wasi-echo": Sample(JOHN, compact(JOHN), (LEVEL_NONE,)),
}


def name_of(path: Path) -> str:
    return path.parent.name


def load(path: Path) -> Package:
    return load_package_yaml(path.read_text(), source=str(path))


def schema_of(path: Path, schemaref: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((path.parent / schemaref).read_bytes())
    return schema


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    sb = Sandbox()
    yield sb
    sb.close()


def run(sb: Sandbox, module: Path, event: object, runtime: Runtime | None = None) -> Outcome:
    """One event through `module` as the platform sends it: compact JSON bytes."""
    data = module.read_bytes()
    return sb.run(
        digest=hashlib.sha256(data).hexdigest(),
        load=lambda: data,
        kind=runtime.kind if runtime else "jobicolet",
        mainfunc=runtime.mainfuncname if runtime else "event",
        limits=runtime.limits if runtime else Limits(),
        event=compact(event).encode(),
    )


def chained(event: object, outcome: Outcome) -> dict[str, Any]:
    """The payload of a result event, as jobico.execution.executor builds it from an execution."""
    return {"event": event, "code": outcome.code, "result": outcome.result}


examples = pytest.mark.parametrize("path", PACKAGES, ids=name_of)


def test_every_example_has_a_sample() -> None:
    assert PACKAGES, "no examples/*/package.yaml found"
    assert {name_of(p) for p in PACKAGES} == set(SAMPLES)


@examples
def test_the_package_loads_and_every_file_it_names_is_beside_it(path: Path) -> None:
    package = load(path)
    refs = package.file_refs()
    assert "wasm" in refs.values(), "an example has at least one module"
    missing = [name for name in refs if not (path.parent / name).is_file()]
    assert not missing, f"{path}: files named but not beside it: {missing}"


@examples
def test_every_module_passes_the_deploy_check_for_its_runtime(path: Path) -> None:
    for rt in load(path).runtimes:
        info = check_module(
            (path.parent / rt.moduleref).read_bytes(), kind=rt.kind, mainfunc=rt.mainfuncname
        )
        assert {imp.split(".")[0] for imp in info.imports} <= {"env", "wasi_snapshot_preview1"}


@examples
def test_every_schema_is_a_valid_json_schema_that_accepts_the_sample(path: Path) -> None:
    sample = SAMPLES[name_of(path)]
    schemas = [ev.schema for _, ev in load(path).all_events() if ev.schema is not None]
    assert schemas, "an example validates its events"
    for ref in {s.schemaref for s in schemas}:
        schema = schema_of(path, ref)
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        cls(schema, format_checker=cls.FORMAT_CHECKER).validate(sample.event)


@examples
def test_every_runtime_answers_the_sample_event_ok_with_the_documented_result(
    sandbox: Sandbox, path: Path
) -> None:
    sample = SAMPLES[name_of(path)]
    for rt in load(path).runtimes:
        outcome = run(sandbox, path.parent / rt.moduleref, sample.event, rt)
        assert (outcome.status, outcome.code, outcome.error) == ("ok", 0, None)
        assert outcome.result == sample.result
        assert tuple(line.level for line in outcome.logs) == sample.log_levels


@examples
def test_the_result_events_a_job_chains_to_are_answered_ok_by_their_runtime(
    sandbox: Sandbox, path: Path
) -> None:
    package = load(path)
    sample = SAMPLES[name_of(path)]
    for job in package.jobs:
        if job.result is None or job.result.ok is None:
            continue
        own = package.runtime(job.event.runtime)
        first = run(sandbox, path.parent / own.moduleref, sample.event, own)
        assert first.status == "ok"
        rt = package.runtime(job.result.ok.runtime)
        outcome = run(sandbox, path.parent / rt.moduleref, chained(sample.event, first), rt)
        assert (outcome.status, outcome.code) == ("ok", 0), outcome


@examples
def test_one_instance_serves_2000_events_in_a_row_without_growing_its_memory(
    sandbox: Sandbox, path: Path
) -> None:
    # ~2 KB per event: a module that leaked the event or its result would grow by megabytes.
    package = load(path)
    rt = package.runtime(package.jobs[0].event.runtime)
    module = path.parent / rt.moduleref
    memory = []
    for i in range(2000):
        event = {**JOHN, "firstName": f"john{i}", "note": "x" * 2048}
        outcome = run(sandbox, module, event, rt)
        assert (outcome.status, outcome.code) == ("ok", 0), f"event {i}: {outcome}"
        memory.append(outcome.memory_bytes)
    assert max(memory) - memory[0] <= MiB, f"memory grew from {memory[0]} to {max(memory)} bytes"


# --- c-echo: the failure path ------------------------------------------------------------------

C_ECHO = EXAMPLES / "c-echo" / "echo.wasm"


def test_the_c_echo_answers_500_with_an_error_log_when_the_event_asks_to_fail(
    sandbox: Sandbox,
) -> None:
    event = {**JOHN, "fail": True}
    outcome = run(sandbox, C_ECHO, event)
    assert (outcome.status, outcome.code, outcome.error) == ("error", 500, None)
    assert outcome.result == "asked to fail"
    assert [line.level for line in outcome.logs] == [LEVEL_NONE, LEVEL_ERROR]
    assert outcome.logs[0].message == compact(event)
    assert "fail" in outcome.logs[1].message


def test_the_c_echo_does_not_fail_on_a_nested_or_false_fail(sandbox: Sandbox) -> None:
    failed = run(sandbox, C_ECHO, {"fail": True})
    for event in [
        {"fail": False},
        {"data": {"fail": True}},
        {"text": '"fail":true'},
        chained({"fail": True}, failed),  # the evc_error event: answered, not failed again
    ]:
        outcome = run(sandbox, C_ECHO, event)
        assert (outcome.status, outcome.code, outcome.result) == ("ok", 0, compact(event))


def test_the_c_echo_is_a_ver_0_module_importing_only_the_log() -> None:
    info = check_module(C_ECHO.read_bytes())
    assert (info.ver, info.imports) == (0, ("env.log",))


# --- rust-greet: ver 1 and the greeting --------------------------------------------------------

RUST_GREET = EXAMPLES / "rust-greet" / "greet.wasm"


def test_the_rust_greet_module_is_ver_1_with_a_two_argument_free() -> None:
    info = check_module(RUST_GREET.read_bytes())
    assert (info.ver, info.imports) == (1, ("env.log",))
    assert "ver" in info.exports


def test_the_rust_greeter_logs_at_info_and_decodes_utf8_and_json_escapes(
    sandbox: Sandbox,
) -> None:
    # compact JSON keeps UTF-8 as is and escapes quotes, backslashes and control characters
    first, last = 'J\u00f6rg "\U0001f600"', "o\\k\tx\u0001"
    outcome = run(sandbox, RUST_GREET, {"firstName": first, "lastName": last})
    assert (outcome.status, outcome.result) == ("ok", f"Hello {first} {last}")
    assert [(line.level, line.message) for line in outcome.logs] == [
        (LEVEL_INFO, f"rust-greet: greeting {first} {last}")
    ]


def test_the_rust_greeter_answers_400_without_a_first_name(sandbox: Sandbox) -> None:
    outcome = run(sandbox, RUST_GREET, {"lastName": "connor", "data": {"firstName": "nested"}})
    assert (outcome.status, outcome.code, outcome.result) == ("error", 400, "firstName is missing")
    assert [line.level for line in outcome.logs] == [LEVEL_ERROR]


# --- zig-echo: ver 1, a main function named echo, std.json ---------------------------------------

ZIG_ECHO = EXAMPLES / "zig-echo" / "echo.wasm"
ZIG_RUNTIME = Runtime(id="zig", moduleref="echo.wasm", mainfuncname="echo")


def test_the_zig_echo_is_ver_1_importing_only_the_log_with_its_main_function_named_echo() -> None:
    info = check_module(ZIG_ECHO.read_bytes(), mainfunc="echo")
    assert (info.ver, info.imports) == (1, ("env.log",))
    assert "event" not in info.exports


def test_the_zig_echo_answers_500_when_the_top_level_asks_to_fail(sandbox: Sandbox) -> None:
    event = {**JOHN, "fail": True}
    outcome = run(sandbox, ZIG_ECHO, event, ZIG_RUNTIME)
    assert (outcome.status, outcome.code, outcome.result) == ("error", 500, "asked to fail")
    assert [(line.level, line.message) for line in outcome.logs] == [
        (LEVEL_INFO, f"zig-echo: {len(compact(event))} bytes"),
        (LEVEL_ERROR, 'zig-echo: the event asks to fail ("fail": true); answering 500'),
    ]


def test_the_zig_echo_parses_json_so_only_a_top_level_true_fail_counts(sandbox: Sandbox) -> None:
    failed = run(sandbox, ZIG_ECHO, {"fail": True}, ZIG_RUNTIME)
    for event in [
        {"fail": False},
        {"fail": "true"},
        {"data": {"fail": True}},
        [{"fail": True}],
        chained({"fail": True}, failed),  # the evzig_error event: answered, not failed again
    ]:
        outcome = run(sandbox, ZIG_ECHO, event, ZIG_RUNTIME)
        assert (outcome.status, outcome.code, outcome.result) == ("ok", 0, compact(event))


def test_the_zig_echo_answers_400_to_bytes_that_are_not_json(sandbox: Sandbox) -> None:
    data = ZIG_ECHO.read_bytes()
    outcome = sandbox.run(
        digest=hashlib.sha256(data).hexdigest(),
        load=lambda: data,
        kind="jobicolet",
        mainfunc="echo",
        limits=Limits(),
        event=b"{nope",
    )
    assert (outcome.status, outcome.code, outcome.result) == ("error", 400, "event is not JSON")


# --- wasi-echo: a WASI command ------------------------------------------------------------------

WASI_ECHO = EXAMPLES / "wasi-echo" / "echo.wasm"
WASI_RUNTIME = Runtime(id="wasi", moduleref="echo.wasm", kind="wasi")


def test_the_wasi_echo_is_a_command_importing_only_wasi() -> None:
    info = check_module(WASI_ECHO.read_bytes(), kind="wasi")
    assert "_start" in info.exports and "event" not in info.exports
    assert {imp.split(".")[0] for imp in info.imports} == {"wasi_snapshot_preview1"}


def test_the_wasi_echo_exits_3_with_its_stderr_lines_as_logs_when_asked_to_fail(
    sandbox: Sandbox,
) -> None:
    event = {**JOHN, "fail": True}
    outcome = run(sandbox, WASI_ECHO, event, WASI_RUNTIME)
    assert (outcome.status, outcome.code, outcome.result) == ("error", 3, "asked to fail")
    assert [(line.level, line.message) for line in outcome.logs] == [
        (LEVEL_NONE, f"wasi-echo: read {len(compact(event))} bytes"),
        (LEVEL_NONE, 'wasi-echo: the event asks to fail ("fail": true); exit status 3'),
    ]


def test_the_wasi_echo_reads_stdin_to_the_end_and_ignores_a_nested_fail(
    sandbox: Sandbox,
) -> None:
    failed = run(sandbox, WASI_ECHO, {"fail": True}, WASI_RUNTIME)
    # 100 KB: many times the command's first read buffer (4 KiB) and wasi-libc's stdio buffer.
    for event in [{"text": "y" * 100_000}, chained({"fail": True}, failed), {"fail": False}]:
        outcome = run(sandbox, WASI_ECHO, event, WASI_RUNTIME)
        assert (outcome.status, outcome.code, outcome.result) == ("ok", 0, compact(event))


# --- every example through `jobico run-local` --------------------------------------------------


@examples
def test_run_local_runs_each_example_module_and_gets_the_documented_answer(path: Path) -> None:
    sample = SAMPLES[name_of(path)]
    for rt in load(path).runtimes:
        module = str(path.parent / rt.moduleref)
        args = ["run-local", module, compact(sample.event), "--json"]
        result = CliRunner().invoke(main, [*args, "--kind", rt.kind, "--main", rt.mainfuncname])
        assert result.exit_code == 0, result.output
        outcome = json.loads(result.stdout)
        assert (outcome["status"], outcome["code"], outcome["error"]) == ("ok", 0, None)
        assert outcome["result"] == sample.result
        assert tuple(line["level"] for line in outcome["logs"]) == sample.log_levels
