"""Import a REES46 store export into Tailor's canonical event log.

The input is the CSV layout of the public "eCommerce behavior data from multi category
store" clickstream (REES46 Open CDP): ``event_time,event_type,product_id,category_id,
category_code,brand,price,user_id,user_session``. Real monthly exports are several GB,
so the file is streamed in chunks and every chunk becomes one Parquet row group; memory
stays bounded by the chunk size plus 10 bytes per written event for duplicate detection.

Every input line is either written or rejected with a reason. Rejected rows are counted
in the report and copied, with their reason, to ``<events_dir>/../rejected/`` so a user
can see exactly what was dropped and why. That includes lines with the wrong number of
fields: pyarrow's CSV reader hands each one to a callback, whereas pandas' C parser
silently truncates a line with one extra field when it starts a chunk.
"""

from __future__ import annotations

import csv
import hashlib
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv
import pyarrow.parquet as pq

from tailor.core.events import EVENT_SCHEMA

EXPECTED_COLUMNS = (
    "event_time",
    "event_type",
    "product_id",
    "category_id",
    "category_code",
    "brand",
    "price",
    "user_id",
    "user_session",
)

# The export says "cart" where Tailor says "add_to_cart"; the rest match.
EVENT_TYPE_MAP = {
    "view": "view",
    "cart": "add_to_cart",
    "remove_from_cart": "remove_from_cart",
    "purchase": "purchase",
}

# Precedence order: a row with several problems is counted once, under the first reason.
REJECT_REASONS = (
    "missing_user_id",
    "bad_user_id",
    "bad_timestamp",
    "unknown_event_type",
    "bad_price",
    "missing_session",
    "missing_item_id",
    "bad_item_id",
    "duplicate",
    "malformed_row",
)

# Rejected-rows file layout. line_number and raw_line are only known, and only filled,
# for malformed_row: those lines could not be split into the expected fields.
REJECTED_COLUMNS = ("reason", *EXPECTED_COLUMNS, "line_number", "raw_line")

# Bytes parsed per pyarrow block; rows are regrouped into chunk_rows afterwards.
_READ_BLOCK_BYTES = 16 << 20
# A real header is ~100 bytes; the cap stops a headerless binary file being read whole.
_MAX_HEADER_BYTES = 64 << 10

# The export always spells out the zone; a time without it is ambiguous, so it is rejected.
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S UTC"

# 10 bytes = the 20 hex characters of event_id; the dedup index keeps exactly these bytes.
EVENT_ID_BYTES = 10

# Joins raw fields before hashing. A comma could occur inside a quoted field and make two
# different rows hash alike; the ASCII unit separator does not occur in this export.
_FIELD_SEPARATOR = "\x1f"

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_INTEGER_PATTERN = r"[+-]?\d{1,19}"


class ImportFormatError(ValueError):
    """The file is not a REES46 export this importer can read.

    Derives from ValueError rather than the builtin ImportError: the latter means a
    Python module failed to import, and ``except ImportError`` guards around optional
    dependencies would silently swallow a bad data file.
    """


@dataclass(frozen=True)
class ImportReport:
    """What one import did; ``rows_read == rows_written + sum(rejected.values())``."""

    rows_read: int
    rows_written: int
    rejected: dict[str, int]
    unknown_event_types: dict[str, int]
    output: Path
    first_ts: datetime | None
    last_ts: datetime | None
    seconds: float
    # None when nothing was rejected, so a stale file never suggests rejections that
    # did not happen in this import.
    rejected_output: Path | None


class _SeenEventIds:
    """Exact set of the event ids written so far in one import.

    A Python set of tens of millions of ids costs several GB; one sorted array of
    fixed-width 10-byte digests costs 10 bytes per id. New ids are inserted at their
    searchsorted positions, a linear merge (~0.3 s per chunk at 20M ids), where
    re-sorting the whole array per chunk costs several times more.
    """

    def __init__(self) -> None:
        self._sorted = np.empty(0, dtype=f"S{EVENT_ID_BYTES}")

    def contains(self, keys: np.ndarray) -> np.ndarray:
        if not len(self._sorted):
            return np.zeros(len(keys), dtype=bool)
        positions = np.searchsorted(self._sorted, keys)
        in_bounds = positions < len(self._sorted)
        found = np.zeros(len(keys), dtype=bool)
        found[in_bounds] = self._sorted[positions[in_bounds]] == keys[in_bounds]
        return found

    def add(self, keys: np.ndarray) -> None:
        new = np.sort(keys)
        self._sorted = np.insert(self._sorted, np.searchsorted(self._sorted, new), new)


