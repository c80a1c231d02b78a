"""The executions recorder: Parquet layout, queries, tenant isolation, compaction, atomic files."""

from __future__ import annotations

import shutil
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from jobico.errors import InvalidInput, InvalidName
from jobico.records.recorder import Recorder
from jobico.records.schema import FILE_SCHEMA

DAY = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
UINT64_MAX = 2**64 - 1


def record(**changes: Any) -> dict[str, Any]:
    """A valid record with `changes`; received and started shortly before a float finished_at."""
    finished = changes.get("finished_at", DAY + 1.0)
    finished = finished if isinstance(finished, float) else DAY + 1.0
    base: dict[str, Any] = {
        "tenant": "acme",
        "package": "pkg",
        "revision": 3,
        "queue": "q",
        "event": "ev",
        "event_id": "id-1",
        "attempt": 1,
        "status": "ok",
        "code": 0,
        "result": "done",
        "logs": [],
        "error": None,
        "received_at": finished - 0.5,
        "started_at": finished - 0.25,
        "finished_at": finished,
        "duration_ms": 250.0,
        "fuel_used": 1234,
        "memory_bytes": 65536,
        "executor": "node-1/executor-0",
        "final": True,
    }
    return base | changes


def data_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*.parquet") if not path.name.startswith("."))


@pytest.fixture
def recorder(tmp_path: Path) -> Recorder:
    return Recorder(tmp_path / "records")


# --- round trip and types ---------------------------------------------------------------------


def test_round_trip_keeps_every_field_with_exact_types(recorder: Recorder) -> None:
    logs = [
        {"level": 1, "message": "first", "time": DAY + 0.5},
        {"level": 3, "message": "second", "time": DAY + 0.25},
        {"level": 6, "message": "third ✓", "time": DAY + 0.75},
    ]
    written = record(code=UINT64_MAX, status="error", result="big", logs=logs, error="why")
    assert recorder.add([written]) == 1

    (read,) = recorder.query(tenant="acme")

    assert read == written
    assert list(read) == list(written)
    assert [type(read[name]) for name in ("code", "revision", "attempt")] == [int, int, int]
    assert [type(read[name]) for name in ("received_at", "started_at", "finished_at")] == [
        float
    ] * 3
    assert type(read["final"]) is bool and type(read["duration_ms"]) is float
    assert [entry["message"] for entry in read["logs"]] == ["first", "second", "third ✓"]


def test_round_trip_keeps_nulls(recorder: Recorder) -> None:
    written = record(
        status="trap",
        code=None,
        result=None,
        error="unreachable",
        fuel_used=None,
        memory_bytes=None,
        final=False,
    )
    recorder.add([written])

    assert recorder.query(tenant="acme") == [written]


