"""Names vulture cannot see used, because a framework or a library reads them.

Read by vulture (``make lint``, tests/test_dead_code.py) beside the code; nothing imports it.
Each entry says who uses the name. Code only this file keeps alive is dead: delete it instead.
Route handlers, pydantic validators, pytest fixtures and hooks are recognised by the settings
in pyproject.toml ``[tool.vulture]`` and need no entry.
"""

# ruff: noqa: B018  (a bare attribute is how a vulture whitelist marks a name as used)
from vulture.whitelist_utils import Whitelist

used = Whitelist()

# http.server calls these on the warm Spark session's handler and server (etl/session_server.py)
used.do_GET
used.do_POST
used.log_message
used.daemon_threads
# the arguments a callback must accept: signal handlers, a WSGI start_response
used.signum
used.exc_info
# tarfile reads a member's mtime (infra/cloud_state.py)
used.mtime
# uvicorn's factories, named by string in serving/processes.py
used.app_from_env
# pydantic: the models' configuration and the response fields FastAPI serializes (serving/schema.py)
used.model_config
used.contribution
used.application_id
used.online_accounts
used.decision_reason
# registry tags, an artifact name and a prefix the foundation declares for every writer and
# reader (riskstream/names.py, docs/CONTRACTS.md); issue 21 item 1 moves their users onto them
used.INGEST_QUARANTINE_PREFIX
used.CURATED_TABLE_PREFIX
used.TAG_MODEL_TYPE
used.TAG_THRESHOLD
used.TAG_ROC_AUC
used.TAG_KS
used.TAG_DECISION_REASON
used.TAG_PROMOTED_AT
used.TAG_REPLACED_BY
used.BASELINE_ARTIFACT
# benchmark rows are written with dataclasses.asdict (benchmarks/common.py)
used.reference_value
used.id
# named in the generated DAG file's source text (tests/dags/conftest.py)
used.TEST_STEPS
# selenium reads the browser's path from the options (tests/serving/test_dashboard.py)
used.binary_location
# boto3's Glue parameter name, mirrored by a fake client (tests/infra/test_provision_errors.py)
used.Name
# TypedDict fields read by key by the session client (etl/session.py reads answer["logs"])
used.logs
# Python reads a function's __qualname__ (reprs, pickling): the per-kind train steps set it
used.__qualname__
# a pytest fixture requested by name only for its side effect (tests/modelkinds/test_registry.py)
used.toy
# moto reads these on its S3 keys, which infra/s3_bodies.py patches: pickle calls __getstate__,
# the key's size is its contentsize, and moto's dispose closes its _value_buffer
used.__getstate__
used.contentsize
used._value_buffer
# infra/s3_bodies.py sets a key's _body and reads it back through the key's __dict__
used._body
# moto's Step Functions calls these on the stand-ins and patches of infra/moto_sfn.py (by keyword)
used.notify
used.callback_id
used.get_all
used.map_run_record_pool_manager
used.stepfunctions_backends
used._url_module
used.__getstate__
used.__setstate__
used._messages_lock
# pickle calls it on moto's DynamoDB item attributes (infra/moto_server.py patch_moto)
used.__reduce__
