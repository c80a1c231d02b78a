"""Execution records (docs/contract.md#execution-records), written as a Hive-partitioned
Parquet dataset `<root>/tenant=<tenant>/date=<YYYY-MM-DD>/part-<unix ms>-<random>.parquet`.

Trade-offs: `add` writes a file per (tenant, date) at once and returns once it is fsync'd, so
a caller batches records itself (the recorder actor gathers a tenant's concurrent adds). Files
appear whole by renaming a hidden temporary file. Once a partition gathers more than
`compact_files` files under `compact_bytes`, it is due, and `compact_due` merges them into one
(larger files are left alone, so a merge costs the same however large the day grows). Merging
is not part of `add`: it reads back every small file, and a write that waited for it would
hold up the executor acknowledging those records (the actor merges between writes instead). A
merged file names the files it replaces, so `query` never counts a record twice after a crash
between writing it and deleting them (a plain pyarrow reader may, until that partition's next
compaction). Writing takes no lock, so tenants' writes run side by side, and side by side with
a merge of their own partition (a merge takes only the files it listed); one lock keeps
queries and merges (which delete the files queries read) apart.
"""

from __future__ import annotations

import functools
import json
import logging
import operator
import os
import posixpath
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from jobico.errors import InvalidInput
from jobico.homedir import private_dir
from jobico.model import check_name
from jobico.records.schema import (
    DATASET_SCHEMA,
    FILE_SCHEMA,
    PARTITIONING,
    SCHEMA,
    TIMESTAMP,
    date_of,
    micros,
    normalize,
    to_dicts,
)

log = logging.getLogger(__name__)

_ORDER = [(name, "ascending") for name in ("finished_at", "received_at", "event_id", "attempt")]
_REPLACES = b"jobico.replaces"
_TMP = ".tmp-"
_STALE_TMP_SECONDS = 3600.0


