"""Continuous landing plus incremental ETL: every 30 minutes, drain the stream into the raw
bucket, then run both Glue-style jobs on the new partitions only (bookmarks), merging any curated
partition that gathered several files in between (a no-op without starting Spark otherwise).
Airflow DAG."""

from pipeline.dag_builder import build_linear_dag
from pipeline.steps import compact_curated, curated_to_features, land_events, raw_to_curated

DAG_ID = "continuous_landing"
dag = build_linear_dag(
    DAG_ID,
    [
        ("LandEvents", land_events),
        ("RawToCurated", raw_to_curated),
        ("CompactCurated", compact_curated),
        ("CuratedToFeatures", curated_to_features),
    ],
    schedule="*/30 * * * *",
    description="Land new events and process only new raw partitions",
)
