"""Landing files the way real landing folders break: columns by name with a rescued-data column,
empty files, unreadable files that fail the job loudly until an operator acknowledges them.

The unit tests cover header matching, the rescued JSON, the errors and notes; the last test lands a
folder with every kind of drift next to good files and runs the bundle's ingestion job through the
local runner: FAILED once (naming each rejected file and its error), SUCCESS after the rejections
are acknowledged with ``fraud-mlops landing reject``, and a re-run that changes no table.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json

import pytest

from bundlekit.loader import load_bundle
from bundlekit.runner import FAILED, SUCCESS, run_job
from fraud_mlops import cli
from fraud_mlops.medallion import bronze, silver
from fraud_mlops.medallion.bronze import LANDING_COLUMNS, RESCUED_DATA
from fraud_mlops.platform import config as C

from ..conftest import REPO_ROOT
from .landing_files import GOOD_DAY_1, write_landing

#: Canonical values of a few transactions, by landing column.
TX = {
    int(line.split(",", 1)[0]): dict(zip(LANDING_COLUMNS, line.split(","), strict=True))
    for line in ("20,2018-04-02 00:00:20,11,21,20.50,86420,1,0,0", "21,2018-04-02 00:00:21,12,22,21.00,86421,1,0,0",
                 "22,2018-04-02 00:00:22,44,55,12.34,86422,1,1,2")
}
#: A drifted header: columns reversed, mixed case, stray spaces, and two columns the pipeline does not know.
DRIFTED_HEADER = [" merchant_id ", *[n.lower() if i % 2 else f" {n} " for i, n in enumerate(reversed(LANDING_COLUMNS))],
                  "Channel"]


def drifted_line(tx: dict[str, str], merchant: str, channel: str) -> str:
    return ",".join([merchant, *[tx[c] for c in reversed(LANDING_COLUMNS)], channel])


def canonical_line(tx: dict[str, str]) -> str:
    return ",".join(tx[c] for c in LANDING_COLUMNS)


# ------------------------------------------------------------------------------------------------
# Header matching (no Spark)


def test_header_matches_by_name_in_any_order_case_and_whitespace():
    match = bronze.match_header(["\ufeff tx_fraud_scenario", *[f"  {c.lower()}\t" for c in LANDING_COLUMNS[:-1]]])
    assert match.error is None and match.missing == () and match.rescued == ()
    assert match.positions == {"TX_FRAUD_SCENARIO": 0, **{c: i + 1 for i, c in enumerate(LANDING_COLUMNS[:-1])}}
    assert bronze.match_header(list(LANDING_COLUMNS)).positions == {c: i for i, c in enumerate(LANDING_COLUMNS)}


def test_header_keeps_unknown_columns_for_rescue_in_file_order():
    match = bronze.match_header(DRIFTED_HEADER + ["", "  "])
    n = len(DRIFTED_HEADER)
    assert match.error is None
    assert match.rescued == ((0, "merchant_id"), (n - 1, "Channel"), (n, f"_c{n}"), (n + 1, f"_c{n + 1}"))
    assert match.positions["TRANSACTION_ID"] == len(LANDING_COLUMNS) and match.positions["TX_FRAUD_SCENARIO"] == 1
    # Files whose headers differ only in the case of known columns are read together, others apart.
    assert bronze.match_header([c.lower() for c in LANDING_COLUMNS]).plan == bronze.match_header(LANDING_COLUMNS).plan
    assert bronze.match_header(LANDING_COLUMNS).plan == LANDING_COLUMNS
    assert match.plan[:2] == ("rescued:merchant_id", "TX_FRAUD_SCENARIO")


def test_header_missing_or_duplicated_columns_are_named_in_the_error():
    names = [c for c in LANDING_COLUMNS if c not in ("TX_AMOUNT", "TX_FRAUD")] + ["EXTRA"]
    match = bronze.match_header(names)
    assert match.missing == ("TX_AMOUNT", "TX_FRAUD")
    assert match.error.startswith("missing required column(s) TX_AMOUNT, TX_FRAUD in header 'TRANSACTION_ID,")
    dup = bronze.match_header([*LANDING_COLUMNS, " tx_amount "])
    assert dup.missing == () and dup.duplicated == ("TX_AMOUNT",)
    assert "column(s) TX_AMOUNT named more than once" in dup.error


def test_inspect_gives_notes_for_empty_files_and_errors_for_unreadable_ones(tmp_path):
    header = ",".join(LANDING_COLUMNS)
    cases = {
        "empty.csv": b"",
        "empty-content.csv.gz": gzip.compress(b""),
        "blank.csv": b"\n \n",
        "header-only.csv.gz": gzip.compress((header + "\r\n\n").encode()),
        "drifted-header-only.csv": (",".join(DRIFTED_HEADER) + "\n").encode(),
        "rows.csv": f"{header}\n{canonical_line(TX[20])}\n".encode(),
        "truncated.csv.gz": gzip.compress(f"{header}\n{canonical_line(TX[20])}\n".encode() * 50)[:60],
        "not-gzip.csv.gz": f"{header}\n".encode(),
        "latin1.csv": f"{header}\n20,caf\xe9\n".encode("latin-1"),
        "missing.csv": b"TRANSACTION_ID,TX_DATETIME\n1,2\n",
    }
    got = {}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        got[name] = bronze.inspect_landing_file(str(tmp_path / name))
    assert got["empty.csv"].error is None and got["empty.csv"].note.startswith("empty file")
    assert got["empty-content.csv.gz"].error is None and got["empty-content.csv.gz"].note.startswith("empty file")
    assert got["blank.csv"].error is None and got["blank.csv"].note.startswith("empty file")
    assert (got["header-only.csv.gz"].error, got["header-only.csv.gz"].note) == (None, "header only: no rows")
    assert not got["header-only.csv.gz"].has_rows
    assert got["drifted-header-only.csv"].note == (
        "header only: no rows; columns not in the landing contract kept in _rescued_data: merchant_id, Channel")
    assert got["rows.csv"] == bronze.LandingFileCheck(None, None, bronze.match_header(LANDING_COLUMNS), True)
    assert got["truncated.csv.gz"].error.startswith("EOFError")
    assert got["not-gzip.csv.gz"].error.startswith("BadGzipFile")
    assert got["latin1.csv"].error.startswith("UnicodeDecodeError")
    assert got["missing.csv"].error.startswith("missing required column(s) CUSTOMER_ID, TERMINAL_ID")


# ------------------------------------------------------------------------------------------------
# Reading by name, rescued data (Spark)


def test_read_by_header_name_with_rescued_json_and_corrupt_rows(spark, tmp_path):
    drifted = write_landing(tmp_path, "drifted.csv", [
        drifted_line(TX[20], "M-1", "web"),
        drifted_line(TX[21], "", ""),  # no value in the extra columns: _rescued_data is null
        drifted_line(TX[22], '"M-3, north"', ""),  # a quoted value with a comma
        "M-9,0,0",  # malformed: too few fields
    ], header=",".join(DRIFTED_HEADER), compress=False)
    plain = write_landing(tmp_path, "plain.csv.gz", GOOD_DAY_1)
    headers = {str(p): bronze.inspect_landing_file(str(p)).header for p in (drifted, plain)}
    df = bronze.read_landing_files(spark, headers, "/Volumes/c/s/landing")
    assert df.columns == [*LANDING_COLUMNS, bronze.CORRUPT_RECORD, RESCUED_DATA, "_source_file"]
    rows = {(r["_source_file"], r["TRANSACTION_ID"]): r.asDict() for r in df.collect()}
    assert len(rows) == len(GOOD_DAY_1) + 4
    for i in (20, 21, 22):
        row = rows[("/Volumes/c/s/landing/drifted.csv", str(i))]
        assert {c: row[c] for c in LANDING_COLUMNS} == TX[i] and row[bronze.CORRUPT_RECORD] is None
    rescued = {i: rows[("/Volumes/c/s/landing/drifted.csv", str(i))][RESCUED_DATA] for i in (20, 21, 22)}
    assert json.loads(rescued[20]) == {"merchant_id": "M-1", "Channel": "web"}
    assert rescued[21] is None
    assert json.loads(rescued[22]) == {"merchant_id": "M-3, north"}
    malformed = [r for r in rows.values() if r[bronze.CORRUPT_RECORD] is not None]
    assert [r[bronze.CORRUPT_RECORD] for r in malformed] == ["M-9,0,0"]
    plain_rows = [r for (f, _), r in rows.items() if f.endswith("plain.csv.gz")]
    assert {r["TRANSACTION_ID"] for r in plain_rows} == {"0", "1", "2"}
    assert all(r[RESCUED_DATA] is None and r[bronze.CORRUPT_RECORD] is None for r in plain_rows)


def test_empty_files_are_ingested_with_zero_rows_and_a_note(lakehouse, tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "2018-04-01.csv.gz").write_bytes(b"")
    write_landing(landing, "2018-04-02.csv", [], compress=False)
    result = bronze.ingest_bronze(lakehouse, str(landing))
    assert result["files_ingested"] == 2 and result["files_rejected"] == [] and result["rows_ingested"] == 0
    assert result["files_empty"] == [
        {"file": f"{landing}/2018-04-01.csv.gz", "note": "empty file (0 bytes): nothing to ingest"},
        {"file": f"{landing}/2018-04-02.csv", "note": "header only: no rows"},
    ]
    assert not lakehouse.exists(C.BRONZE_TRANSACTIONS)  # nothing to write, nothing written
    log = {r["source_file"].rsplit("/", 1)[-1]: r for r in lakehouse.read(C.BRONZE_INGESTION_LOG).collect()}
    assert {n: (r["status"], r["rows"], r["error"]) for n, r in log.items()} == {
        "2018-04-01.csv.gz": ("ingested", 0, None), "2018-04-02.csv": ("ingested", 0, None)}
    assert {r["status"] for r in bronze.landing_status(lakehouse)} == {"empty"}
    assert bronze.unacknowledged_rejections(lakehouse) == []
    assert bronze.ingest_bronze(lakehouse, str(landing))["files_new"] == 0  # not taken again


def test_tables_written_before_the_new_columns_accept_new_rows(lakehouse, tmp_path):
    """A bronze table without _rescued_data and a log without note/acknowledged_by (written by an
    earlier version) take the new rows; the old rows read null there; silver is unaffected."""
    landing = tmp_path / "landing"
    write_landing(landing, "2018-04-01.csv.gz", GOOD_DAY_1)
    bronze.ingest_bronze(lakehouse, str(landing))
    for name, drop in ((C.BRONZE_TRANSACTIONS, [RESCUED_DATA]), (C.BRONZE_INGESTION_LOG, ["note", "acknowledged_by"])):
        old = lakehouse.read(name).drop(*drop)
        lakehouse.overwrite(name, lakehouse.spark.createDataFrame(old.collect(), old.schema))
        assert not set(drop) & set(lakehouse.read(name).columns)
    silver.build_silver(lakehouse)

    write_landing(landing, "2018-04-02.csv", [drifted_line(TX[20], "M-1", "")], header=",".join(DRIFTED_HEADER),
                  compress=False)
    (landing / "2018-04-03.csv").write_text("TRANSACTION_ID\n1\n")
    result = bronze.ingest_bronze(lakehouse, str(landing))
    assert result["rows_ingested"] == 1 and result["rescued_columns"] == {f"{landing}/2018-04-02.csv": ["merchant_id", "Channel"]}
    rescued = {r["TRANSACTION_ID"]: r[RESCUED_DATA] for r in lakehouse.read(C.BRONZE_TRANSACTIONS).collect()}
    assert rescued == {"0": None, "1": None, "2": None, "20": '{"merchant_id":"M-1"}'}
    status = {r["source_file"].rsplit("/", 1)[-1]: r for r in bronze.landing_status(lakehouse)}
    assert status["2018-04-02.csv"]["note"].endswith("kept in _rescued_data: merchant_id, Channel")
    assert status["2018-04-03.csv"]["status"] == "rejected" and status["2018-04-01.csv.gz"]["note"] is None
    out = silver.build_silver(lakehouse)
    assert (out["rows_in"], out["rows_silver"]) == (1, 1)
    assert lakehouse.read(C.SILVER_TRANSACTIONS).where("transaction_id = 20").count() == 1


def test_landing_file_status_from_a_log(spark):
    t = [dt.datetime(2018, 4, d, tzinfo=dt.UTC) for d in range(1, 5)]
    rows = [
        ("a", t[0], "rejected", 0, "EOFError: x", None, None), ("a", t[1], "rejected", 0, "EOFError: y", None, None),
        ("a", t[2], "acknowledged", 0, "EOFError: y", "resent as a2", "ops"),
        ("b", t[0], "failed", 0, "bad header", None, None),  # a log written before 'rejected' existed
        ("c", t[0], "rejected", 0, "EOFError: z", None, None), ("c", t[1], "ingested", 5, None, None, None),
        ("d", t[3], "ingested", 0, None, "header only: no rows", None),
    ]
    log = spark.createDataFrame(
        rows, "source_file string, ingested_at timestamp, status string, rows bigint, error string, note string, "
              "acknowledged_by string")
    got = {r["source_file"]: r.asDict() for r in bronze.landing_file_status(log).collect()}
    assert {f: (r["status"], r["attempts"], r["rows"], r["error"]) for f, r in got.items()} == {
        "a": ("acknowledged", 2, 0, "EOFError: y"), "b": ("rejected", 1, 0, "bad header"),
        "c": ("ingested", 1, 5, None), "d": ("empty", 0, 0, None)}
    assert (got["a"]["note"], got["a"]["acknowledged_by"]) == ("resent as a2", "ops")
    assert got["a"]["last_at"] == t[2].replace(tzinfo=None)
    # A log without the columns added later still gives a status.
    old = bronze.landing_file_status(log.drop("note", "acknowledged_by"))
    assert {r["source_file"]: r["status"] for r in old.collect()} == {f: r["status"] for f, r in got.items()}


def test_acknowledging_refuses_files_that_are_not_rejected(lakehouse, tmp_path):
    landing = tmp_path / "landing"
    write_landing(landing, "2018-04-01.csv.gz", GOOD_DAY_1)
    (landing / "2018-04-02.csv.gz").write_bytes(b"not gzip")
    bronze.ingest_bronze(lakehouse, str(landing))
    with pytest.raises(bronze.FileNotRejectedError, match=r"2018-04-01.csv.gz is ingested, not rejected.*"
                                                          r"Rejected now: .*2018-04-02.csv.gz"):
        bronze.acknowledge_rejected_file(lakehouse, "2018-04-01.csv.gz", "no", "ops", str(landing))
    with pytest.raises(bronze.FileNotRejectedError, match="is not in bronze_ingestion_log"):
        bronze.acknowledge_rejected_file(lakehouse, "nope.csv", "no", "ops", str(landing))
    with pytest.raises(ValueError, match="needs a reason"):
        bronze.acknowledge_rejected_file(lakehouse, "2018-04-02.csv.gz", "  ", "ops", str(landing))
    assert len(bronze.unacknowledged_rejections(lakehouse)) == 1

    row = bronze.acknowledge_rejected_file(lakehouse, "elsewhere/2018-04-02.csv.gz", " sender resends ", "ops")
    assert (row["source_file"], row["status"], row["note"], row["acknowledged_by"]) == (
        f"{landing}/2018-04-02.csv.gz", "acknowledged", "sender resends", "ops")
    assert row["error"].startswith("BadGzipFile") and row["file_size_bytes"] == len(b"not gzip")
    assert bronze.unacknowledged_rejections(lakehouse) == []
    with pytest.raises(bronze.FileNotRejectedError, match="is acknowledged, not rejected"):
        bronze.acknowledge_rejected_file(lakehouse, "2018-04-02.csv.gz", "again", "ops", str(landing))
    again = bronze.ingest_bronze(lakehouse, str(landing))
    assert again["files_new"] == 0 and again["files_rejected"] == []  # no longer retried


# ------------------------------------------------------------------------------------------------
# The ingestion job on a drifted landing folder


def _data_lines(path) -> int:
    raw = path.read_bytes()
    text = (gzip.decompress(raw) if path.name.endswith(".gz") else raw).decode("utf-8")
    return sum(1 for line in text.splitlines()[1:] if line.strip())


def _land_drifted_folder(landing):
    header = ",".join(LANDING_COLUMNS)
    write_landing(landing, "2018-04-01.csv.gz", GOOD_DAY_1)
    write_landing(landing, "2018-04-02-drifted.csv.gz", [
        drifted_line(TX[20], "M-1", "web"), drifted_line(TX[21], "", ""), drifted_line(TX[22], "M-3", ""),
        "M-9,0,0",  # malformed
        drifted_line(TX[20], "M-1", "web"),  # duplicate row inside the file
    ], header=",".join(DRIFTED_HEADER))
    write_landing(landing, "2018-04-03.csv", [
        "30,2018-04-03 00:00:30,3,4,30.00,172830,2,0,0",
        "30,2018-04-03 00:00:30,3,4,30.00,172830,2,0,0",  # duplicate row inside the file
        GOOD_DAY_1[0],  # duplicate of a row of another file
    ], compress=False)
    write_landing(landing, "2018-04-04-missing.csv.gz", ["40,2018-04-04 00:00:40,3,4,1.00,259240,3,0"],
                  header=header.replace(",TX_FRAUD_SCENARIO", ""))
    (landing / "2018-04-05-empty.csv.gz").write_bytes(b"")
    write_landing(landing, "2018-04-06-header-only.csv", [], compress=False)
    full = gzip.compress((header + "\n" + "50,2018-04-05 00:00:50,3,4,1.00,345650,4,0,0\n" * 200).encode())
    (landing / "2018-04-07-truncated.csv.gz").write_bytes(full[: len(full) // 2])
    (landing / "2018-04-08-latin1.csv").write_bytes(f"{header}\n60,2018-04-06 00:00:60,caf\xe9,4,1,1,5,0,0\n".encode("latin-1"))
    (landing / "2018-04-09-not-gzip.csv.gz").write_text(f"{header}\n{GOOD_DAY_1[1]}\n")


REJECTED = {
    "2018-04-04-missing.csv.gz": "missing required column(s) TX_FRAUD_SCENARIO in header",
    "2018-04-07-truncated.csv.gz": "EOFError: ",
    "2018-04-08-latin1.csv": "UnicodeDecodeError: 'utf-8' codec can't decode",
    "2018-04-09-not-gzip.csv.gz": "BadGzipFile: ",
}
TABLES = (C.BRONZE_INGESTION_LOG, C.BRONZE_TRANSACTIONS, C.SILVER_TRANSACTIONS, C.SILVER_QUARANTINE,
          C.SILVER_PROCESSED_FILES, C.GOLD_FEATURES, C.GOLD_DAILY_SUMMARY)


def test_ingestion_job_on_a_drifted_landing_folder(lakehouse, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    landing = tmp_path / "landing"
    _land_drifted_folder(landing)
    variables = {"landing_path": str(landing), "catalog": lakehouse.config.catalog, "schema": lakehouse.config.schema}
    bundle = load_bundle(REPO_ROOT, "dev", variables, env={})

    # 1. Every readable file is loaded, silver and gold run, and the job ends FAILED on the rejected ones.
    first = run_job(bundle, "ingestion", {}, log=lambda line: None)
    assert first.status == FAILED and first.failed_tasks == ["gold"]
    assert [first.tasks[t].status for t in ("bronze", "silver")] == [SUCCESS, SUCCESS]
    b = first.tasks["bronze"].result
    rejected = {f["file"].rsplit("/", 1)[-1]: f["error"] for f in b["files_rejected"]}
    assert set(rejected) == set(REJECTED)
    for name, start in REJECTED.items():
        assert rejected[name].startswith(start), (name, rejected[name])
        assert f"{landing}/{name}: {rejected[name]} (1 attempt(s))" in first.tasks["gold"].error
    assert first.tasks["gold"].error.startswith("LandingFilesRejected: 4 landing file(s) rejected and not acknowledged")
    assert b["rescued_columns"] == {f"{landing}/2018-04-02-drifted.csv.gz": ["merchant_id", "Channel"]}
    assert {f["file"].rsplit("/", 1)[-1] for f in b["files_empty"]} == {"2018-04-05-empty.csv.gz",
                                                                       "2018-04-06-header-only.csv"}
    assert b["files_ingested"] == 5

    # Per readable file: rows landed = bronze = silver + quarantine.
    def per_file(table, column="_source_file"):
        rows = lakehouse.read(table).groupBy(column).count().collect() if lakehouse.exists(table) else []
        return {r[column].rsplit("/", 1)[-1]: r["count"] for r in rows}

    in_bronze, in_silver, in_quarantine = (per_file(t) for t in (C.BRONZE_TRANSACTIONS, C.SILVER_TRANSACTIONS,
                                                                   C.SILVER_QUARANTINE))
    for path in sorted(landing.iterdir()):
        if path.name in REJECTED:
            assert path.name not in in_bronze
            continue
        n = _data_lines(path)
        assert in_bronze.get(path.name, 0) == n == in_silver.get(path.name, 0) + in_quarantine.get(path.name, 0), path.name
    assert (in_silver["2018-04-02-drifted.csv.gz"], in_quarantine["2018-04-02-drifted.csv.gz"]) == (3, 2)
    assert (in_silver["2018-04-03.csv"], in_quarantine["2018-04-03.csv"]) == (1, 2)
    processed = {r["source_file"].rsplit("/", 1)[-1]: (r["rows_in"], r["rows_silver"], r["rows_quarantined"])
                 for r in lakehouse.read(C.SILVER_PROCESSED_FILES).collect()}
    assert processed["2018-04-02-drifted.csv.gz"] == (5, 3, 2)

    # Columns by name: the drifted file's values landed under the right names, extras rescued.
    tx22 = lakehouse.read(C.SILVER_TRANSACTIONS).where("transaction_id = 22").collect()[0]
    assert (tx22["customer_id"], tx22["terminal_id"], tx22["tx_amount"], tx22["tx_fraud"], tx22["tx_fraud_scenario"]) == (
        44, 55, 12.34, 1, 2)
    assert RESCUED_DATA not in lakehouse.read(C.SILVER_QUARANTINE).columns
    quarantined = {(r["TRANSACTION_ID"], tuple(r["failed_rules"])) for r in lakehouse.read(C.SILVER_QUARANTINE)
                   .where(f"_source_file = '{landing}/2018-04-02-drifted.csv.gz'").collect()}
    assert ("20", ("unique_transaction_id",)) in quarantined
    assert any("well_formed_row" in rules for _, rules in quarantined)
    rescued = {r["TRANSACTION_ID"]: r[RESCUED_DATA] for r in lakehouse.read(C.BRONZE_TRANSACTIONS)
               .where(f"_source_file = '{landing}/2018-04-02-drifted.csv.gz'").collect()}
    assert json.loads(rescued["22"]) == {"merchant_id": "M-3"} and rescued["21"] is None
    assert lakehouse.count(C.GOLD_FEATURES) == lakehouse.count(C.SILVER_TRANSACTIONS)

    # 2. The operator looks, acknowledges each rejected file, and lands the corrected one under a new name.
    args = ["--bundle-root", str(REPO_ROOT), *[x for k, v in variables.items() for x in ("--var", f"{k}={v}")]]
    capsys.readouterr()
    assert cli.main(["landing", "status", *args]) == 0
    out = capsys.readouterr().out
    for name in REJECTED:
        assert f"  rejected      {landing}/{name}  {rejected[name]} (1 attempt(s)" in out
    assert "4 rejected, 0 acknowledged, 2 empty, 3 ingested" in out
    assert cli.main(["landing", "reject", "2018-04-01.csv.gz", "--reason", "x", *args]) == cli.EXIT_CONFIG_ERROR
    assert "2018-04-01.csv.gz is ingested, not rejected" in capsys.readouterr().err
    for name in REJECTED:
        given = name if name != "2018-04-07-truncated.csv.gz" else str(landing / name)
        assert cli.main(["landing", "reject", given, "--reason", f"{name} resent under a new name", *args]) == 0
        assert f"acknowledged {landing}/{name}" in capsys.readouterr().out
    write_landing(landing, "2018-04-04-missing-v2.csv.gz", ["40,2018-04-04 00:00:40,3,4,1.00,259240,3,0,0"])

    second = run_job(bundle, "ingestion", {}, log=lambda line: None)
    assert second.ok, {k: t.error for k, t in second.tasks.items() if t.error}
    b2 = second.tasks["bronze"].result
    assert (b2["files_new"], b2["files_ingested"], b2["rows_ingested"], b2["files_rejected"]) == (1, 1, 1, [])
    assert second.tasks["gold"].result["landing_files_rejected"] == []
    assert lakehouse.read(C.SILVER_TRANSACTIONS).where("transaction_id = 40").count() == 1
    status = {r["source_file"].rsplit("/", 1)[-1]: r for r in bronze.landing_status(lakehouse)}
    assert {n for n, r in status.items() if r["status"] == "acknowledged"} == set(REJECTED)
    assert status["2018-04-04-missing.csv.gz"]["note"] == "2018-04-04-missing.csv.gz resent under a new name"

    # 3. A re-run changes no table, even with a file re-delivered under an ingested name (reported).
    versions = {t: lakehouse.version(t) for t in TABLES}
    write_landing(landing, "2018-04-01.csv.gz", GOOD_DAY_1[:1])
    third = run_job(bundle, "ingestion", {}, log=lambda line: None)
    assert third.ok and third.tasks["bronze"].result["files_new"] == 0
    assert third.tasks["bronze"].result["files_changed_after_ingestion"] == [f"{landing}/2018-04-01.csv.gz"]
    assert {t: lakehouse.version(t) for t in TABLES} == versions