class Recorder:
    """Writes execution records to, and queries them from, a Parquet dataset.

    `root` is a local path or a URI `pyarrow.fs.FileSystem.from_uri` understands; with
    `filesystem`, `root` is a path inside it. A partition is due for compaction when a write
    takes it past `compact_files` small files. Thread-safe.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        filesystem: pafs.FileSystem | None = None,
        compact_files: int = 64,
        compact_bytes: int = 8 << 20,
    ) -> None:
        self._fs, self._root = _open_root(os.fspath(root), filesystem)
        if isinstance(self._fs, pafs.LocalFileSystem):  # results and logs: the owner's only
            private_dir(Path(self._root))
        else:
            self._fs.create_dir(self._root, recursive=True)
        self.compact_files = compact_files
        self.compact_bytes = compact_bytes
        self._lock = threading.Lock()  # queries against compactions
        self._counts_lock = threading.Lock()  # writes and merges both move a partition's count
        self._file_counts: dict[tuple[str, str], int] = {}
        self._replaces_cache: dict[str, frozenset[str]] = {}

    def add(self, records: Sequence[Mapping[str, Any]]) -> int:
        """Write `records` now, one file per (tenant, date); returns how many (all or none:
        InvalidInput names the first bad field).

        Adds may run at once on several threads, and one never waits for another, for a
        query or for a compaction: the Parquet writing and its fsyncs hold no lock. The
        partitions it takes past `compact_files` are due (`due`, `compact_due`).
        """
        rows = [normalize(record) for record in records]
        pending = _by_partition(rows)
        for key, part in pending.items():
            self._write(key, part)
            self._note_file(key)
        return len(rows)

    def due(self, tenant: str) -> list[str]:
        """The dates of `tenant`'s partitions due for compaction (known from this process's
        writes: a partition is counted from a listing on its first write)."""
        with self._counts_lock:
            return sorted(
                date
                for (owner, date), count in self._file_counts.items()
                if owner == tenant and count > self.compact_files
            )

    def compact_due(self, tenant: str) -> int:
        """Compact `tenant`'s due partitions; returns the files replaced. A failure is logged
        and leaves the files as they are (the records are stored already): never raised."""
        replaced = 0
        for date in self.due(tenant):
            try:
                replaced += self.compact(tenant, date)
            except Exception:
                log.exception("compacting %s/%s failed; its files stay as they are", tenant, date)
                with self._counts_lock:  # tried again only after as many writes again
                    self._file_counts[(tenant, date)] = 0
        return replaced

    def query(
        self,
        *,
        tenant: str | None = None,
        package: str | None = None,
        event: str | None = None,
        status: str | None = None,
        event_id: str | None = None,
        since: float | None = None,
        last: int | None = None,
        final_only: bool = False,
    ) -> list[dict[str, Any]]:
        """Records by finished_at ascending; times as unix seconds.

        `tenant` None reads every tenant (operators only). `last` keeps the newest N. With
        `final_only`, one record per (tenant, event_id): its earliest final one among those
        finished at or after `since`; events with no final record yet are left out.
        """
        if tenant is not None:
            check_name("tenant", tenant)
        if last is not None and last < 0:
            raise InvalidInput(f"last must be 0 or more, not {last}", field="last")
        # The status of a redelivered event's outcome is judged after picking its final record.
        pushed = {"package": package, "event": event, "event_id": event_id}
        if not final_only:
            pushed["status"] = status
        expression = _expression(tenant, pushed, since, final_only)
        with self._lock:
            table = self._stored(tenant, since, expression)
        table = table.sort_by(_ORDER)
        if final_only:
            table = _first_per_event(table)
            if status is not None:
                table = table.filter(pc.field("status") == status)
        if last is not None:
            table = table.slice(max(0, table.num_rows - last))
        return to_dicts(table)

    def final_ids(self, tenant: str, event_ids: Sequence[str]) -> set[str]:
        """Which of `event_ids` have a final record already."""
        return set(self.final_outcomes(tenant, event_ids))

    def final_outcomes(
        self, tenant: str, event_ids: Sequence[str]
    ) -> dict[str, tuple[str, str | None]]:
        """(status, error) of the final record of each of `event_ids` that has one (the
        earliest, should there be two)."""
        check_name("tenant", tenant)
        where = pc.field("event_id").isin(list(event_ids)) & (pc.field("final") == True)  # noqa: E712
        with self._lock:
            found = self._stored(tenant, None, where)
        rows = found.sort_by(_ORDER).select(["event_id", "status", "error"]).to_pylist()
        outcomes: dict[str, tuple[str, str | None]] = {}
        for row in rows:
            outcomes.setdefault(row["event_id"], (row["status"], row["error"]))
        return outcomes

    def compact(self, tenant: str, date: str) -> int:
        """Rewrite a partition's files into one; returns how many files it replaced."""
        check_name("tenant", tenant)
        _check_date(date)
        with self._lock:
            return self._compact(tenant, date)

    # --- writing ------------------------------------------------------------------------------

    def _write(self, key: tuple[str, str], rows: list[dict[str, Any]]) -> None:
        table = pa.Table.from_pylist(rows, schema=FILE_SCHEMA).sort_by(_ORDER)
        directory = self._dir(*key)
        self._fs.create_dir(directory, recursive=True)
        self._publish(table, directory, _file_name("part"))

    def _publish(self, table: pa.Table, directory: str, name: str) -> None:
        # Readers (and pyarrow.dataset) skip names starting with ".", so the file appears whole.
        temporary = f"{directory}/{_TMP}{name}"
        pq.write_table(table, temporary, filesystem=self._fs, compression="zstd")
        self._sync(temporary)
        self._fs.move(temporary, f"{directory}/{name}")
        self._sync(directory)

    def _sync(self, path: str) -> None:
        # fsync so a record a caller was told is stored survives a power loss (local disks).
        if isinstance(self._fs, pafs.LocalFileSystem):
            descriptor = os.open(path, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)

    def _note_file(self, key: tuple[str, str]) -> None:
        """One more small file in a partition (counted once from a listing, then in memory,
        so writes do not list directories)."""
        with self._counts_lock:
            known = key in self._file_counts
            self._file_counts[key] = self._file_counts.get(key, 0) + 1
        if known:
            return
        # The records are written already: compaction is opportunistic and must not fail them.
        try:
            listed = len(self._live_files(self._dir(*key)))
        except Exception:
            log.exception("counting the files of %s failed", key)
            return
        with self._counts_lock:
            self._file_counts[key] = max(self._file_counts[key], listed)

    def _compact(self, tenant: str, date: str) -> int:
        """Merge the partition's small files into one. Files past `compact_bytes` are left as
        they are, so a compaction never rewrites the day's records again and again: its cost
        stays bounded however many records the partition holds."""
        directory, key = self._dir(tenant, date), (tenant, date)
        with self._counts_lock:
            before = self._file_counts.get(key, 0)
        live = self._live_files(directory, clean=True)
        sizes = {info.path: info.size for info in self._fs.get_file_info(live)}
        files = [path for path in live if sizes[path] < self.compact_bytes]
        with self._counts_lock:  # small files only: the merged one, and any written meanwhile
            written = self._file_counts.get(key, 0) - before
            self._file_counts[key] = max(written, 0) + min(len(files), 1)
        if len(files) < 2:
            return 0
        table = ds.dataset(files, schema=FILE_SCHEMA, format="parquet", filesystem=self._fs)
        names = [posixpath.basename(path) for path in files]
        metadata = {_REPLACES: json.dumps(names).encode()}
        merged = table.to_table().sort_by(_ORDER).replace_schema_metadata(metadata)
        self._publish(merged, directory, _file_name("compact"))
        self._delete(files)
        return len(files)

    def _live_files(self, directory: str, *, clean: bool = False) -> list[str]:
        """The partition's data files not superseded by a compacted file.

        With `clean`, first finish an interrupted compaction and drop stale temporary files.
        """
        selector = pafs.FileSelector(directory, allow_not_found=True)
        infos = [info for info in self._fs.get_file_info(selector) if info.is_file]
        files = [info.path for info in infos if _is_data(info.base_name)]
        live = self._drop_superseded(files)
        if clean:
            self._delete([path for path in files if path not in live])
            self._delete([info.path for info in infos if _is_stale_tmp(info)])
        return live

    def _delete(self, paths: list[str]) -> None:
        for path in paths:
            self._fs.delete_file(path)
            self._replaces_cache.pop(path, None)

    # --- reading ------------------------------------------------------------------------------

    def _stored(self, tenant: str | None, since: float | None, where: Any) -> pa.Table:
        files = self._files(tenant, since)
        if not files:
            return SCHEMA.empty_table()
        dataset = ds.dataset(
            files,
            schema=DATASET_SCHEMA,
            format="parquet",
            filesystem=self._fs,
            partitioning=PARTITIONING,
            partition_base_dir=self._root,
        )
        return dataset.to_table(columns=SCHEMA.names, filter=where).cast(SCHEMA)

    def _files(self, tenant: str | None, since: float | None) -> list[str]:
        """Data files to read: only under `tenant=<tenant>` when given, dates from `since` on."""
        base = self._root if tenant is None else self._dir(tenant)
        selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
        first_date = "" if since is None else date_of(micros("since", since))
        files = [
            info.path
            for info in self._fs.get_file_info(selector)
            if info.is_file and self._in_dataset(info.path, first_date)
        ]
        return self._drop_superseded(files)

    def _in_dataset(self, path: str, first_date: str) -> bool:
        parts = path[len(self._root) + 1 :].split("/")
        return (
            len(parts) == 3
            and parts[0].startswith("tenant=")
            and parts[1].startswith("date=")
            and parts[1][len("date=") :] >= first_date
            and _is_data(parts[2])
        )

    def _drop_superseded(self, files: list[str]) -> list[str]:
        replaced: set[str] = set()
        for path in files:
            if posixpath.basename(path).startswith("compact-"):
                directory = posixpath.dirname(path)
                replaced.update(f"{directory}/{name}" for name in self._replaces(path))
        return [path for path in files if path not in replaced]

    def _replaces(self, path: str) -> frozenset[str]:
        # Compacted files never change, so their footers are read once per Recorder.
        if path not in self._replaces_cache:
            metadata = pq.read_schema(path, filesystem=self._fs).metadata or {}
            self._replaces_cache[path] = frozenset(json.loads(metadata.get(_REPLACES, b"[]")))
        return self._replaces_cache[path]

    def _dir(self, tenant: str, date: str | None = None) -> str:
        tenant_dir = f"{self._root}/tenant={tenant}"
        return tenant_dir if date is None else f"{tenant_dir}/date={date}"


