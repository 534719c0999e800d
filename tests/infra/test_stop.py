"""Stop means stopped: a service whose task runner left its process group leaves nothing behind."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from infra.services import ManagedService, ServiceSpec, _same_process, free_port, process_tree

pytestmark = pytest.mark.integration

# A service shaped like Airflow running a task: it answers HTTP; it has started a "task runner"
# in a session of its own (as Airflow's supervisor does) that ignores SIGTERM, and the runner has
# started a long-lived child of its own (as a Spark task starts a JVM).
SERVICE = r"""
import http.server, json, os, signal, subprocess, sys
port, pids_file = int(sys.argv[1]), sys.argv[2]
grandchild = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
runner = (
    "import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    f"p = subprocess.Popen([sys.executable, '-c', {grandchild!r}]); "
    "print(p.pid, flush=True); time.sleep(600)"
)
child = subprocess.Popen(
    [sys.executable, "-c", runner], start_new_session=True, stdout=subprocess.PIPE, text=True
)
grandchild_pid = int(child.stdout.readline())
with open(pids_file, "w") as handle:
    json.dump({"service": os.getpid(), "runner": child.pid, "jvm": grandchild_pid}, handle)
http.server.HTTPServer(("127.0.0.1", port), http.server.SimpleHTTPRequestHandler).serve_forever()
"""


def test_stop_mid_task_leaves_no_process_behind(tmp_path: Path) -> None:
    port = free_port()
    pids_file = tmp_path / "pids.json"
    script = tmp_path / "service.py"
    script.write_text(SERVICE)
    spec = ServiceSpec(
        name="fake-airflow",
        argv=[sys.executable, str(script), str(port), str(pids_file)],
        host="127.0.0.1",
        port=port,
        cwd=tmp_path,
        start_timeout=60,
    )
    service = ManagedService(spec, tmp_path / "state")
    status = service.up()
    assert status.pid is not None
    deadline = time.monotonic() + 30
    while not pids_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    pids = json.loads(pids_file.read_text())
    tree = process_tree(status.pid, status.pid)
    # the runner sits in a session of its own, yet the tree walk finds it and its child
    assert {pids["service"], pids["runner"], pids["jvm"]} <= set(tree)
    try:
        assert service.down(timeout=3) is True
        for name in ("service", "runner", "jvm"):
            assert not _same_process(pids[name], tree[pids[name]]), f"{name} still runs"
    finally:
        import os
        import signal

        for pid in tree:  # never leave a stray process on a shared machine
            if _same_process(pid, tree[pid]):
                os.kill(pid, signal.SIGKILL)
