"""The control plane through the `jobico` command, as a new user would drive it."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import yaml

from jobico.model import load_package_yaml
from tests.platform import Jobico


def rename(workdir: Path, **changes: object) -> tuple[str, Path]:
    """Give the example package a fresh tenant (tests share one platform) and other changes."""
    path = workdir / "package.yaml"
    data = yaml.safe_load(path.read_text())
    data.update({"tenant": f"t{uuid.uuid4().hex[:8]}", **changes})
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(data["tenant"]), path


def test_deploy_show_update_rollback_with_files_taken_from_the_packages_folder(
    jobico: Jobico, workdir: Path
) -> None:
    tenant, path = rename(workdir)
    assert "revision 1" in jobico("deploy", str(path)).stdout
    shown = jobico("show", tenant, "go-demo-job").stdout
    assert load_package_yaml(shown) == load_package_yaml(path.read_text())
    first = json.loads(jobico("show", tenant, "go-demo-job", "--json").stdout)["files"]

    (workdir / "greet-schema.json").write_text('{"type": "object", "required": ["id"]}')
    assert "revision 2" in jobico("deploy", str(path), "--update").stdout
    second = json.loads(jobico("show", tenant, "go-demo-job", "--json").stdout)["files"]
    assert second["greet-schema.json"] != first["greet-schema.json"]
    assert second["greet.wasm"] == first["greet.wasm"]

    out = jobico("rollback", tenant, "go-demo-job", "--json").stdout
    assert json.loads(out)["files"] == first
    assert json.loads(out)["number"] == 3
    old = json.loads(jobico("show", tenant, "go-demo-job", "--revision", "2", "--json").stdout)
    assert old["files"] == second


def test_deploying_again_without_update_is_refused_with_one_clear_line(
    jobico: Jobico, workdir: Path
) -> None:
    _, path = rename(workdir)
    jobico("deploy", str(path))
    again = jobico("deploy", str(path), check=False)
    assert again.returncode == 4
    assert again.stderr.startswith("error: package 'go-demo-job'") and "--update" in again.stderr
    assert "Traceback" not in again.stderr and len(again.stderr.strip().splitlines()) == 1


def test_bad_packages_are_refused_naming_the_field_or_file(jobico: Jobico, workdir: Path) -> None:
    original = (workdir / "package.yaml").read_text()
    tenant, path = rename(workdir)
    cases = {
        "queues[0].colour: unknown key": {"queues": [{"id": "queue-default", "colour": "red"}]},
        "jobs[0].event.supplierqueue: queue 'queue-default' is not declared": {
            "queues": [{"id": "x"}]
        },
        "runtimes[1].id: duplicate runtime id": {
            "runtimes": [
                {"id": "greet-event-go", "moduleref": "greet.wasm"},
                {"id": "greet-event-go", "moduleref": "greet.wasm"},
            ]
        },
        "missing.wasm: not in the repository": {
            "runtimes": [{"id": "greet-event-go", "moduleref": "missing.wasm"}]
        },
    }
    for expected, change in cases.items():
        path.write_text(original)
        rename(workdir, tenant=tenant, **change)
        result = jobico("deploy", str(path), check=False)
        assert result.returncode == 2, result.stderr
        assert expected in result.stderr, result.stderr

    data = yaml.safe_load(path.read_text())
    del data["tenant"]
    path.write_text(yaml.safe_dump(data))
    assert "tenant: missing required key" in jobico("deploy", str(path), check=False).stderr


def test_files_that_cannot_serve_the_package_are_refused_naming_the_file(
    jobico: Jobico, workdir: Path
) -> None:
    _, path = rename(workdir)
    (workdir / "greet-schema.json").write_text('{"type": "nonsense"}')
    result = jobico("deploy", str(path), check=False)
    assert "greet-schema.json: not a valid JSON Schema" in result.stderr
    _, path = rename(workdir)
    (workdir / "greet-schema.json").write_text("{}")
    (workdir / "greet.wasm").write_bytes(b"\0asm\x01\0\0\0")  # valid, but exports nothing
    result = jobico("deploy", str(path), check=False)
    assert "greet.wasm:" in result.stderr and "malloc" in result.stderr


def test_upload_list_delete_and_status(jobico: Jobico, workdir: Path) -> None:
    tenant, path = rename(workdir)
    out = jobico("upload", "wasm", tenant, "echo.wasm", str(workdir / "greet.wasm"), "--json")
    assert json.loads(out.stdout)["version"] == 1
    bad = jobico(
        "upload", "wasm", tenant, "../escape.wasm", str(workdir / "greet.wasm"), check=False
    )
    assert bad.returncode == 2 and "invalid file name" in bad.stderr
    jobico("deploy", str(path))
    rows = json.loads(jobico("packages", tenant, "--json").stdout)
    assert [(r["package"], r["revision"]) for r in rows] == [("go-demo-job", 1)]
    status = json.loads(jobico("status", "--json").stdout)
    assert set(status["components"].values()) == {"ok"}
    assert "go-demo-job" in status["tenants"][tenant]
    # The platform's actors run at nice 0, well above the guests' 19 (Ray's default is 15).
    assert {e["nice"] for e in status["executors"]} == {0}
    jobico("delete", tenant, "go-demo-job")
    assert json.loads(jobico("packages", tenant, "--json").stdout) == []
    missing = jobico("show", tenant, "go-demo-job", check=False)
    assert missing.returncode == 3 and "has no package" in missing.stderr


def test_everything_survives_down_and_up_and_up_is_idempotent(
    jobico: Jobico, workdir: Path
) -> None:
    tenant, path = rename(workdir)
    jobico("deploy", str(path))
    before = jobico("show", tenant, "go-demo-job", "--json").stdout
    jobico("up")  # again: attaches, changes nothing
    assert jobico("show", tenant, "go-demo-job", "--json").stdout == before
    assert "stopped" in jobico("down").stdout
    stopped = jobico("packages", check=False)
    assert stopped.returncode == 6 and "jobico up" in stopped.stderr
    jobico("up")
    assert jobico("show", tenant, "go-demo-job", "--json").stdout == before


def test_every_command_has_help(jobico: Jobico) -> None:
    for command in (
        "up",
        "down",
        "status",
        "upload",
        "deploy",
        "packages",
        "show",
        "rollback",
        "delete",
    ):
        assert "Usage:" in jobico(command, "--help").stdout
