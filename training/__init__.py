"""Training: feature tables from S3 -> LR / RF / XGBoost pipelines -> MLflow runs and registry.

Modules: ``service`` (the MLflow server), ``data`` (read and split features, I/O), ``models`` and
``metrics`` (pure), ``train`` (the MLflow entry), ``tasks`` (Airflow entry functions), ``cli``.
"""
