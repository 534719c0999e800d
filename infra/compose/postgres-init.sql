-- One Postgres for the stack: a database each for MLflow's backend store and Airflow's metadata.
CREATE DATABASE mlflow OWNER riskstream;
CREATE DATABASE airflow OWNER riskstream;
