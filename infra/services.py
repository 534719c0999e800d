"""Managed background services: start in their own process group, track by pid file, stop whole.

Used for the embedded cloud (moto), MLflow, Airflow, the scoring API and the dashboard. Each
service has a pid file (JSON) and a log under ``<state_dir>``; ``down`` signals the process group
and every descendant found under it (some leave the group), so a service that forks children
(Airflow starts dozens, its task runners in sessions of their own) leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from riskstream.settings import REPO_ROOT, Settings

logger = logging.getLogger(__name__)


class ServiceError(RuntimeError):
    """A service could not be started or stopped; the message says what to do."""


@dataclass(frozen=True)
class ServiceSpec:
    """How to run one service and how to tell that it answers."""

    name: str
    argv: Sequence[str]
    host: str
    port: int
    health_path: str = "/"
    health_check: Callable[[bytes], bool] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    start_timeout: float = 60.0
    stop_signal: int = signal.SIGTERM

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    state: str  # "running" | "stopped" | "stale" | "unhealthy"
    pid: int | None
    url: str
    log: Path

    def line(self) -> str:
        pid = f"pid {self.pid}" if self.pid else "no pid"
        return f"{self.name:<10} {self.state:<9} {self.url:<28} {pid:<11} log {self.log}"


class ManagedService:
    """Start, inspect and stop one :class:`ServiceSpec` with state under ``state_dir``."""

    def __init__(self, spec: ServiceSpec, state_dir: Path) -> None:
        self.spec = spec
        self.state_dir = Path(state_dir)
        self.pid_file = self.state_dir / "run" / f"{spec.name}.pid"
        self.log_file = self.state_dir / "logs" / f"{spec.name}.log"

    # ---- inspection -------------------------------------------------------------------------
    def _read_pid(self) -> dict[str, object] | None:
        try:
            return json.loads(self.pid_file.read_text())
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, OSError):
            return {"pid": None}

    def healthy(self, timeout: float = 2.0) -> bool:
        url = self.spec.url + self.spec.health_path
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                body = response.read(65536)
                ok = response.status < 500
        except urllib.error.HTTPError as exc:
            return exc.code < 500 and self.spec.health_check is None
        except (urllib.error.URLError, OSError, TimeoutError):
            return False
        return ok and (self.spec.health_check is None or self.spec.health_check(body))

    def status(self) -> ServiceStatus:
        info = self._read_pid()
        pid = _as_int(info.get("pid")) if info else None
        if info is None:
            state = "stopped"
        elif pid is None or not _alive(pid):
            state = "stale"
        else:
            state = "running" if self.healthy() else "unhealthy"
        return ServiceStatus(self.spec.name, state, pid, self.spec.url, self.log_file)

    # ---- lifecycle --------------------------------------------------------------------------
    def up(self) -> ServiceStatus:
        """Start the service unless it already runs; wait until it answers."""
        current = self.status()
        if current.state in ("running", "unhealthy") and current.pid:
            if current.state == "running" or self._wait_healthy(current.pid, 30):
                logger.info(
                    "%s already running (pid %s) at %s", self.spec.name, current.pid, self.spec.url
                )
                return self.status()
            raise ServiceError(
                f"{self.spec.name} runs (pid {current.pid}) but does not answer at "
                f"{self.spec.url}{self.spec.health_path}; see {self.log_file}, or stop it with "
                "`riskstream stop` and start again"
            )
        if current.state == "stale":
            logger.warning(
                "removed stale pid file %s (pid %s is not running)", self.pid_file, current.pid
            )
            self.pid_file.unlink(missing_ok=True)
        if not port_free(self.spec.host, self.spec.port):
            raise ServiceError(
                f"cannot start {self.spec.name}: port {self.spec.port} on {self.spec.host} is "
                "already in use by a process this project did not start"
                f"{_who_listens(self.spec.port)}. Stop that process, or choose another port "
                "(see README, Configuration)."
            )
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.spec.env}
        with open(self.log_file, "ab") as log:
            log.write(f"\n--- starting {self.spec.name}: {' '.join(self.spec.argv)}\n".encode())
            log.flush()
            process = subprocess.Popen(
                list(self.spec.argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.spec.cwd,
                start_new_session=True,  # its own process group, so `down` stops every child
            )
        self.pid_file.write_text(
            json.dumps(
                {
                    "pid": process.pid,
                    "pgid": process.pid,
                    "url": self.spec.url,
                    "argv": list(self.spec.argv),
                    "started_at": time.time(),
                }
            )
        )
        if not self._wait_healthy(process.pid, self.spec.start_timeout, process):
            tail = _tail(self.log_file)
            self.down()
            raise ServiceError(
                f"{self.spec.name} did not answer at {self.spec.url}{self.spec.health_path} within "
                f"{self.spec.start_timeout:.0f}s; last lines of {self.log_file}:\n{tail}"
            )
        logger.info("%s up at %s (pid %s)", self.spec.name, self.spec.url, process.pid)
        return self.status()

    def _wait_healthy(
        self, pid: int, timeout: float, process: subprocess.Popen[bytes] | None = None
    ) -> bool:
        deadline = time.monotonic() + timeout
        delay = 0.1
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                return False
            if process is None and not _alive(pid):
                return False
            if self.healthy():
                return True
            time.sleep(delay)
            # a refused connection costs next to nothing: look often, so a caller waits at most
            # a quarter of a second past the moment the service answers (was up to a second)
            delay = min(delay * 1.5, 0.25)
        return False

    def down(self, timeout: float = 15.0) -> bool:
        """Stop the whole process tree; return True if something was running.

        The group gets the service's stop signal; descendants that left the group (Airflow's
        task runners start sessions of their own, Spark's JVM hangs under them) are found by
        walking /proc children *before* anything dies (an orphan's parent becomes init), get
        SIGTERM, and everything still alive at the deadline gets SIGKILL.
        """
        info = self._read_pid()
        if info is None:
            return False
        pid = _as_int(info.get("pid"))
        pgid = _as_int(info.get("pgid")) or pid
        was_running = False
        tracked = process_tree(pid, pgid) if pid else {}
        if (pgid and _group_alive(pgid)) or tracked:
            was_running = True
            if pgid:
                _signal_group(pgid, self.spec.stop_signal)
            for other in tracked:
                if pgid is None or _pgid_of(other) != pgid:
                    _signal_pid(other, tracked[other], signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and _tree_alive(pgid, tracked):
                time.sleep(0.1)
            if _tree_alive(pgid, tracked):
                logger.warning(
                    "%s did not stop within %.0fs; sending SIGKILL", self.spec.name, timeout
                )
                if pgid:
                    _signal_group(pgid, signal.SIGKILL)
                for other, started in tracked.items():
                    _signal_pid(other, started, signal.SIGKILL)
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline and _tree_alive(pgid, tracked):
                    time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        return was_running


def module_service(
    settings: Settings,
    name: str,
    argv: Sequence[str],
    address: tuple[str, int],
    start_timeout: float,
    health_path: str = "/health",
    extra_env: Mapping[str, str] | None = None,
) -> ManagedService:
    """``python -m <argv>`` (a module of this repository and its arguments) as a service of
    ``settings``: on ``address`` (host, port), healthy when ``health_path`` answers, run in the
    repository with the settings' environment (plus ``extra_env``); pid file and log under the
    state directory."""
    host, port = address
    spec = ServiceSpec(
        name=name,
        argv=[sys.executable, "-m", *argv],
        host=host,
        port=port,
        health_path=health_path,
        env={**settings.to_env(), **(extra_env or {})},
        cwd=REPO_ROOT,
        start_timeout=start_timeout,
    )
    return ManagedService(spec, settings.state_dir)


def _proc_stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, ppid, pgid, start time) of a process from /proc, or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[1]), int(fields[2]), int(fields[19])


def process_tree(root: int, pgid: int | None = None) -> dict[int, int]:
    """Every live process under ``root`` (by parent links) or in group ``pgid``: pid -> start time.

    The start time tells a tracked process from a later one that reuses its pid.
    """
    table: dict[int, tuple[str, int, int, int]] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            stat = _proc_stat(int(entry.name))
            if stat is not None and stat[0] != "Z":
                table[int(entry.name)] = stat
    children: dict[int, list[int]] = {}
    for pid, (_, ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    stack = [root] + [pid for pid, stat in table.items() if pgid and stat[2] == pgid]
    while stack:
        pid = stack.pop()
        if pid in found or pid not in table:
            continue
        found.add(pid)
        stack.extend(children.get(pid, []))
    return {pid: table[pid][3] for pid in found}


def _pgid_of(pid: int) -> int | None:
    stat = _proc_stat(pid)
    return stat[2] if stat else None


def _same_process(pid: int, started: int) -> bool:
    stat = _proc_stat(pid)
    return stat is not None and stat[0] != "Z" and stat[3] == started


def _signal_pid(pid: int, started: int, sig: int) -> None:
    if _same_process(pid, started):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _tree_alive(pgid: int | None, tracked: dict[int, int]) -> bool:
    if pgid and _group_alive(pgid):
        return True
    return any(_same_process(pid, started) for pid, started in tracked.items())


class AddressError(ValueError):
    """A service's URL in the settings cannot be served locally; the message names it."""


def loopback_address(url: str, variable: str) -> tuple[str, int]:
    """(host, port) of a service's own ``url`` (the setting ``variable``): a loopback http URL
    with a port, since every service serves on the loopback interface only."""
    parsed = urlparse(url)
    host = "127.0.0.1" if parsed.hostname == "localhost" else parsed.hostname
    if parsed.scheme != "http" or host != "127.0.0.1" or not parsed.port:
        raise AddressError(
            f"{variable}={url!r} must be http://127.0.0.1:<port> "
            "(the service serves on the loopback interface only)"
        )
    return host, parsed.port


def port_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port (we can bind it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


# Ports handed out by free_port: below Linux's ephemeral range (32768-60999), where the kernel
# takes the ports of outgoing connections and of servers that bind port 0 (Spark's driver)
FREE_PORTS = range(20000, 32768)


def free_port(host: str = "127.0.0.1", *, counter: Path | None = None) -> int:
    """A free port that no other caller on this machine was handed recently (for tests and
    temporary services).

    Asking the kernel for port 0 is not enough: it hands a port out again as soon as it is
    closed, so two processes that each ask, then start their servers minutes later, can be given
    the same one (a test worker's dashboard once met the other worker's cloud that way). Here
    every process of this user takes ports in turn from one counter, a file under the temporary
    directory locked while it is read and moved on, and each port is checked free before it is
    handed out: a port comes round again only after all of :data:`FREE_PORTS` has.
    """
    path = counter or Path(tempfile.gettempdir()) / f"riskstream-ports-{os.getuid()}"
    first, size = FREE_PORTS.start, len(FREE_PORTS)
    with path.open("a+", encoding="ascii") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        handle.seek(0)
        text = handle.read().strip()
        last = int(text) if text.isdigit() else first + os.getpid() % size
        for step in range(1, size + 1):
            port = first + (last - first + step) % size
            if port_free(host, port):
                handle.seek(0)
                handle.truncate()
                handle.write(str(port))
                return port
    raise ServiceError(
        f"no free port on {host} between {first} and {FREE_PORTS.stop - 1}: stop some of the "
        "processes listening there"
    )


def _as_int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload, no-any-return]
    except (TypeError, ValueError):
        return None


def _signal_reaches(send: Callable[[int, int], None], target: int) -> bool:
    """Whether signal 0 sent with ``send`` (``os.kill``, ``os.killpg``) finds ``target``, even
    one that belongs to another user."""
    try:
        send(target, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _alive(pid: int) -> bool:
    if not _signal_reaches(os.kill, pid):
        return False
    # A zombie (exited, not yet reaped) is not alive for our purposes.
    stat = _proc_stat(pid)
    return stat is None or stat[0] != "Z"


def _group_alive(pgid: int) -> bool:
    if not _signal_reaches(os.killpg, pgid):
        return False
    # Only zombies left? Then the group is effectively gone.
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in proc.iterdir():
        stat = _proc_stat(int(entry.name)) if entry.name.isdigit() else None
        if stat is not None and stat[2] == pgid and stat[0] != "Z":
            return True
    return False


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _who_listens(port: int) -> str:
    """Best effort ' (pid N: cmd)' for the process listening on ``port``, from /proc."""
    try:
        inodes = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with contextlib.suppress(OSError), open(table) as handle:
                for line in handle.readlines()[1:]:
                    parts = line.split()
                    if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(parts[9])
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                for fd in (entry / "fd").iterdir():
                    target = os.readlink(fd)
                    if target.startswith("socket:[") and target[8:-1] in inodes:
                        cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:80]
                        return f" (pid {entry.name}: {cmd.strip()})"
    except OSError:
        pass
    return ""


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
