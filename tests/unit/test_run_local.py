"""`jobico run-local`: one event through one module with no platform, through the CLI (click's
CliRunner, and once as a subprocess) and the real Sandbox; guests from tests/guests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from jobico.cli.main import main
from jobico.cli.runlocal import EXIT_ANSWERED_ERROR, EXIT_FAILED, EXIT_OK
from tests.conftest import ROOT
from tests.guests import wasm

EXIT_BAD_INPUT = 2  # errors.EXIT_CODE[InvalidInput]
ZIG_ECHO = ROOT / "examples" / "zig-echo" / "echo.wasm"  # its main function is `echo`
WASI_ECHO = ROOT / "examples" / "wasi-echo" / "echo.wasm"


@pytest.fixture
def guest(tmp_path: Path) -> Any:
    """`guest(name)`: tests/guests/<name>.wat compiled into a .wasm file, as a user has one."""

    def write(name: str) -> Path:
        path = tmp_path / f"{name}.wasm"
        path.write_bytes(wasm(name))
        return path

    return write


def run_local(*args: str | Path, stdin: str | None = None, **env: str) -> Result:
    return CliRunner().invoke(main, ["run-local", *map(str, args)], input=stdin, env=env)


def as_json(result: Result) -> dict[str, Any]:
    outcome: dict[str, Any] = json.loads(result.stdout)
    return outcome


def test_an_ok_answer_prints_every_field_and_exits_0(guest: Any) -> None:
    result = run_local(guest("echo"), '{"b": [1, 2], "a": "x"}')
    assert result.exit_code == EXIT_OK, result.output
    lines = result.stdout.splitlines()
    assert lines[:6] == [
        "status:  ok",
        "code:    0",
        'result:  {"a":"x","b":[1,2]}',  # compact with sorted keys, as the listener sends it
        "error:   -",
        "logs:    1 line",
        '  [6 none] {"a":"x","b":[1,2]}',
    ]
    assert [line.split(":")[0] for line in lines[6:]] == ["fuel", "memory", "time"]
    assert lines[6].endswith(" units") and "MiB peak" in lines[7] and lines[8].endswith(" ms")


def test_json_output_is_one_object_with_the_outcome_and_each_log_level(guest: Any) -> None:
    result = run_local(guest("levels"), "{}", "--json")
    assert result.exit_code == EXIT_OK, result.output
    outcome = as_json(result)
    assert (outcome["status"], outcome["code"], outcome["result"], outcome["error"]) == (
        "ok",
        0,
        "",
        None,
    )
    assert [(log["level"], log["message"]) for log in outcome["logs"]] == [
        (n, f"level {n}") for n in range(7)
    ]
    assert outcome["fuel_used"] > 0 and outcome["memory_bytes"] == 65536
    assert outcome["duration_ms"] > 0 and outcome["started_at"] <= outcome["finished_at"]


def test_a_non_zero_code_is_the_guests_answer_and_exits_1(guest: Any) -> None:
    result = run_local(guest("code500"), "{}", "--json")
    assert result.exit_code == EXIT_ANSWERED_ERROR
    outcome = as_json(result)
    assert (outcome["status"], outcome["code"], outcome["result"]) == ("error", 500, "bad request")
    assert [log["level"] for log in outcome["logs"]] == [3]


def test_a_trap_is_a_failure_that_exits_7_with_the_error(guest: Any) -> None:
    result = run_local(guest("trap"), "{}")
    assert result.exit_code == EXIT_FAILED
    assert "status:  trap" in result.stdout and "code:    -" in result.stdout
    assert "unreachable" in result.stdout


def test_limit_options_bound_the_run(guest: Any) -> None:
    timeout = as_json(run_local(guest("loop"), "{}", "--timeout-ms", "100", "--json"))
    assert timeout["status"] == "timeout" and timeout["duration_ms"] >= 100
    fuel = run_local(guest("loop"), "{}", "--fuel", "100000", "--json")
    assert (fuel.exit_code, as_json(fuel)["status"]) == (EXIT_FAILED, "out_of_fuel")
    memory = run_local(guest("grow_bomb"), "{}", "--memory-mb", "2", "--json")
    assert (memory.exit_code, as_json(memory)["status"]) == (EXIT_FAILED, "out_of_memory")
    assert as_json(memory)["memory_bytes"] <= 2 << 20
    big = json.dumps({"text": "x" * 2048})
    result = run_local(guest("echo"), big, "--result-kb", "1", "--json")
    assert (result.exit_code, as_json(result)["status"]) == (EXIT_FAILED, "result_too_large")
    assert run_local(guest("echo"), big, "--result-kb", "3").exit_code == EXIT_OK
    logs = run_local(guest("echo"), big, "--log-kb", "1", "--json")
    assert (logs.exit_code, as_json(logs)["status"]) == (EXIT_FAILED, "logs_too_large")


def test_the_platform_default_limits_apply_where_no_option_is_given(guest: Any) -> None:
    result = run_local(guest("loop"), "{}", "--json", JOBICO_DEFAULT_TIMEOUT_MS="100")
    assert (result.exit_code, as_json(result)["status"]) == (EXIT_FAILED, "timeout")
    result = run_local(guest("loop"), "{}", "--json", JOBICO_DEFAULT_FUEL="100000")
    assert (result.exit_code, as_json(result)["status"]) == (EXIT_FAILED, "out_of_fuel")


def test_the_platform_maxima_do_not_cap_a_local_run(guest: Any) -> None:
    # Deploy refuses a runtime asking above JOBICO_MAX_TIMEOUT_MS; a local run does as told.
    result = run_local(
        guest("loop"), "{}", "--timeout-ms", "300", "--json", JOBICO_MAX_TIMEOUT_MS="100"
    )
    assert as_json(result)["status"] == "timeout"
    assert as_json(result)["duration_ms"] >= 300


def test_limits_below_1_are_refused_before_running(guest: Any) -> None:
    result = run_local(guest("echo"), "{}", "--fuel", "0")
    assert result.exit_code == EXIT_BAD_INPUT and "--fuel" in result.output


def test_a_wasi_command_gets_the_event_on_stdin_and_answers_with_its_exit_status(
    guest: Any,
) -> None:
    ok = run_local(guest("wasi_echo"), '{"a": 1}', "--kind", "wasi", "--json")
    assert ok.exit_code == EXIT_OK, ok.output
    outcome = as_json(ok)
    assert (outcome["status"], outcome["code"], outcome["result"]) == ("ok", 0, '{"a":1}')
    assert [(log["level"], log["message"]) for log in outcome["logs"]] == [(6, "echo done")]
    # The C example exits with status 3 when asked to fail (compact JSON cannot start with the
    # '!' that makes wasi_echo exit 3).
    failed = run_local(WASI_ECHO, '{"fail": true}', "--kind", "wasi", "--json")
    assert failed.exit_code == EXIT_ANSWERED_ERROR
    assert (as_json(failed)["status"], as_json(failed)["code"]) == ("error", 3)
    assert as_json(failed)["result"] == "asked to fail"


def test_main_names_the_main_function(tmp_path: Path) -> None:
    result = run_local(ZIG_ECHO, '{"a":1}', "--main", "echo")
    assert result.exit_code == EXIT_OK, result.output
    assert 'result:  {"a":1}' in result.stdout
    default = run_local(ZIG_ECHO, '{"a":1}')
    assert default.exit_code == EXIT_BAD_INPUT
    assert "echo.wasm: jobicolet module lacks required export(s): event" in default.stderr


def test_the_event_can_come_from_a_file_or_stdin(guest: Any, tmp_path: Path) -> None:
    (tmp_path / "event.json").write_text('{\n  "from": "file"\n}\n')
    from_file = run_local(guest("echo"), f"@{tmp_path / 'event.json'}", "--json")
    assert as_json(from_file)["result"] == '{"from":"file"}'
    from_stdin = run_local(guest("echo"), "-", "--json", stdin='{"from": "stdin"}')
    assert as_json(from_stdin)["result"] == '{"from":"stdin"}'


@pytest.mark.parametrize(
    ("event", "says"),
    [
        ("{nope", "EVENT_JSON is not valid JSON"),
        ('{"n": NaN}', "NaN is not JSON"),
        ('{"n": 1e999}', "out of range"),
        ('{"n": "\\ud800"}', "EVENT_JSON is not valid JSON: a string escapes a lone UTF-16"),
        ("@/no/such/event.json", "cannot read the event from /no/such/event.json"),
    ],
)
def test_an_event_that_is_not_json_is_refused_before_running(
    guest: Any, event: str, says: str
) -> None:
    result = run_local(guest("echo"), event)
    assert result.exit_code == EXIT_BAD_INPUT
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and says in result.stderr


@pytest.mark.parametrize(
    ("module", "kind", "says"),
    [
        ("missing_malloc", "jobicolet", "lacks required export(s): malloc"),
        ("import_other", "jobicolet", "imports 'env.other'; only env.log and"),
        ("echo", "wasi", "wasi module lacks required export(s): _start"),
        ("wasi_echo", "jobicolet", "lacks required export(s): init, malloc, free, event"),
    ],
)
def test_a_module_that_cannot_serve_its_kind_is_refused_as_a_deploy_would(
    guest: Any, module: str, kind: str, says: str
) -> None:
    result = run_local(guest(module), "{}", "--kind", kind)
    assert result.exit_code == EXIT_BAD_INPUT
    assert result.stdout == ""
    assert result.stderr == f"error: {module}.wasm: " + result.stderr.split(": ", 2)[2]
    assert says in result.stderr


def test_a_file_that_is_not_webassembly_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "greet.wasm"
    path.write_text("(module)")  # WebAssembly text, not the binary a deploy takes
    result = run_local(path, "{}")
    assert result.exit_code == EXIT_BAD_INPUT
    assert "error: greet.wasm: not a valid WebAssembly module" in result.stderr


def test_a_missing_module_file_is_a_usage_error(tmp_path: Path) -> None:
    result = run_local(tmp_path / "nothing.wasm", "{}")
    assert result.exit_code == EXIT_BAD_INPUT and "does not exist" in result.output


def test_the_installed_command_runs_a_module_without_importing_ray(guest: Any) -> None:
    # -X importtime lists every module the process imported, on stderr.
    command = ["-X", "importtime", "-m", "jobico.cli", "run-local", "--json", guest("echo")]
    proc = subprocess.run(
        [sys.executable, *map(str, command), '{"a":1}'],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == EXIT_OK, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["result"] == '{"a":1}'
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()}
    assert "wasmtime" in imported  # the listing is real: the sandbox's own import shows
    assert not {name for name in imported if name.split(".")[0] == "ray"}
