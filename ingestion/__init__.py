"""Ingestion: sources of events, a Kinesis producer, and a consumer that lands them in S3.

Pure modules: ``records`` (validate, serialize, batch), ``ids``, ``synthetic``, ``taiwan``,
``csv_replay``. I/O modules: ``producer``, ``consumer``, ``tasks`` (Airflow entry points), ``cli``.
"""
