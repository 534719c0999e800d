"""Moving the embedded cloud's state: export to one archive, import it, reset it.

The archive is a gzip'ed tar holding ``manifest.json`` and the durable store's files
(``snapshot.pkl``, ``wal.log``, the S3 bodies under ``bodies/`` and the Kinesis records under
``kinesis/``). A running cloud is asked for
a fresh snapshot first, so the archive holds every acknowledged write; a stopped cloud's files are
taken as they are.
"""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from infra.cloud import cloud_service, cloud_state_dir, move_state_aside
from infra.durable import (
    CONTROL_PREFIX,
    FORMAT_VERSION,
    SNAPSHOT_NAME,
    WAL_NAME,
    moto_version,
    read_snapshot_header,
    scan_log,
)
from infra.kinesis_records import RECORDS_NAME, SUFFIX
from infra.s3_bodies import BODIES_NAME
from riskstream.settings import Settings

logger = logging.getLogger(__name__)

ARCHIVE_ROOT = "riskstream-cloud"
MANIFEST = "manifest.json"
BODY_MEMBER = re.compile(rf"^{ARCHIVE_ROOT}/{BODIES_NAME}/([0-9a-f]{{2}})/(\1[0-9a-f]{{62}})$")
RECORDS_MEMBER = re.compile(
    rf"^{ARCHIVE_ROOT}/{RECORDS_NAME}/([0-9a-f]{{32}})/([0-9]{{20}}{re.escape(SUFFIX)})$"
)


class CloudStateError(RuntimeError):
    """Export, import or reset could not be done; the message says why and what to do."""


def _running(settings: Settings) -> bool:
    return cloud_service(settings).status().state == "running"


def _request(settings: Settings, method: str, path: str, timeout: float = 300) -> bytes:
    request = urllib.request.Request(settings.endpoint_url + path, method=method, data=b"")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404 and path.startswith(CONTROL_PREFIX):
            raise CloudStateError(
                "the running local cloud keeps no state (it was started with --ephemeral); "
                "restart it without --ephemeral to export"
            ) from None
        raise CloudStateError(f"{method} {path} failed: {exc}") from None


def export_state(settings: Settings, out: Path) -> dict[str, object]:
    """Write the whole local cloud into the archive ``out``; return its manifest."""
    directory = cloud_state_dir(settings)
    files: dict[str, bytes] = {}
    if _running(settings):
        files[SNAPSHOT_NAME] = _request(settings, "GET", CONTROL_PREFIX + "snapshot")
        files[WAL_NAME] = b""
    else:
        for name in (SNAPSHOT_NAME, WAL_NAME):
            path = directory / name
            if path.exists():
                files[name] = path.read_bytes()
        if not files:
            raise CloudStateError(
                f"no saved cloud state in {directory}: start the cloud (`riskstream cloud up`) "
                "and create something first"
            )
    bodies = sorted((directory / BODIES_NAME).glob("??/*"))
    bodies = [b for b in bodies if not b.name.startswith(".tmp-")]
    segments = sorted((directory / RECORDS_NAME).glob(f"*/*{SUFFIX}"))
    manifest: dict[str, object] = {
        "format": FORMAT_VERSION,
        "moto": moto_version(),
        "created": time.time(),
        "files": {name: len(data) for name, data in files.items()},
        "bodies": len(bodies),
        "kinesis_segments": len(segments),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tarfile.open(tmp, "w:gz", compresslevel=1) as archive:
        for name, data in [(MANIFEST, json.dumps(manifest).encode()), *files.items()]:
            info = tarfile.TarInfo(f"{ARCHIVE_ROOT}/{name}")
            info.size = len(data)
            info.mtime = int(time.time())
            archive.addfile(info, io.BytesIO(data))
        for body in bodies:  # streamed from disk: the bodies may not fit in memory
            archive.add(body, f"{ARCHIVE_ROOT}/{BODIES_NAME}/{body.parent.name}/{body.name}")
        for segment in segments:
            archive.add(
                segment, f"{ARCHIVE_ROOT}/{RECORDS_NAME}/{segment.parent.name}/{segment.name}"
            )
    tmp.replace(out)
    return manifest


def import_state(settings: Settings, archive_path: Path) -> Path | None:
    """Replace the (stopped) cloud's state with the archive; return where the old state went."""
    if not archive_path.is_file():
        raise CloudStateError(f"no such archive: {archive_path}")
    if _running(settings):
        raise CloudStateError(
            "the local cloud is running; stop it with `riskstream cloud down`, import, then "
            "`riskstream cloud up`"
        )
    with tempfile.TemporaryDirectory(
        dir=settings.state_dir if settings.state_dir.exists() else None
    ) as tmp:
        staged = Path(tmp) / "cloud"
        staged.mkdir()
        try:
            with tarfile.open(archive_path, "r:gz") as archive:
                members = {m.name: m for m in archive.getmembers() if m.isfile()}
                manifest_member = members.get(f"{ARCHIVE_ROOT}/{MANIFEST}")
                if manifest_member is None:
                    raise CloudStateError(
                        f"{archive_path} is not a riskstream cloud archive (no {MANIFEST}); "
                        "make one with `riskstream cloud export FILE`"
                    )
                for name in (SNAPSHOT_NAME, WAL_NAME):
                    member = members.get(f"{ARCHIVE_ROOT}/{name}")
                    if member is not None:
                        source = archive.extractfile(member)
                        assert source is not None
                        with open(staged / name, "wb") as target:
                            shutil.copyfileobj(source, target)
                for name, member in members.items():
                    found = BODY_MEMBER.match(name)
                    folder_name = BODIES_NAME
                    if found is None:
                        found, folder_name = RECORDS_MEMBER.match(name), RECORDS_NAME
                    if found is None:
                        continue
                    folder = staged / folder_name / found.group(1)
                    folder.mkdir(parents=True, exist_ok=True)
                    source = archive.extractfile(member)
                    assert source is not None
                    with open(folder / found.group(2), "wb") as target:
                        shutil.copyfileobj(source, target)
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise CloudStateError(f"cannot read the archive {archive_path}: {exc}") from None
        if (staged / SNAPSHOT_NAME).exists():
            read_snapshot_header(staged / SNAPSHOT_NAME)  # raises StateError on a mismatch
        scan_log(staged / WAL_NAME)  # raises StateError on a corrupt log
        aside = move_state_aside(settings)
        target = cloud_state_dir(settings)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)  # only an empty directory can be left here
        shutil.move(str(staged), str(target))
    return aside


def reset_state(settings: Settings) -> str:
    """Empty the local cloud (running or not); return what was done."""
    if _running(settings):
        _request(settings, "POST", "/moto-api/reset")
        try:
            _request(settings, "POST", CONTROL_PREFIX + "snapshot")
        except CloudStateError:
            return "the running (ephemeral) local cloud was emptied"
        return "the running local cloud was emptied, and its saved state with it"
    directory = cloud_state_dir(settings)
    removed = 0
    for name in (SNAPSHOT_NAME, WAL_NAME):
        path = directory / name
        if path.exists():
            path.unlink()
            removed += 1
    return f"removed the saved state in {directory}" if removed else "there was no saved state"
