"""The small part of AWS Glue's job API our scripts use: resolved options, a Job, bookmarks.

Kept close to Glue's shapes (``getResolvedOptions(sys.argv, [...])``, ``job.init`` ...
``job.commit``, bookmarks keyed by job name and transformation context) so a script reads like a
Glue script, without depending on the Glue libraries. Bookmarks live in the cloud (an S3 JSON
object per job); local folders are only used when the job itself runs on local folders.

Entry/IO module (bookmarks are read and written through :class:`riskstream.storage.Storage`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from riskstream.storage import Storage

logger = logging.getLogger(__name__)

BOOKMARK_OPTIONS: tuple[str, ...] = (
    "job-bookmark-enable",
    "job-bookmark-disable",
    "job-bookmark-pause",
)


class GlueArgumentError(ValueError):
    """A job argument is missing or malformed; the message names it and the value."""


def get_resolved_options(
    argv: Sequence[str], required: Sequence[str], optional: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Glue's ``getResolvedOptions``: ``--NAME value`` (or ``--NAME=value``) pairs -> dict.

    Every name in ``required`` must be present; ``optional`` gives defaults. Hyphens in names
    become underscores (``--job-bookmark-option`` -> ``job_bookmark_option``). Options not asked
    for are kept but need not be used, as Glue does with its own system arguments.
    """
    values = {k.replace("-", "_"): v for k, v in (optional or {}).items()}
    items = list(argv[1:]) if argv and not str(argv[0]).startswith("--") else list(argv)
    i = 0
    while i < len(items):
        item = items[i]
        if not item.startswith("--"):
            i += 1
            continue
        name = item[2:]
        if "=" in name:
            name, value = name.split("=", 1)
            i += 1
        elif i + 1 < len(items) and not items[i + 1].startswith("--"):
            value = items[i + 1]
            i += 2
        else:
            raise GlueArgumentError(f"option --{name} has no value")
        values[name.replace("-", "_")] = value
    missing = [name for name in required if not values.get(name)]
    if missing:
        raise GlueArgumentError(
            "missing job argument(s): " + ", ".join(f"--{name}" for name in missing)
        )
    return values


class BookmarkStore:
    """Bookmark state per job: one JSON document under ``base`` (an s3:// URI or a folder)."""

    def __init__(self, storage: Storage, base: str) -> None:
        self.storage = storage
        self.base = base.rstrip("/")

    def uri(self, job_name: str) -> str:
        return f"{self.base}/{job_name}.json"

    def load(self, job_name: str) -> dict[str, Any]:
        return self.storage.get_json(self.uri(job_name)) or {}

    def save(self, job_name: str, state: Mapping[str, Any]) -> None:
        self.storage.put_json(self.uri(job_name), dict(state))

    def reset(self, job_name: str) -> None:
        self.storage.delete(self.uri(job_name))
        logger.info("bookmark for %s reset (%s)", job_name, self.uri(job_name))


class Job:
    """``init`` ... ``commit`` around a run, with bookmarks per transformation context.

    A bookmark records, per partition, a fingerprint of its files. A partition is pending when
    it is new or its files changed (late events landing in an old ``dt``), so it is processed
    again as a whole and its output replaced.
    """

    def __init__(self, store: BookmarkStore | None) -> None:
        self.store = store
        self.name = ""
        self.option = "job-bookmark-disable"
        self.run_id = ""
        self._state: dict[str, Any] = {}
        self._marks: dict[str, dict[str, str]] = {}

    def init(self, job_name: str, args: Mapping[str, str]) -> Job:
        option = args.get("job_bookmark_option") or "job-bookmark-disable"
        if option not in BOOKMARK_OPTIONS:
            raise GlueArgumentError(
                f"--job-bookmark-option {option!r} is not one of {', '.join(BOOKMARK_OPTIONS)}"
            )
        if option != "job-bookmark-disable" and self.store is None:
            raise GlueArgumentError(f"{option} needs a bookmark store")
        self.name = job_name
        self.option = option
        self.run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
        enabled = self.store is not None and option != "job-bookmark-disable"
        self._state = self.store.load(job_name) if enabled and self.store else {}
        logger.info("job %s run %s (%s)", job_name, self.run_id, option)
        return self

    def pending(self, context: str, partitions: Mapping[str, str]) -> list[str]:
        """The partitions (value -> fingerprint) not yet processed under ``context``, sorted."""
        if self.option == "job-bookmark-disable":
            return sorted(partitions)
        done = self._state.get(context, {})
        return sorted(p for p, print_ in partitions.items() if done.get(p) != print_)

    def mark(self, context: str, partitions: Mapping[str, str]) -> None:
        """Record partitions as processed; saved by :meth:`commit`."""
        self._marks.setdefault(context, {}).update(partitions)

    def commit(self) -> None:
        """Save the bookmark (only with ``job-bookmark-enable``)."""
        if self.option != "job-bookmark-enable" or self.store is None:
            return
        state = {ctx: dict(self._state.get(ctx, {})) for ctx in self._state}
        for ctx, marks in self._marks.items():
            state.setdefault(ctx, {}).update(marks)
        state["_last_run"] = {"run_id": self.run_id, "at": datetime.now(UTC).isoformat()}
        self.store.save(self.name, state)
        logger.info("job %s committed its bookmark (%s)", self.name, self.store.uri(self.name))
