"""The execution record of docs/contract.md#execution-records: its Parquet schema, the checks
a record passes before it is written, and its plain-dict form for queries and `jobico
executions`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from jobico.errors import InvalidInput
from jobico.model import check_name

TIMESTAMP = pa.timestamp("us", tz="UTC")
LOG_ENTRY = pa.struct(
    [
        pa.field("level", pa.int32(), nullable=False),
        pa.field("message", pa.string(), nullable=False),
        pa.field("time", TIMESTAMP, nullable=False),
    ]
)


def _required(name: str, kind: pa.DataType) -> pa.Field:
    return pa.field(name, kind, nullable=False)


# One execution attempt (docs/contract.md#execution-records). `final` is true when this attempt
# is the event's last (`ok`, `error`, or a failure after the last retry), so readers can pick
# exactly one outcome per event id without knowing the retry policy.
SCHEMA = pa.schema(
    [
        _required("tenant", pa.string()),
        _required("package", pa.string()),
        _required("revision", pa.int64()),
        _required("queue", pa.string()),
        _required("event", pa.string()),
        _required("event_id", pa.string()),
        _required("attempt", pa.int64()),
        _required("status", pa.string()),
        pa.field("code", pa.uint64()),
        pa.field("result", pa.string()),
        _required("logs", pa.list_(pa.field("item", LOG_ENTRY, nullable=False))),
        pa.field("error", pa.string()),
        _required("received_at", TIMESTAMP),
        _required("started_at", TIMESTAMP),
        _required("finished_at", TIMESTAMP),
        _required("duration_ms", pa.float64()),
        # Nullable: files written before these columns existed read them as null.
        pa.field("fuel_used", pa.int64()),  # fuel the guest burnt (wasmtime's unit)
        pa.field("memory_bytes", pa.int64()),  # peak linear memory of the instance
        _required("executor", pa.string()),
        _required("final", pa.bool_()),
    ]
)
# The tenant and the date live in the directory names (Hive convention), not in the files.
FILE_SCHEMA = SCHEMA.remove(SCHEMA.get_field_index("tenant"))
PARTITION_SCHEMA = pa.schema([_required("tenant", pa.string()), _required("date", pa.string())])
# Explicit string types: a tenant named "123" must not be inferred as an integer.
PARTITIONING = ds.partitioning(PARTITION_SCHEMA, flavor="hive")
DATASET_SCHEMA = pa.schema(list(FILE_SCHEMA) + list(PARTITION_SCHEMA))

TIMES = ("received_at", "started_at", "finished_at")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UINT64_MAX = 2**64 - 1


def date_of(micros: int) -> str:
    return (_EPOCH + timedelta(microseconds=micros)).date().isoformat()


def to_dicts(table: pa.Table) -> list[dict[str, Any]]:
    # Column by column, times converted in Arrow: several times faster than Table.to_pylist.
    columns = {name: table[name] for name in table.column_names}
    for name in TIMES:
        columns[name] = _seconds(columns[name])
    logs = [_logs_in_seconds(chunk) for chunk in columns["logs"].chunks]
    columns["logs"] = pa.chunked_array(logs, _LOGS_IN_SECONDS)
    names = list(columns)
    values = [column.to_pylist() for column in columns.values()]
    return [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]


_LOGS_IN_SECONDS = pa.list_(
    pa.struct([("level", pa.int32()), ("message", pa.string()), ("time", pa.float64())])
)


def _seconds(times: Any) -> Any:
    """Timestamps (microseconds) as float unix seconds."""
    return pc.divide(times.cast(pa.int64()).cast(pa.float64()), 1_000_000.0)


def _logs_in_seconds(chunk: pa.ListArray) -> pa.ListArray:
    entries = chunk.flatten()  # only this (possibly sliced) chunk's entries
    level, message, time_ = entries.flatten()
    seconds = pa.StructArray.from_arrays(
        [level, message, _seconds(time_)], names=["level", "message", "time"]
    )
    return pa.ListArray.from_arrays(pc.subtract(chunk.offsets, chunk.offsets[0]), seconds)


# --- validating records -----------------------------------------------------------------------


def _bad(name: str, problem: str) -> InvalidInput:
    return InvalidInput(f"execution record field {name!r} {problem}", field=name)


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _bad(name, f"must be a string, not {type(value).__name__}")
    return value


def _optional_text(name: str, value: Any) -> str | None:
    return None if value is None else _text(name, value)


def _integer(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(name, f"must be an integer, not {type(value).__name__}")
    return value


def _code(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if not 0 <= _integer(name, value) <= _UINT64_MAX:
        raise _bad(name, f"must be an unsigned 64-bit integer, not {value}")
    return int(value)


def _optional_int64(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if not 0 <= _integer(name, value) < 2**63:
        raise _bad(name, f"must be a non-negative 64-bit integer, not {value}")
    return int(value)


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(name, f"must be a number, not {type(value).__name__}")
    return float(value)


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _bad(name, f"must be true or false, not {type(value).__name__}")
    return value


def micros(name: str, value: Any) -> int:
    """Unix seconds (int or float) or an aware datetime, as integer microseconds UTC."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise _bad(name, "must carry a time zone")
        return (value - _EPOCH) // timedelta(microseconds=1)
    return round(_number(name, value) * 1_000_000)


def _logs(name: str, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise _bad(name, f"must be a list, not {type(value).__name__}")
    return [_log_entry(f"{name}[{index}]", entry) for index, entry in enumerate(value)]


def _log_entry(name: str, entry: Any) -> dict[str, Any]:
    if not isinstance(entry, Mapping) or set(entry) != {"level", "message", "time"}:
        raise _bad(name, "must be an object with exactly level, message and time")
    return {
        "level": _integer(f"{name}.level", entry["level"]),
        "message": _text(f"{name}.message", entry["message"]),
        "time": micros(f"{name}.time", entry["time"]),
    }


def _tenant(name: str, value: Any) -> str:
    # The tenant becomes a directory name, so it must be a safe name.
    return check_name("tenant", _text(name, value))


_FIELDS: dict[str, Callable[[str, Any], Any]] = {
    "tenant": _tenant,
    "package": _text,
    "revision": _integer,
    "queue": _text,
    "event": _text,
    "event_id": _text,
    "attempt": _integer,
    "status": _text,
    "code": _code,
    "result": _optional_text,
    "logs": _logs,
    "error": _optional_text,
    "received_at": micros,
    "started_at": micros,
    "finished_at": micros,
    "duration_ms": _number,
    "fuel_used": _optional_int64,
    "memory_bytes": _optional_int64,
    "executor": _text,
    "final": _flag,
}
assert list(_FIELDS) == SCHEMA.names


def normalize(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record as Arrow-ready values: exactly the schema's fields, times in microseconds."""
    if not isinstance(record, Mapping):
        raise InvalidInput(f"an execution record must be an object, not {type(record).__name__}")
    missing, unknown = set(_FIELDS) - set(record), set(record) - set(_FIELDS)
    if missing or unknown:
        raise InvalidInput(
            "execution record fields do not match: "
            f"missing {sorted(missing)}, unknown {sorted(unknown)}",
            missing=sorted(missing),
            unknown=sorted(unknown),
        )
    return {name: convert(name, record[name]) for name, convert in _FIELDS.items()}