class _RejectedWriter:
    """Appends rejected rows to a temp CSV, creating it only once there is one to write.

    Lazy so that a clean import creates neither the file nor the ``rejected`` folder.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0
        self._handle: IO[str] | None = None

    def write(self, rows: pd.DataFrame) -> None:
        if rows.empty:
            return
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("w", encoding="utf-8", newline="")
            rows.to_csv(self._handle, index=False)
        else:
            rows.to_csv(self._handle, index=False, header=False)
        self.rows += len(rows)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


@dataclass(frozen=True)
class _ChunkResult:
    table: pa.Table
    rejected: pd.DataFrame
    unknown_event_types: Counter[str]


def import_rees46(source: Path, events_dir: Path, chunk_rows: int = 500_000) -> ImportReport:
    """Convert a REES46 CSV export into ``events_dir/imported-<source stem>.parquet``.

    Output and rejected-rows files are written under temp names and renamed at the end,
    so a failed import never leaves a half file and a re-import of the same source
    replaces the previous result. Event ids hash the raw fields, so re-importing gives
    the same ids and downstream upserts stay idempotent.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    started = time.perf_counter()
    source = Path(source)
    events_dir = Path(events_dir)
    _check_header(source)

    events_dir.mkdir(parents=True, exist_ok=True)
    output = events_dir / f"imported-{source.stem}.parquet"
    rejected_output = events_dir.parent / "rejected" / f"imported-{source.stem}.csv"
    # Dot-prefixed temp names keep readers that glob "*.parquet" away from partial files;
    # the pid keeps two concurrent imports of the same file from sharing one.
    tmp_output = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    rejected_writer = _RejectedWriter(
        rejected_output.with_name(f".{rejected_output.name}.{os.getpid()}.tmp")
    )

    seen = _SeenEventIds()
    malformed: list[pv.InvalidRow] = []
    rows_read = rows_written = 0
    rejected: Counter[str] = Counter()
    unknown_event_types: Counter[str] = Counter()
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    try:
        with pq.ParquetWriter(tmp_output, EVENT_SCHEMA) as writer:
            for chunk in _read_chunks(source, chunk_rows, malformed):
                result = _process_chunk(chunk, seen)
                rejected_rows = result.rejected
                if malformed:
                    rejected_rows = pd.concat([rejected_rows, _malformed_rows(malformed)])
                rows_read += len(chunk) + len(malformed)
                malformed.clear()
                rows_written += result.table.num_rows
                rejected.update(rejected_rows["reason"].value_counts().to_dict())
                unknown_event_types.update(result.unknown_event_types)
                rejected_writer.write(rejected_rows)
                if result.table.num_rows:
                    writer.write_table(result.table, row_group_size=result.table.num_rows)
                    bounds = pc.min_max(result.table.column("ts"))
                    chunk_first, chunk_last = bounds["min"].as_py(), bounds["max"].as_py()
                    first_ts = chunk_first if first_ts is None else min(first_ts, chunk_first)
                    last_ts = chunk_last if last_ts is None else max(last_ts, chunk_last)
        # Malformed lines after the last well-formed row.
        rows_read += len(malformed)
        rejected["malformed_row"] += len(malformed)
        rejected_writer.write(_malformed_rows(malformed))
    except pa.ArrowInvalid as exc:
        _discard(tmp_output, rejected_writer)
        raise ImportFormatError(f"{source} is not a readable CSV export: {exc}") from exc
    except BaseException:
        _discard(tmp_output, rejected_writer)
        raise
    rejected_writer.close()

    os.replace(tmp_output, output)
    if rejected_writer.rows:
        os.replace(rejected_writer.path, rejected_output)
    else:
        rejected_output.unlink(missing_ok=True)

    return ImportReport(
        rows_read=rows_read,
        rows_written=rows_written,
        rejected={reason: rejected[reason] for reason in REJECT_REASONS if rejected[reason]},
        unknown_event_types=dict(unknown_event_types.most_common()),
        output=output,
        first_ts=first_ts,
        last_ts=last_ts,
        seconds=time.perf_counter() - started,
        rejected_output=rejected_output if rejected_writer.rows else None,
    )


