"""Continuous landing plus incremental ETL: every 30 minutes, drain the stream into the raw
bucket, then run both Glue-style jobs on the new partitions only (bookmarks), merging any curated
partition that gathered several files in between (a no-op without starting Spark otherwise).
Airflow DAG."""

from infra.dag_builder import build_linear_dag

DAG_ID = "continuous_landing"
dag = build_linear_dag(
    DAG_ID,
    [
        ("LandEvents", "riskstream.steps.land_events"),
        ("RawToCurated", "riskstream.steps.raw_to_curated"),
        ("CompactCurated", "riskstream.steps.compact_curated"),
        ("CuratedToFeatures", "riskstream.steps.curated_to_features"),
    ],
    schedule="*/30 * * * *",
    description="Land new events and process only new raw partitions",
)
