"""Glue-style PySpark ETL: raw events -> curated tables -> features, with a Glue catalog.

Pure modules: :mod:`etl.transforms` (raw -> curated) and :mod:`etl.features` (curated ->
features). Entry/IO modules: :mod:`etl.spark`, :mod:`etl.storage`, :mod:`etl.glue`,
:mod:`etl.catalog`, the job scripts under :mod:`etl.jobs`, :mod:`etl.tasks` and :mod:`etl.cli`.
Nothing heavy is imported here, so ``riskstream --help`` stays instant.
"""
