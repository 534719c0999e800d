"""Glue-style PySpark ETL: raw events -> curated tables -> features, with a Glue catalog.

Pure modules: :mod:`etl.transforms` (raw -> curated) and :mod:`etl.features` (curated ->
features). Entry/IO modules: :mod:`etl.spark`, :mod:`etl.glue`, :mod:`etl.layout` (versioned
partitions, manifests, the catalog switch), :mod:`etl.compact`, the job scripts under
:mod:`etl.jobs`, :mod:`etl.tasks` and :mod:`etl.cli`; S3 and the catalog through
:mod:`riskstream.storage`.
Nothing heavy is imported here, so ``riskstream --help`` stays instant.
"""