# --- module helpers ---------------------------------------------------------------------------


def _open_root(root: str, filesystem: pafs.FileSystem | None) -> tuple[pafs.FileSystem, str]:
    if filesystem is not None:
        return filesystem, root.rstrip("/")
    if "://" in root:
        opened, path = pafs.FileSystem.from_uri(root)
        return opened, path.rstrip("/")
    return pafs.LocalFileSystem(), os.path.abspath(root)


def _file_name(prefix: str) -> str:
    return f"{prefix}-{time.time_ns() // 1_000_000}-{secrets.token_hex(4)}.parquet"


def _is_data(name: str) -> bool:
    return name.endswith(".parquet") and not name.startswith((".", "_"))


def _is_stale_tmp(info: pafs.FileInfo) -> bool:
    # Only old ones: a young temporary file may be another writer's add in progress.
    mtime = info.mtime.timestamp() if info.mtime is not None else 0.0
    return info.base_name.startswith(_TMP) and time.time() - mtime > _STALE_TMP_SECONDS


def _check_date(date: str) -> None:
    try:
        datetime.strptime(date, "%Y-%m-%d")
    except ValueError:
        raise InvalidInput(f"invalid date {date!r}: use YYYY-MM-DD", field="date") from None


def _by_partition(rows: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["tenant"], date_of(row["finished_at"])), []).append(row)
    return groups


def _expression(
    tenant: str | None, equal: dict[str, str | None], since: float | None, final_only: bool
) -> Any:
    terms = [pc.field(name) == value for name, value in equal.items() if value is not None]
    if tenant is not None:
        terms.append(pc.field("tenant") == tenant)
    if since is not None:
        terms.append(pc.field("finished_at") >= pa.scalar(micros("since", since), TIMESTAMP))
    if final_only:
        terms.append(pc.field("final"))
    return functools.reduce(operator.and_, terms) if terms else None


def _first_per_event(table: pa.Table) -> pa.Table:
    """The first row of each (tenant, event_id) of a table sorted by finished_at."""
    indexed = table.append_column("_row", pa.array(range(table.num_rows), pa.int64()))
    firsts = indexed.group_by(["tenant", "event_id"]).aggregate([("_row", "min")])["_row_min"]
    return table.take(firsts.take(pc.sort_indices(firsts)))
