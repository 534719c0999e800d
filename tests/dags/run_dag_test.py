"""Run `dag.test()` for one DAG file, in a process of its own.

Airflow reads its configuration at import, so each test run gets a private AIRFLOW_HOME whose
dags folder holds the file (dag.test() serializes the DAG from there). Prints JSON task states.
"""

from __future__ import annotations

import json
import runpy
import sys


def main() -> None:
    dag_file, params_json = sys.argv[1], sys.argv[2]
    dag = runpy.run_path(dag_file)["dag"]
    params = json.loads(params_json)
    dag_run = dag.test(run_conf=params)
    instances = dag_run.get_task_instances()
    print(
        "RESULT "
        + json.dumps(
            {
                "run": str(dag_run.state),
                "run_id": dag_run.run_id,
                "states": {ti.task_id: str(ti.state) for ti in instances},
                "tries": {ti.task_id: ti.try_number for ti in instances},
                "times": {
                    ti.task_id: [str(ti.start_date or ""), str(ti.end_date or "")]
                    for ti in instances
                },
            }
        )
    )


if __name__ == "__main__":
    main()
