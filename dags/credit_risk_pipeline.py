"""The credit-risk pipeline, built from pipeline/state_machine.asl.json (the Step Functions twin).

Trigger this Airflow DAG from the UI (the form shows the params) or `make run`.
"""

from pipeline.dag_builder import PIPELINE_DAG_ID, build_pipeline_dag

DAG_ID = PIPELINE_DAG_ID
dag = build_pipeline_dag(DAG_ID)
