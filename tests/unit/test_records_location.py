"""Records go wherever pyarrow reaches: JOBICO_RECORDS is a local path or a filesystem URI
(file://, s3://, gs://), and writing, reading and compacting all go through that filesystem."""

from __future__ import annotations

from pathlib import Path

import pyarrow.fs as pafs

from jobico.config import Settings
from jobico.records.recorder import Recorder
from tests.unit.test_recorder import record


def test_records_default_to_the_home_and_follow_jobico_records(tmp_path: Path) -> None:
    assert Settings.from_env({"JOBICO_HOME": str(tmp_path)}).records_uri == str(
        tmp_path / "records"
    )
    uri = "s3://bucket/jobico/records"
    assert Settings.from_env({"JOBICO_RECORDS": uri}).records_uri == uri


def test_a_file_uri_is_written_read_and_compacted_through_pyarrows_filesystem(
    tmp_path: Path,
) -> None:
    recorder = Recorder(f"file://{tmp_path}/records", compact_files=2)
    for n in range(3):  # three adds, three files: past compact_files, merged into one
        recorder.add([record(event_id=f"01E{n}", finished_at=1_700_000_000.0 + n)])
    assert recorder.compact_due("acme") == 3
    files = [p for p in (tmp_path / "records").rglob("*.parquet")]
    assert [p.name.split("-")[0] for p in files] == ["compact"]
    reopened = Recorder(f"file://{tmp_path}/records")
    assert [r["event_id"] for r in reopened.query(tenant="acme")] == ["01E0", "01E1", "01E2"]


def test_a_uri_names_its_filesystem_and_a_path_the_local_one(tmp_path: Path) -> None:
    fs, _ = pafs.FileSystem.from_uri(f"file://{tmp_path}")
    assert isinstance(fs, pafs.LocalFileSystem)
    recorder = Recorder(tmp_path / "plain")
    assert recorder.add([record()]) == 1
    assert list((tmp_path / "plain").rglob("part-*.parquet"))
