"""The REES46 importer on the real shared sample and on hand-written edge cases."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.importer import EXPECTED_COLUMNS, ImportFormatError, ImportReport, import_rees46
from tailor.core.events import EVENT_SCHEMA, EVENT_TYPES

SAMPLE = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "datasets"
    / "ecommerce-events-2019-oct-sample.csv"
)

HEADER = ",".join(EXPECTED_COLUMNS)
SESSION = "72d76fde-8bb3-4e00-8c23-a032dfed738c"


def _row(when: str, event_type: str, product: str, category_id: str, code: str, price: str) -> str:
    """A raw export line for user 541312140 in one fixed session (brand left empty)."""
    fields = [f"2019-10-01 {when} UTC", event_type, product, category_id, code, ""]
    return ",".join([*fields, price, "541312140", SESSION])


GOOD_VIEW = _row("00:00:00", "view", "44600062", "2103807459595387724", "", "35.79")
GOOD_ROWS = [
    GOOD_VIEW,
    _row("00:00:05", "cart", "1307067", "2053013558920217191", "computers.notebook", "251.74"),
    _row("00:00:09", "remove_from_cart", "1307067", "2053013558920217191", "computers", "251.74"),
    _row("00:01:00", "purchase", "3900821", "2053013552326770905", "appliances.water", "33.20"),
]
# One row per rejection reason, each otherwise valid.
BAD_ROWS = {
    "missing_user_id": f"2019-10-01 00:02:00 UTC,view,3900821,1,,,1.00,,{SESSION}",
    "bad_user_id": f"2019-10-01 00:02:00 UTC,view,3900821,1,,,1.00,user-7,{SESSION}",
    "bad_timestamp": f"2019-13-01 00:02:00 UTC,view,3900821,1,,,1.00,541312140,{SESSION}",
    "unknown_event_type": f"2019-10-01 00:02:00 UTC,wishlist,3900821,1,,,1.00,541312140,{SESSION}",
    "bad_price": f"2019-10-01 00:02:00 UTC,view,3900821,1,,,-1.00,541312140,{SESSION}",
    "missing_session": "2019-10-01 00:02:00 UTC,view,3900821,1,,,1.00,541312140,",
    "missing_item_id": f"2019-10-01 00:02:00 UTC,view,,1,,,1.00,541312140,{SESSION}",
    "bad_item_id": f"2019-10-01 00:02:00 UTC,view,12.5,1,,,1.00,541312140,{SESSION}",
    "duplicate": GOOD_VIEW,
}
# Lines that cannot be split into the nine expected fields.
MALFORMED_ROWS = [f"{GOOD_VIEW},extra", "2019-10-01 00:03:00 UTC,view,3900821"]


@pytest.fixture(scope="module")
def sample() -> Path:
    if not SAMPLE.is_file():
        pytest.fail(
            f"Shared sample missing: {SAMPLE}. The importer tests read the real REES46 export "
            "from /work/shared/datasets; it is deliberately not copied into the repo."
        )
    return SAMPLE


@pytest.fixture(scope="module")
def sample_import(
    sample: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[ImportReport, pa.Table]:
    events_dir = tmp_path_factory.mktemp("sample") / "events"
    report = import_rees46(sample, events_dir)
    return report, pq.read_table(report.output)


def _write_csv(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_sample_counts_add_up(sample_import: tuple[ImportReport, pa.Table]) -> None:
    report, table = sample_import
    assert report.rows_read == 1000
    assert report.rows_written + sum(report.rejected.values()) == report.rows_read
    assert table.num_rows == report.rows_written
    assert report.output.name == "imported-ecommerce-events-2019-oct-sample.parquet"
    assert report.first_ts == datetime(2019, 10, 1, 0, 0, 0, tzinfo=UTC)
    assert report.last_ts == datetime(2019, 10, 1, 0, 17, 26, tzinfo=UTC)


def test_sample_output_schema_is_the_canonical_one(
    sample_import: tuple[ImportReport, pa.Table],
) -> None:
    report, _ = sample_import
    assert pq.read_schema(report.output).equals(EVENT_SCHEMA)


def test_sample_event_types_and_ids(sample_import: tuple[ImportReport, pa.Table]) -> None:
    _, table = sample_import
    assert set(table.column("event_type").to_pylist()) <= set(EVENT_TYPES)
    event_ids = table.column("event_id").to_pylist()
    assert len(set(event_ids)) == len(event_ids)


def _only_row(table: pa.Table, user_id: int, item_id: int, ts: datetime) -> dict:
    rows = [
        row
        for row in table.to_pylist()
        if (row["user_id"], row["item_id"], row["ts"]) == (user_id, item_id, ts)
    ]
    assert len(rows) == 1, rows
    return rows[0]


def test_sample_rows_map_exactly(sample_import: tuple[ImportReport, pa.Table]) -> None:
    _, table = sample_import
    # CSV line 2: 2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,,shiseido,35.79,...
    first = _only_row(table, 541312140, 44600062, datetime(2019, 10, 1, 0, 0, 0, tzinfo=UTC))
    assert first["event_type"] == "view"
    assert first["category"] == "cat-2103807459595387724"
    assert first["price"] == 35.79
    assert first["session_id"] == "72d76fde-8bb3-4e00-8c23-a032dfed738c"
    assert first["device"] is None
    assert first["country"] is None
    # CSV line 5: 2019-10-01 00:00:01 UTC,view,1307067,...,computers.notebook,lenovo,251.74,...
    notebook = _only_row(table, 550050854, 1307067, datetime(2019, 10, 1, 0, 0, 1, tzinfo=UTC))
    assert notebook["category"] == "computers"
    assert notebook["price"] == 251.74
    # CSV line 333: 2019-10-01 00:05:14 UTC,cart,5100816,2053013553375346967,,xiaomi,29.51,...
    cart = _only_row(table, 550121407, 5100816, datetime(2019, 10, 1, 0, 5, 14, tzinfo=UTC))
    assert cart["event_type"] == "add_to_cart"
    assert cart["category"] == "cat-2053013553375346967"
    assert cart["session_id"] == "6f623695-9581-4633-813f-825b8760c7ae"


def test_reimport_is_idempotent(sample: Path, tmp_path: Path) -> None:
    events_dir = tmp_path / "events"
    first = import_rees46(sample, events_dir)
    first_table = pq.read_table(first.output)
    second = import_rees46(sample, events_dir, chunk_rows=300)
    assert second.output == first.output
    assert pq.read_table(second.output).equals(first_table)
    assert (second.rows_read, second.rows_written, second.rejected) == (
        first.rows_read,
        first.rows_written,
        first.rejected,
    )
    # Replaced, not appended, and no temp file left behind.
    assert sorted(path.name for path in events_dir.iterdir()) == [first.output.name]


def test_every_bad_row_is_rejected_under_its_reason(tmp_path: Path) -> None:
    source = _write_csv(tmp_path / "edge.csv", [*GOOD_ROWS, *BAD_ROWS.values(), *MALFORMED_ROWS])
    report = import_rees46(source, tmp_path / "events")

    assert report.rows_read == len(GOOD_ROWS) + len(BAD_ROWS) + len(MALFORMED_ROWS)
    assert report.rows_written == len(GOOD_ROWS)
    assert report.rejected == {**dict.fromkeys(BAD_ROWS, 1), "malformed_row": 2}
    assert report.unknown_event_types == {"wishlist": 1}

    table = pq.read_table(report.output)
    assert table.column("event_type").to_pylist() == [
        "view",
        "add_to_cart",
        "remove_from_cart",
        "purchase",
    ]
    assert table.column("category").to_pylist() == [
        "cat-2103807459595387724",
        "computers",
        "computers",
        "appliances",
    ]

    assert report.rejected_output == tmp_path / "rejected" / "imported-edge.csv"
    with report.rejected_output.open(newline="", encoding="utf-8") as handle:
        rejected = list(csv.DictReader(handle))
    assert [row["reason"] for row in rejected] == [*BAD_ROWS, "malformed_row", "malformed_row"]
    assert rejected[1]["user_id"] == "user-7"
    assert rejected[3]["event_type"] == "wishlist"
    # Header is line 1, so the malformed lines are the last two of the file.
    first_malformed_line = 2 + len(GOOD_ROWS) + len(BAD_ROWS)
    assert [(row["line_number"], row["raw_line"]) for row in rejected[-2:]] == [
        (str(first_malformed_line), MALFORMED_ROWS[0]),
        (str(first_malformed_line + 1), MALFORMED_ROWS[1]),
    ]


def test_chunking_does_not_change_the_result(tmp_path: Path) -> None:
    # The duplicate sits several chunks after its original, so cross-chunk dedup counts.
    source = _write_csv(tmp_path / "edge.csv", [*GOOD_ROWS, *BAD_ROWS.values(), *MALFORMED_ROWS])
    whole = import_rees46(source, tmp_path / "whole" / "events")
    chunked = import_rees46(source, tmp_path / "chunked" / "events", chunk_rows=2)

    assert chunked.rejected == whole.rejected
    assert pq.read_table(chunked.output).equals(pq.read_table(whole.output))
    # One row group per chunk that had valid rows: 4 good rows in chunks of 2.
    assert pq.ParquetFile(chunked.output).metadata.num_row_groups == 2


def test_clean_reimport_removes_stale_rejections(tmp_path: Path) -> None:
    source = tmp_path / "store.csv"
    events_dir = tmp_path / "events"
    _write_csv(source, [*GOOD_ROWS, BAD_ROWS["bad_price"]])
    assert import_rees46(source, events_dir).rejected_output is not None

    _write_csv(source, GOOD_ROWS)
    report = import_rees46(source, events_dir)
    assert report.rejected == {}
    assert report.rejected_output is None
    assert not (tmp_path / "rejected" / "imported-store.csv").exists()


def test_missing_column_is_a_format_error(tmp_path: Path) -> None:
    header = HEADER.replace(",user_session", "")
    source = _write_csv(tmp_path / "partial.csv", [GOOD_VIEW.rsplit(",", 1)[0]], header=header)
    events_dir = tmp_path / "events"
    with pytest.raises(ImportFormatError, match="user_session") as error:
        import_rees46(source, events_dir)
    assert HEADER in str(error.value)
    assert not events_dir.exists()
