"""The Lakeview dashboard (dashboards/fraud_monitoring.lvdash.json) and the SQL alert (resources/alerts.yml)
against the tables the pipeline writes: every dataset query and every widget query runs in Spark SQL, so
a wrong table or column name fails here, not in the workspace.

Spark SQL stands in for Databricks SQL (the same parser and functions for what these queries use). The
datasets name tables without catalog or schema (the bundle gives them ``dataset_catalog`` and
``dataset_schema``); here each table is a temporary view of that name. The end-to-end test
(tests/jobs/test_end_to_end.py) runs :func:`check_queries` on the tables its jobs built; the tests below run
it on empty tables of the exact schemas the code writes, and on broken copies of the dashboard.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession

from bundlekit.loader import load_bundle
from fraud_mlops.lifecycle.monitoring import MONITORING_SCHEMA
from fraud_mlops.lifecycle.scoring import PREDICTION_COLUMNS
from fraud_mlops.medallion.gold import daily_fraud_summary
from fraud_mlops.medallion.schema import SILVER_COLUMNS
from fraud_mlops.platform import config as C

REPO_ROOT = Path(__file__).resolve().parents[1]
DASHBOARD_FILE = REPO_ROOT / "dashboards" / "fraud_monitoring.lvdash.json"
#: The tables the dashboard and the alert read.
TABLES = (C.GOLD_DAILY_SUMMARY, C.PREDICTIONS, C.MONITORING_METRICS)
#: Aggregate functions a widget field may apply (the others are grouped by).
_AGGREGATES = re.compile(r"^\s*(SUM|COUNT|COUNT_IF|AVG|MIN|MAX|MEDIAN|STDDEV)\s*\(", re.IGNORECASE)
_BACKTICKED = re.compile(r"`([^`]+)`")


def load_dashboard(path: Path = DASHBOARD_FILE) -> dict[str, Any]:
    """The dashboard definition (the JSON the bundle deploys)."""
    return json.loads(path.read_text(encoding="utf-8"))


def dataset_queries(dashboard: dict[str, Any]) -> dict[str, str]:
    """``{dataset name: SQL}``, the SQL joined from ``queryLines`` (or ``query``) as Lakeview joins it."""
    return {d["name"]: "".join(d["queryLines"]) if "queryLines" in d else d["query"] for d in dashboard["datasets"]}


def analyse(df: DataFrame) -> list[str]:
    """The columns of ``df``, which makes Spark analyse its query (classic and Spark Connect sessions
    alike): an unknown table or column fails here."""
    return df.columns


def register_tables(spark: SparkSession, tables: dict[str, DataFrame]) -> None:
    """Each table as a temporary view of its unqualified name (what ``dataset_schema`` makes it)."""
    for name, df in tables.items():
        df.createOrReplaceTempView(name)


def widget_query(dataset_sql: str, query: dict[str, Any]) -> str:
    """The SQL a widget's query runs on its dataset: its fields, grouped by the non-aggregate ones unless
    ``disaggregated``."""
    fields = query["fields"]
    select = ", ".join(f"{f['expression']} AS `{f['name']}`" for f in fields)
    sql = f"SELECT {select} FROM ({dataset_sql}) AS dataset"
    if not query.get("disaggregated", False):
        groups = [f["expression"] for f in fields if not _AGGREGATES.match(f["expression"])]
        if groups and len(groups) < len(fields):
            sql += " GROUP BY " + ", ".join(groups)
    return sql


def check_queries(spark: SparkSession, dashboard: dict[str, Any]) -> tuple[list[str], dict[str, DataFrame]]:
    """Run every dataset query and every widget query of ``dashboard`` on the registered views.

    Returns:
        ``(problems, results)``: one message per dataset that does not run, widget that names an unknown
        dataset or a column its dataset does not return, widget query that does not run, or encoding whose
        field the widget does not select; and ``{dataset name: DataFrame}`` of the datasets that run.
    """
    problems: list[str] = []
    results: dict[str, DataFrame] = {}
    queries = dataset_queries(dashboard)
    for name, sql in queries.items():
        try:
            df = spark.sql(sql)
            analyse(df)
            results[name] = df
        except Exception as exc:  # noqa: BLE001 - any analysis error is the finding
            problems.append(f"dataset {name}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    for page in dashboard["pages"]:
        for item in page.get("layout", []):
            widget = item["widget"]
            where = f"page {page['name']} widget {widget['name']}"
            selected: set[str] = set()
            for q in widget.get("queries", []):
                query = q["query"]
                dataset = query.get("datasetName")
                if dataset not in queries:
                    problems.append(f"{where}: unknown dataset {dataset!r}")
                    continue
                selected |= {f["name"] for f in query["fields"]}
                if dataset not in results:
                    continue
                columns = set(results[dataset].columns)
                for f in query["fields"]:
                    missing = sorted(set(_BACKTICKED.findall(f["expression"])) - columns - {"*"})
                    if missing:
                        problems.append(f"{where}: field {f['name']!r} uses {missing}, not columns of dataset "
                                        f"{dataset} ({sorted(columns)})")
                try:
                    analyse(spark.sql(widget_query(queries[dataset], query)))
                except Exception as exc:  # noqa: BLE001
                    problems.append(f"{where}: query fails: {type(exc).__name__}: {str(exc).splitlines()[0]}")
            encodings = widget.get("spec", {}).get("encodings", {})
            named = [e for e in encodings.values() if isinstance(e, dict) and "fieldName" in e]
            named += [c for c in encodings.get("columns", []) if isinstance(c, dict)]
            for enc in named:
                if enc["fieldName"] not in selected:
                    problems.append(f"{where}: encoding field {enc['fieldName']!r} is not selected by the widget "
                                    f"({sorted(selected)})")
    return problems, results


def alert_query(catalog: str, schema: str) -> str:
    """The SQL alert's query as the bundle resolves it for a target with ``catalog``/``schema``, its
    ``catalog.schema.`` prefixes removed so it reads the temporary views."""
    bundle = load_bundle(REPO_ROOT, "dev", {"catalog": catalog, "schema": schema}, env={}, user_name="alice@example.com")
    sql = bundle.resources["alerts"]["monitoring_breach"]["query_text"]
    assert f"FROM {catalog}.{schema}.{C.MONITORING_METRICS}" in sql  # the target's table, fully qualified
    return sql.replace(f"{catalog}.{schema}.", "")


def empty_tables(spark: SparkSession) -> dict[str, DataFrame]:
    """Empty tables with exactly the schemas the pipeline writes."""
    silver = spark.createDataFrame([], ", ".join(f"{k} {v}" for k, v in SILVER_COLUMNS.items()))
    predictions = spark.createDataFrame([], ", ".join(f"{k} {v}" for k, v in PREDICTION_COLUMNS.items()))
    return {
        C.GOLD_DAILY_SUMMARY: daily_fraud_summary(silver),
        C.PREDICTIONS: predictions,
        C.MONITORING_METRICS: spark.createDataFrame([], MONITORING_SCHEMA),
    }


@pytest.fixture()
def empty_views(spark):
    register_tables(spark, empty_tables(spark))
    yield
    for name in TABLES:
        spark.catalog.dropTempView(name)


def test_every_dataset_and_widget_query_runs_on_the_pipeline_tables(spark, empty_views):
    dashboard = load_dashboard()
    problems, results = check_queries(spark, dashboard)
    assert problems == []
    assert set(results) == set(dataset_queries(dashboard))
    # Each dataset reads one of the pipeline's tables, by its unqualified name.
    for name, sql in dataset_queries(dashboard).items():
        assert any(re.search(rf"\bFROM {t}\b", sql) for t in TABLES), name
        assert not re.search(r"\bFROM \w+\.\w+", sql), f"{name}: qualified table name (dataset_schema sets it)"
    widgets = [item["widget"] for page in dashboard["pages"] for item in page["layout"]]
    assert {w["spec"]["widgetType"] for w in widgets} >= {"counter", "line", "table"}
    assert len({w["name"] for w in widgets}) == len(widgets)
    for page in dashboard["pages"]:
        for item in page["layout"]:
            pos = item["position"]
            assert pos["x"] >= 0 and pos["width"] >= 1 and pos["x"] + pos["width"] <= 6, item["widget"]["name"]


def test_a_wrong_column_or_field_is_caught(spark, empty_views):
    broken = copy.deepcopy(load_dashboard())
    summary = next(d for d in broken["datasets"] if d["name"] == "daily_summary")
    summary["queryLines"] = [line.replace("fraud_rate", "fraud_ratio") for line in summary["queryLines"]]
    problems, _ = check_queries(spark, broken)
    assert len(problems) == 1 and problems[0].startswith("dataset daily_summary:") and "fraud_ratio" in problems[0]

    broken = copy.deepcopy(load_dashboard())
    widget = next(item["widget"] for page in broken["pages"] for item in page["layout"]
                  if item["widget"]["name"] == "card_alerts_per_day")
    widget["queries"][0]["query"]["fields"][1]["expression"] = "`card_alerts`"
    widget["spec"]["encodings"]["color"]["fieldName"] = "colour"
    problems, _ = check_queries(spark, broken)
    assert any("field 'cards' uses ['card_alerts']" in p for p in problems), problems
    assert any("query fails" in p for p in problems), problems
    assert any("encoding field 'colour' is not selected" in p for p in problems), problems

    broken["pages"][0]["layout"][0]["widget"]["queries"][0]["query"]["datasetName"] = "nope"
    assert any("unknown dataset 'nope'" in p for p in check_queries(spark, broken)[0])


def test_the_alert_query_reads_the_targets_monitoring_table(spark, empty_views):
    sql = alert_query("fraud_test", "fraud")
    assert spark.sql(sql).columns == ["window_start", "window_end", "model_version", "alert", "retrain",
                                      "breached_metrics"]
    bundle = load_bundle(REPO_ROOT, "dev", {}, env={}, user_name="alice@example.com")
    evaluation = bundle.resources["alerts"]["monitoring_breach"]["evaluation"]
    assert evaluation["source"]["name"] in spark.sql(sql).columns
    with pytest.raises(Exception, match="breachd"):
        analyse(spark.sql(sql.replace("breached AND", "breachd AND")))


def test_the_bundle_points_the_dashboard_at_the_target_catalog_and_schema():
    for target, catalog in (("dev", "fraud_dev"), ("staging", "fraud_staging")):
        dashboard = load_bundle(REPO_ROOT, target, {}, env={}, user_name="alice@example.com").resources["dashboards"]
        spec = dashboard["fraud_monitoring"]
        assert (spec["dataset_catalog"], spec["dataset_schema"]) == (catalog, "fraud")
        assert (REPO_ROOT / "resources" / spec["file_path"]).resolve() == DASHBOARD_FILE
        assert spec["warehouse_id"] == "${var.warehouse_id}"  # a lookup: resolved by the CLI at deploy time