def test_datetimes_are_accepted_and_read_back_as_unix_seconds(recorder: Recorder) -> None:
    moment = datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=UTC)
    recorder.add([record(received_at=moment, started_at=moment, finished_at=moment)])

    (read,) = recorder.query(tenant="acme")

    assert read["finished_at"] == moment.timestamp()


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"code": UINT64_MAX + 1}, "code"),
        ({"code": -1}, "code"),
        ({"attempt": "1"}, "attempt"),
        ({"revision": True}, "revision"),
        ({"final": 1}, "final"),
        ({"finished_at": "yesterday"}, "finished_at"),
        ({"finished_at": datetime(2024, 1, 1)}, "finished_at"),
        ({"logs": [{"level": 1, "message": "m"}]}, "logs[0]"),
        ({"logs": [{"level": "1", "message": "m", "time": DAY}]}, "logs[0].level"),
    ],
)
def test_add_rejects_a_bad_field_by_name(
    recorder: Recorder, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        recorder.add([record(**changes)])

    assert raised.value.details["field"] == field


def test_add_rejects_missing_and_unknown_fields(recorder: Recorder) -> None:
    bad = record(extra=1)
    del bad["executor"]

    with pytest.raises(InvalidInput) as raised:
        recorder.add([bad])

    assert raised.value.details == {"missing": ["executor"], "unknown": ["extra"]}


def test_add_stores_nothing_when_one_record_of_the_batch_is_bad(recorder: Recorder) -> None:
    with pytest.raises(InvalidInput):
        recorder.add([record(), record(code=-1)])

    assert recorder.query() == []


def test_a_tenant_name_that_could_escape_its_directory_is_refused(recorder: Recorder) -> None:
    with pytest.raises(InvalidName):
        recorder.add([record(tenant="../other")])
    with pytest.raises(InvalidName):
        recorder.query(tenant="tenant=x/../y")


# --- writing ----------------------------------------------------------------------------------


def test_adding_no_records_writes_nothing(recorder: Recorder, tmp_path: Path) -> None:
    assert recorder.add([]) == 0
    assert data_files(tmp_path) == []


# --- layout and atomic files ------------------------------------------------------------------


def test_files_are_partitioned_by_tenant_and_finished_date(
    recorder: Recorder, tmp_path: Path
) -> None:
    midnight = datetime(2024, 3, 2, tzinfo=UTC).timestamp()
    rows = [
        record(tenant="acme", finished_at=midnight - 0.001),
        record(tenant="acme", finished_at=midnight),
        record(tenant="beta", finished_at=midnight),
    ]
    assert recorder.add(rows) == 3

    relative = [path.relative_to(tmp_path / "records") for path in data_files(tmp_path)]
    assert sorted(str(path.parent) for path in relative) == [
        "tenant=acme/date=2024-03-01",
        "tenant=acme/date=2024-03-02",
        "tenant=beta/date=2024-03-02",
    ]
    assert all(path.name.startswith("part-") and path.name.count("-") == 2 for path in relative)


def test_written_files_are_readable_by_plain_pyarrow_dataset(
    recorder: Recorder, tmp_path: Path
) -> None:
    recorder.add([record(event_id="a", code=UINT64_MAX), record(tenant="beta", event_id="b")])

    table = ds.dataset(tmp_path / "records", format="parquet", partitioning="hive").to_table()

    assert sorted(table["event_id"].to_pylist()) == ["a", "b"]
    assert sorted(table["tenant"].to_pylist()) == ["acme", "beta"]
    assert table.schema.field("code").type == pa.uint64()
    assert table.schema.field("finished_at").type == pa.timestamp("us", tz="UTC")
    assert UINT64_MAX in table["code"].to_pylist()


def test_a_file_is_written_under_a_hidden_name_then_renamed(tmp_path: Path) -> None:
    filesystem, handler = recording_filesystem()
    recorder = Recorder(str(tmp_path), filesystem=filesystem)
    recorder.add([record()])

    outputs = [path for op, path in handler.calls if op == "open_output_stream"]
    moves = [path for op, path in handler.calls if op == "move"]
    assert [Path(path).name[:5] for path in outputs] == [".tmp-"]
    assert moves == [outputs[0]]
    assert [path.name for path in data_files(tmp_path)] == [Path(outputs[0]).name[5:]]


def test_a_failed_write_leaves_nothing_visible_and_raises(
    recorder: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def write_half_then_fail(table: pa.Table, where: str, **kwargs: Any) -> None:
        Path(where).write_bytes(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", write_half_then_fail)

    with pytest.raises(OSError, match="disk full"):
        recorder.add([record()])

    assert data_files(tmp_path) == []
    assert ds.dataset(tmp_path / "records", partitioning="hive").files == []
    assert recorder.query(tenant="acme") == []
    monkeypatch.undo()
    assert recorder.add([record()]) == 1
    assert len(recorder.query(tenant="acme")) == 1


def test_records_reach_storage_in_the_file_schema(recorder: Recorder, tmp_path: Path) -> None:
    recorder.add([record()])

    (path,) = data_files(tmp_path)

    assert pq.read_schema(path).remove_metadata() == FILE_SCHEMA


def test_files_written_before_the_figures_existed_read_them_as_null(
    recorder: Recorder, tmp_path: Path
) -> None:
    recorder.add([record(event_id="new")])
    (new_file,) = data_files(tmp_path)
    old_schema = FILE_SCHEMA.remove(FILE_SCHEMA.get_field_index("fuel_used"))
    old_schema = old_schema.remove(old_schema.get_field_index("memory_bytes"))
    old_row = {
        k: v for k, v in pq.read_table(new_file).to_pylist()[0].items() if k in old_schema.names
    }
    old = pa.Table.from_pylist([{**old_row, "event_id": "old"}], schema=old_schema)
    pq.write_table(old, new_file.parent / "old-1-abcd.parquet")

    read = {r["event_id"]: r for r in recorder.query(tenant="acme")}

    assert (read["old"]["fuel_used"], read["old"]["memory_bytes"]) == (None, None)
    assert (read["new"]["fuel_used"], read["new"]["memory_bytes"]) == (1234, 65536)
    assert read["old"]["status"] == "ok"


@pytest.mark.parametrize("name", ["fuel_used", "memory_bytes"])
@pytest.mark.parametrize("value", [-1, 2**63, 1.5, "7"])
def test_figures_must_be_non_negative_64_bit_integers(
    recorder: Recorder, name: str, value: object
) -> None:
    with pytest.raises(InvalidInput, match=name):
        recorder.add([record(**{name: value})])


# --- queries ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [("package", "other"), ("event", "other"), ("status", "error"), ("event_id", "other")],
)
def test_query_filters_by_field(recorder: Recorder, name: str, value: str) -> None:
    other: dict[str, Any] = {name: value}
    recorder.add([record(finished_at=DAY + 1), record(finished_at=DAY + 2, **other)])
    recorder.add([record(finished_at=DAY + 3), record(finished_at=DAY + 4, **other)])

    found = recorder.query(tenant="acme", **other)

    assert [(r[name], r["finished_at"]) for r in found] == [(value, DAY + 2), (value, DAY + 4)]


def test_since_keeps_records_finished_at_or_after_it(recorder: Recorder) -> None:
    recorder.add([record(finished_at=DAY - 86_400.0 * 3), record(finished_at=DAY)])
    recorder.add([record(finished_at=DAY + 1)])

    found = recorder.query(tenant="acme", since=DAY)

    assert [r["finished_at"] for r in found] == [DAY, DAY + 1]


def test_results_are_sorted_by_finished_at_across_files(recorder: Recorder) -> None:
    recorder.add([record(event_id="c", finished_at=DAY + 3)])
    recorder.add([record(event_id="a", finished_at=DAY + 1)])
    recorder.add([record(event_id="b", finished_at=DAY + 2)])

    assert [r["event_id"] for r in recorder.query(tenant="acme")] == ["a", "b", "c"]


def test_last_keeps_the_newest_n_in_ascending_order(recorder: Recorder) -> None:
    def logs(i: int) -> list[dict[str, Any]]:
        return [{"level": 1, "message": f"{i}.{j}", "time": DAY + i} for j in range(i % 3)]

    recorder.add([record(event_id=str(i), finished_at=DAY + i, logs=logs(i)) for i in range(10)])

    newest = recorder.query(tenant="acme", last=3)

    assert [r["event_id"] for r in newest] == ["7", "8", "9"]
    assert [r["logs"] for r in newest] == [logs(7), logs(8), logs(9)]
    assert recorder.query(tenant="acme", last=0) == []
    assert len(recorder.query(tenant="acme", last=50)) == 10


def test_final_only_gives_one_record_per_event_id(recorder: Recorder) -> None:
    recorder.add(
        [
            record(event_id="x", attempt=1, status="trap", final=False, finished_at=DAY + 1),
            record(event_id="x", attempt=2, status="ok", final=True, finished_at=DAY + 2),
            # An at-least-once redelivery ran x again: the earliest final record counts.
            record(event_id="x", attempt=2, status="error", final=True, finished_at=DAY + 5),
            record(
                event_id="y", attempt=1, status="error", code=7, final=True, finished_at=DAY + 3
            ),
            record(event_id="z", attempt=1, status="timeout", final=False, finished_at=DAY + 4),
            record(tenant="beta", event_id="x", final=True, finished_at=DAY + 6),
        ]
    )
    recorder.add([record(event_id="z", attempt=2, status="ok", final=True, finished_at=DAY + 7)])

    found = recorder.query(final_only=True)

    assert [(r["tenant"], r["event_id"], r["status"]) for r in found] == [
        ("acme", "x", "ok"),
        ("acme", "y", "error"),
        ("beta", "x", "ok"),
        ("acme", "z", "ok"),
    ]
    assert recorder.query(tenant="acme", final_only=True, status="error") == [found[1]]


# --- tenant isolation -------------------------------------------------------------------------


def test_a_tenant_query_never_returns_another_tenants_records(recorder: Recorder) -> None:
    recorder.add([record(tenant="acme", event_id="a"), record(tenant="beta", event_id="b")])
    recorder.add([record(tenant="acme", event_id="a2"), record(tenant="beta", event_id="b2")])

    assert {r["event_id"] for r in recorder.query(tenant="acme")} == {"a", "a2"}
    assert {r["tenant"] for r in recorder.query(tenant="beta")} == {"beta"}
    assert recorder.query(tenant="nobody") == []


def test_a_tenant_query_does_not_open_another_tenants_directory(tmp_path: Path) -> None:
    filesystem, handler = recording_filesystem()
    recorder = Recorder(str(tmp_path), filesystem=filesystem)
    recorder.add([record(tenant="acme"), record(tenant="beta")])
    # Were beta's directory read, this corrupt file would fail the query.
    (tmp_path / "tenant=beta" / "date=2023-11-14" / "part-1-bad.parquet").write_bytes(b"junk")
    handler.calls.clear()

    found = recorder.query(tenant="acme", since=DAY)

    assert [r["tenant"] for r in found] == ["acme"]
    assert handler.calls
    assert not [path for _, path in handler.calls if "tenant=beta" in path]
    assert all("tenant=acme" in path for _, path in handler.calls)


# --- compaction -------------------------------------------------------------------------------


def test_compaction_keeps_every_record_in_one_file(recorder: Recorder, tmp_path: Path) -> None:
    for i in range(5):
        recorder.add([record(event_id=f"{i}-{j}", finished_at=DAY + i + j / 10) for j in range(3)])
    before = recorder.query(tenant="acme")

    assert recorder.compact("acme", "2023-11-14") == 5

    assert recorder.query(tenant="acme") == before
    (only,) = data_files(tmp_path)
    assert only.name.startswith("compact-")
    assert recorder.compact("acme", "2023-11-14") == 0


def test_a_partition_past_its_file_count_is_due_and_compact_due_merges_it(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path, compact_files=3)
    for i in range(3):
        recorder.add([record(event_id=str(i), finished_at=DAY + i)])
    assert recorder.due("acme") == []
    recorder.add([record(event_id="3", finished_at=DAY + 3)])
    assert recorder.due("acme") == ["2023-11-14"]
    assert len(data_files(tmp_path)) == 4  # adding wrote only: merging is compact_due's

    assert recorder.compact_due("acme") == 4

    assert len(data_files(tmp_path)) == 1
    assert recorder.due("acme") == []
    assert [r["event_id"] for r in recorder.query(tenant="acme")] == ["0", "1", "2", "3"]


def test_only_the_named_tenants_partitions_are_compacted(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path, compact_files=1)
    for i in range(2):
        recorder.add([record(event_id=f"a{i}"), record(event_id=f"b{i}", tenant="beta")])

    assert recorder.compact_due("beta") == 2

    assert recorder.due("acme") == ["2023-11-14"]
    assert len(data_files(tmp_path / "tenant=acme")) == 2


def test_a_failed_compaction_is_logged_and_leaves_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder(tmp_path, compact_files=1)

    def broken(tenant: str, date: str) -> int:
        raise OSError("no space for the compacted file")

    monkeypatch.setattr(recorder, "_compact", broken)
    for i in range(3):
        assert recorder.add([record(event_id=str(i), finished_at=DAY + i)]) == 1

    assert recorder.compact_due("acme") == 0
    assert recorder.due("acme") == []  # tried again only after as many writes again
    assert [r["event_id"] for r in recorder.query(tenant="acme")] == ["0", "1", "2"]
    assert len(data_files(tmp_path)) == 3


def test_a_write_does_not_wait_for_a_compaction_of_its_partition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder(tmp_path, compact_files=1)
    for i in range(2):
        recorder.add([record(event_id=str(i), finished_at=DAY + i)])
    publish, entered, release = recorder._publish, threading.Event(), threading.Event()

    def slow_merge(table: pa.Table, directory: str, name: str) -> None:
        if name.startswith("compact-"):
            entered.set()
            release.wait(10)  # the merge stalls, as one reading back many files would
        publish(table, directory, name)

    monkeypatch.setattr(recorder, "_publish", slow_merge)
    merging = threading.Thread(target=recorder.compact_due, args=("acme",))
    merging.start()
    try:
        assert entered.wait(10)
        recorder.add([record(event_id="2", finished_at=DAY + 2)])  # returns while it merges
        assert merging.is_alive()
    finally:
        release.set()
        merging.join(10)
    # The file written during the merge is neither merged away nor lost, and still counted.
    assert [r["event_id"] for r in recorder.query(tenant="acme")] == ["0", "1", "2"]
    assert len(data_files(tmp_path)) == 2
    assert recorder.due("acme") == ["2023-11-14"]


def test_files_left_by_an_interrupted_compaction_are_not_counted_twice(
    recorder: Recorder, tmp_path: Path
) -> None:
    for i in range(3):
        recorder.add([record(event_id=str(i), finished_at=DAY + i)])
    saved = tmp_path / "saved"
    partition = tmp_path / "records" / "tenant=acme" / "date=2023-11-14"
    shutil.copytree(partition, saved)
    recorder.compact("acme", "2023-11-14")
    # As if the process died after publishing the compacted file, before deleting the old ones.
    for path in saved.iterdir():
        shutil.copy(path, partition / path.name)

    reopened = Recorder(tmp_path / "records")
    assert [r["event_id"] for r in reopened.query(tenant="acme")] == ["0", "1", "2"]
    assert reopened.compact("acme", "2023-11-14") == 0
    assert len(data_files(partition)) == 1


def test_compact_refuses_a_bad_date(recorder: Recorder) -> None:
    with pytest.raises(InvalidInput):
        recorder.compact("acme", "../2024-01-01")


# --- a filesystem that records what it is asked for --------------------------------------------


class RecordingHandler(pafs.FileSystemHandler):
    """Delegates to the local filesystem and records (operation, path) of every call."""

    def __init__(self) -> None:
        self.local = pafs.LocalFileSystem()
        self.calls: list[tuple[str, str]] = []

    def _note(self, operation: str, path: str) -> str:
        self.calls.append((operation, path))
        return path

    def get_type_name(self) -> str:
        return "recording"

    def normalize_path(self, path: str) -> str:
        return path

    def equals(self, other: Any) -> bool:
        return other is self

    def get_file_info(self, paths: list[str]) -> list[pafs.FileInfo]:
        infos: list[pafs.FileInfo] = self.local.get_file_info(
            [self._note("get_file_info", p) for p in paths]
        )
        return infos

    def get_file_info_selector(self, selector: pafs.FileSelector) -> list[pafs.FileInfo]:
        self._note("list", selector.base_dir)
        infos: list[pafs.FileInfo] = self.local.get_file_info(selector)
        return infos

    def create_dir(self, path: str, recursive: bool) -> None:
        self.local.create_dir(self._note("create_dir", path), recursive=recursive)

    def delete_dir(self, path: str) -> None:
        self.local.delete_dir(self._note("delete_dir", path))

    def delete_dir_contents(self, path: str, missing_dir_ok: bool = False) -> None:
        self.local.delete_dir_contents(self._note("delete_dir_contents", path), missing_dir_ok)

    def delete_root_dir_contents(self) -> None:
        raise NotImplementedError

    def delete_file(self, path: str) -> None:
        self.local.delete_file(self._note("delete_file", path))

    def move(self, src: str, dest: str) -> None:
        self.local.move(self._note("move", src), dest)

    def copy_file(self, src: str, dest: str) -> None:
        self.local.copy_file(self._note("copy_file", src), dest)

    def open_input_stream(self, path: str) -> Any:
        return self.local.open_input_stream(self._note("open_input_stream", path))

    def open_input_file(self, path: str) -> Any:
        return self.local.open_input_file(self._note("open_input_file", path))

    def open_output_stream(self, path: str, metadata: Any) -> Any:
        return self.local.open_output_stream(self._note("open_output_stream", path), metadata)

    def open_append_stream(self, path: str, metadata: Any) -> Any:
        return self.local.open_append_stream(self._note("open_append_stream", path), metadata)


def recording_filesystem() -> tuple[pafs.PyFileSystem, RecordingHandler]:
    handler = RecordingHandler()
    return pafs.PyFileSystem(handler), handler


def test_compaction_leaves_files_past_the_size_threshold_alone(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "records", compact_files=2, compact_bytes=1)
    for n in range(4):
        rec.add([record(event_id=f"e{n}")])
    assert rec.compact_due("acme") == 0
    assert rec.due("acme") == []  # not due again at every write: large files are not counted
    files = sorted(p.name for p in (tmp_path / "records").rglob("*.parquet"))
    assert len(files) == 4 and all(name.startswith("part-") for name in files)
    assert len(rec.query(tenant="acme")) == 4


def test_final_ids_names_the_events_that_have_a_final_record(recorder: Recorder) -> None:
    recorder.add([record(event_id="done"), record(event_id="tried", final=False)])
    recorder.add([record(event_id="later")])
    assert recorder.final_ids("acme", ["done", "tried", "later", "never"]) == {"done", "later"}


def test_final_outcomes_give_the_status_and_error_of_each_final_record(recorder: Recorder) -> None:
    failed = record(event_id="failed", status="trap", code=None, result=None, error="unreachable")
    recorder.add([record(event_id="done"), failed, record(event_id="tried", final=False)])
    assert recorder.final_outcomes("acme", ["done", "failed", "tried", "never"]) == {
        "done": ("ok", None),
        "failed": ("trap", "unreachable"),
    }


# --- tenants writing side by side -------------------------------------------------------------


def test_one_tenants_write_does_not_wait_for_anothers_under_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder(tmp_path)
    publish, entered, release = recorder._publish, threading.Event(), threading.Event()

    def slow_for_acme(table: pa.Table, directory: str, name: str) -> None:
        if "tenant=acme" in directory:
            entered.set()
            release.wait(10)  # acme's write stalls, as a big write or a slow disk would
        publish(table, directory, name)

    monkeypatch.setattr(recorder, "_publish", slow_for_acme)
    stalled = threading.Thread(target=recorder.add, args=([record(event_id="a")],))
    stalled.start()
    try:
        assert entered.wait(10)
        recorder.add([record(event_id="b", tenant="beta")])  # returns while acme's waits
        assert [r["event_id"] for r in recorder.query(tenant="beta")] == ["b"]
        assert stalled.is_alive()
    finally:
        release.set()
        stalled.join(10)
    assert [r["event_id"] for r in recorder.query()] == ["a", "b"]