def _check_header(source: Path) -> None:
    """Fail before writing anything if the header cannot be a REES46 export."""
    expected = ",".join(EXPECTED_COLUMNS)
    # Only the first line is decoded: a bad byte further down is the reader's to report,
    # with its position. utf-8-sig: spreadsheet tools prepend a BOM that would otherwise
    # hide "event_time".
    with source.open("rb") as handle:
        first_line = handle.readline(_MAX_HEADER_BYTES)
    try:
        header = next(csv.reader([first_line.decode("utf-8-sig")]), None)
    except UnicodeDecodeError as exc:
        raise ImportFormatError(f"{source} header is not UTF-8 text: {exc}") from exc
    if not header:
        raise ImportFormatError(f"{source} is empty; expected header: {expected}")
    missing = [column for column in EXPECTED_COLUMNS if column not in header]
    if missing:
        raise ImportFormatError(
            f"{source} is missing required column(s) {', '.join(missing)}; "
            f"expected header: {expected}"
        )


def _read_chunks(
    source: Path, chunk_rows: int, malformed: list[pv.InvalidRow]
) -> Iterator[pd.DataFrame]:
    """Stream the well-formed rows as text, regrouped into frames of exactly chunk_rows.

    Lines with the wrong number of fields are appended to ``malformed`` as they are met.
    Single-threaded parsing keeps their physical line numbers known and keeps them in
    file order relative to the chunks; the per-row hashing costs more than parsing anyway.
    """

    def skip_and_keep(row: pv.InvalidRow) -> str:
        malformed.append(row)
        return "skip"

    reader = pv.open_csv(
        source,
        read_options=pv.ReadOptions(block_size=_READ_BLOCK_BYTES, use_threads=False),
        parse_options=pv.ParseOptions(invalid_row_handler=skip_and_keep),
        convert_options=pv.ConvertOptions(
            include_columns=list(EXPECTED_COLUMNS),
            # All text: validation needs the raw values, and 64-bit ids must not be inferred
            # as anything lossy. Empty stays "" rather than null.
            column_types=dict.fromkeys(EXPECTED_COLUMNS, pa.string()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    for batch in reader:
        pending.append(batch)
        pending_rows += batch.num_rows
        while pending_rows >= chunk_rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, chunk_rows).to_pandas()
            rest = table.slice(chunk_rows)
            pending, pending_rows = rest.to_batches(), rest.num_rows
    if pending_rows:
        yield pa.Table.from_batches(pending).to_pandas()


def _malformed_rows(malformed: list[pv.InvalidRow]) -> pd.DataFrame:
    """Rejected-rows records for lines that could not be split into the expected fields."""
    rows = pd.DataFrame(
        {
            "line_number": [row.number for row in malformed],
            "raw_line": [row.text for row in malformed],
        },
        dtype=object,
    )
    rows.insert(0, "reason", "malformed_row")
    return rows.reindex(columns=list(REJECTED_COLUMNS), fill_value="")


def _process_chunk(raw: pd.DataFrame, seen: _SeenEventIds) -> _ChunkResult:
    """Validate one chunk, returning its canonical rows and its rejected raw rows."""
    text = {column: raw[column].str.strip() for column in EXPECTED_COLUMNS}
    reason = pd.Series(None, index=raw.index, dtype=object)

    def flag(mask: pd.Series, why: str) -> None:
        reason[reason.isna() & mask] = why

    user_id, user_ok = _parse_int64(text["user_id"])
    flag(text["user_id"] == "", "missing_user_id")
    flag(~user_ok, "bad_user_id")

    ts = pd.to_datetime(text["event_time"], format=TIMESTAMP_FORMAT, utc=True, errors="coerce")
    flag(ts.isna(), "bad_timestamp")

    event_type = text["event_type"].map(EVENT_TYPE_MAP)
    flag(event_type.isna(), "unknown_event_type")

    price = pd.to_numeric(text["price"], errors="coerce")
    flag(~np.isfinite(price) | (price < 0), "bad_price")

    flag(text["user_session"] == "", "missing_session")

    item_id, item_ok = _parse_int64(text["product_id"])
    flag(text["product_id"] == "", "missing_item_id")
    flag(~item_ok, "bad_item_id")

    # Hash the raw text (not the parsed values) so the id depends only on the file's
    # content; columns go in canonical order so a reordered export keeps its ids.
    joined = raw[EXPECTED_COLUMNS[0]].str.cat(
        [raw[column] for column in EXPECTED_COLUMNS[1:]], sep=_FIELD_SEPARATOR
    )
    digests = b"".join(
        hashlib.sha1(row.encode("utf-8")).digest()[:EVENT_ID_BYTES] for row in joined
    )
    keys = np.frombuffer(digests, dtype=f"S{EVENT_ID_BYTES}")
    event_id = pd.Series([key.hex() for key in keys], index=raw.index, dtype=object)

    candidate = reason.isna().to_numpy()
    duplicate = np.zeros(len(raw), dtype=bool)
    duplicate[candidate] = event_id[candidate].duplicated(keep="first").to_numpy() | seen.contains(
        keys[candidate]
    )
    flag(pd.Series(duplicate, index=raw.index), "duplicate")

    valid = reason.isna().to_numpy()
    seen.add(keys[valid])

    unknown = text["event_type"][(reason == "unknown_event_type").to_numpy()]
    rejected = raw.loc[~valid, list(EXPECTED_COLUMNS)]
    rejected.insert(0, "reason", reason[~valid])
    rejected = rejected.reindex(columns=list(REJECTED_COLUMNS), fill_value="")

    null_text = pa.nulls(int(valid.sum()), pa.string())
    table = pa.Table.from_arrays(
        [
            pa.array(event_id[valid], pa.string()),
            pa.array(user_id[valid], pa.int64()),
            pa.array(text["user_session"][valid], pa.string()),
            pa.array(event_type[valid], pa.string()),
            pa.array(item_id[valid], pa.int64()),
            pa.array(_category(text["category_code"][valid], text["category_id"][valid])),
            pa.array(price[valid], pa.float64()),
            null_text,  # device: the export has none
            null_text,  # country: the export has none
            pa.Array.from_pandas(ts[valid], type=pa.timestamp("us", tz="UTC")),
        ],
        schema=EVENT_SCHEMA,
    )
    return _ChunkResult(table, rejected, Counter(unknown.to_list()))


def _parse_int64(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse decimal integers exactly, flagging anything that is not one or exceeds int64.

    ``pd.to_numeric`` would go through float64 for large values and silently round
    64-bit ids, so each candidate is parsed with Python's arbitrary-precision ``int``.
    """
    ok = text.str.fullmatch(_INTEGER_PATTERN)
    parsed = text.where(ok, "0").map(int)
    ok &= (parsed >= _INT64_MIN) & (parsed <= _INT64_MAX)
    return parsed.where(ok, 0).astype("int64"), ok


def _category(code: pd.Series, category_id: pd.Series) -> pd.Series:
    """Top-level category name, or ``cat-<category_id>`` when the export has no code.

    Most rows lack a category_code but all have a category_id. Keeping the id as text
    (rather than a number) preserves all 64 bits, which a float64 column would round
    (2103807459595387724 is not representable), and the ``cat-`` prefix keeps an opaque
    id from being mistaken for, or colliding with, a real category name.
    """
    top = code.str.split(".", n=1).str[0]
    fallback = ("cat-" + category_id).where(category_id != "", None)
    return top.where(top != "", fallback)


def _discard(tmp_output: Path, rejected_writer: _RejectedWriter) -> None:
    """Remove a failed import's temp files so nothing partial is ever left behind."""
    rejected_writer.close()
    tmp_output.unlink(missing_ok=True)
    rejected_writer.path.unlink(missing_ok=True)
