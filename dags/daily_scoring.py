"""Daily scoring: score the latest features with the champion every morning. Airflow DAG."""

from pipeline.dag_builder import build_linear_dag
from pipeline.steps import score_portfolio

DAG_ID = "daily_scoring"
dag = build_linear_dag(
    DAG_ID,
    [("ScorePortfolio", score_portfolio)],
    schedule="0 6 * * *",
    description="Score the latest feature partition with the champion model",
)
